import XCTest
@testable import EmbedrecCore

/// The implicit-feedback building blocks: the interaction rows, BPR's update, and a trainer of
/// each kind lowering its loss. (The Python tests compare ALS with an exact NumPy ALS.)
final class ImplicitTests: XCTestCase {
    func testInteractionRowsSortMergeAndFind() {
        let rows: [Int32] = [2, 0, 2, 1, 0, 2]
        let cols: [Int32] = [3, 1, 0, 2, 1, 3]
        let w: [Float] = [1, 2, 3, 4, 5, 6]
        let r = InteractionRows(rows: rows, columns: cols, weights: w, count: 6, nRows: 3, nColumns: 4)
        XCTAssertEqual(Array(r.indptr.buffer), [0, 1, 2, 4])
        XCTAssertEqual(Array(r.indices.buffer), [1, 2, 0, 3])
        XCTAssertEqual(Array(r.weights.buffer), [7, 4, 3, 7])  // (0, 1) and (2, 3) each appear twice
        XCTAssertTrue(r.contains(row: 2, column: 3))
        XCTAssertTrue(r.contains(row: 2, column: 0))
        XCTAssertFalse(r.contains(row: 2, column: 1))
        XCTAssertFalse(r.contains(row: 1, column: 1))
        XCTAssertEqual(r.length(of: 2), 2)
    }

    func testBPRStepIsTheHandWrittenUpdate() {
        var x: [Float] = (0..<11).map { Float($0) * 0.1 - 0.5 }
        var yi: [Float] = (0..<11).map { Float($0) * -0.07 + 0.3 }
        var yj: [Float] = (0..<11).map { Float($0 % 3) * 0.2 - 0.1 }
        let (x0, yi0, yj0) = (x, yi, yj)
        let z: Float = 0.37, lr: Float = 0.05, reg: Float = 0.01
        BPRTrainer.step(&x, &yi, &yj, 11, z: z, lr: lr, reg: reg)
        for a in 0..<11 {
            XCTAssertEqual(x[a], x0[a] + lr * (z * (yi0[a] - yj0[a]) - reg * x0[a]), accuracy: 1e-6)
            XCTAssertEqual(yi[a], yi0[a] + lr * (z * x0[a] - reg * yi0[a]), accuracy: 1e-6)
            XCTAssertEqual(yj[a], yj0[a] - lr * (z * x0[a] + reg * yj0[a]), accuracy: 1e-6)
        }
    }

    /// Four products side by side give each vector the bits of its product alone, for widths
    /// with and without a remainder of rows (k mod 4) and of entries (k mod 8).
    func testGroupedMatrixProductsAreTheSingleOnesBits() {
        for k in [4, 13, 16, 100] {
            var rng = Xoshiro256(seed: UInt64(k))
            let m = (0..<(k * k)).map { _ in rng.nextUnitFloat() - 0.5 }
            let vs = (0..<4).map { _ in (0..<k).map { _ in rng.nextUnitFloat() * 2 - 1 } }
            var alone = [[Float]](repeating: [Float](repeating: 0, count: k), count: 4)
            var together = alone
            m.withUnsafeBufferPointer { mp in
                for g in 0..<4 {
                    vs[g].withUnsafeBufferPointer { v in
                        alone[g].withUnsafeMutableBufferPointer { o in
                            ImplicitALSTrainer.matrixVector(mp.baseAddress!, v.baseAddress!, o.baseAddress!, k: k)
                        }
                    }
                }
                let inputs = vs.map { v -> UnsafeMutablePointer<Float> in
                    let p = UnsafeMutablePointer<Float>.allocate(capacity: k)
                    p.initialize(from: v, count: k)
                    return p
                }
                let outputs = (0..<4).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: k) }
                ImplicitALSTrainer.matrixVectors(mp.baseAddress!, inputs.map { UnsafePointer($0) }, outputs, count: 4, k: k)
                for g in 0..<4 {
                    together[g] = Array(UnsafeBufferPointer(start: outputs[g], count: k))
                    inputs[g].deallocate()
                    outputs[g].deallocate()
                }
            }
            XCTAssertEqual(together, alone, "k = \(k)")
        }
    }

    /// Solves the dense system a x = b (n × n, row-major) by Gaussian elimination with partial
    /// pivoting, in Double: the reference for the exact short-row solves.
    private func denseSolve(_ a: [Double], _ b: [Double], n: Int) -> [Double] {
        var m = a, x = b
        for c in 0..<n {
            let pivot = (c..<n).max { abs(m[$0 * n + c]) < abs(m[$1 * n + c]) }!
            for j in 0..<n { m.swapAt(c * n + j, pivot * n + j) }
            x.swapAt(c, pivot)
            for r in (c + 1)..<n {
                let f = m[r * n + c] / m[c * n + c]
                for j in c..<n { m[r * n + j] -= f * m[c * n + j] }
                x[r] -= f * x[c]
            }
        }
        for r in stride(from: n - 1, through: 0, by: -1) {
            for j in (r + 1)..<n { x[r] -= m[r * n + j] * x[j] }
            x[r] /= m[r * n + r]
        }
        return x
    }

    /// Each short row's solution is that of its normal equations (FᵀF + λI + Σ e u uᵀ) x =
    /// Σ (1 + e) u, and its loss term xᵀ(FᵀF + λI)x + Σ (e s² − 2 (1 + e) s + 1 + e): rows of
    /// no interactions up to six, weights of zero included, k with and without a remainder of 8.
    func testShortRowsSolveTheirNormalEquationsExactly() {
        for k in [5, 16, 21] {
            var rng = Xoshiro256(seed: UInt64(40 + k))
            let nFixed = 12, nRows = 7, alpha: Float = 1.5, lambda: Float = 0.3
            let fixed = (0..<(nFixed * k)).map { _ in rng.nextUnitFloat() - 0.5 }
            var rowIds = [Int32](), columns = [Int32](), weights = [Float]()
            for r in 0..<nRows {
                for c in 0..<r {  // row r has r interactions
                    rowIds.append(Int32(r))
                    columns.append(Int32((3 * r + 5 * c) % nFixed))
                    weights.append(c == 1 ? 0 : rng.nextUnitFloat() * 3)
                }
            }
            let rows = InteractionRows(rows: rowIds, columns: columns, weights: weights, count: rowIds.count,
                                       nRows: nRows, nColumns: nFixed)
            var gram = [Double](repeating: 0, count: k * k)
            for j in 0..<nFixed { for a in 0..<k { for b in 0..<k {
                gram[a * k + b] += Double(fixed[j * k + a]) * Double(fixed[j * k + b])
            } } }
            fixed.withUnsafeBufferPointer { f in
                let F = f.baseAddress!
                guard let exact = ShortRowSolves(rows: rows, fixed: F, nFixed: nFixed, gram: gram, regularization: lambda,
                                                 k: k, steps: 3, threads: 1, forcedLimit: 6) else {
                    return XCTFail("the exact path was refused at k = \(k)")
                }
                let scratch = ShortRowSolves.Scratch(limit: 6)
                var x = [Float](repeating: 9, count: k)
                for r in 0..<nRows {
                    let term = x.withUnsafeMutableBufferPointer {
                        exact.solve(row: r, rows: rows, fixed: F, alpha: alpha, x: $0.baseAddress!, scratch: scratch, withLoss: true)
                    }
                    var a = gram, b = [Double](repeating: 0, count: k)
                    for d in 0..<k { a[d * k + d] += Double(lambda) }
                    let base = a
                    for j in Int(rows.indptr[r])..<Int(rows.indptr[r + 1]) {
                        let u = Int(rows.indices[j]) * k, e = Double(alpha * rows.weights[j])
                        for p in 0..<k {
                            b[p] += (1 + e) * Double(fixed[u + p])
                            for q in 0..<k { a[p * k + q] += e * Double(fixed[u + p]) * Double(fixed[u + q]) }
                        }
                    }
                    let want = denseSolve(a, b, n: k)
                    for p in 0..<k { XCTAssertEqual(Double(x[p]), want[p], accuracy: 1e-4, "k = \(k), row \(r)") }
                    var wantTerm = 0.0
                    for p in 0..<k { for q in 0..<k { wantTerm += want[p] * base[p * k + q] * want[q] } }
                    for j in Int(rows.indptr[r])..<Int(rows.indptr[r + 1]) {
                        let u = Int(rows.indices[j]) * k, e = Double(alpha * rows.weights[j])
                        var sj = 0.0
                        for p in 0..<k { sj += Double(fixed[u + p]) * want[p] }
                        wantTerm += e * sj * sj - 2 * (1 + e) * sj + 1 + e
                    }
                    XCTAssertEqual(term, wantTerm, accuracy: 1e-4 * max(1, abs(wantTerm)), "k = \(k), row \(r)")
                }
            }
        }
    }

    /// An epoch of ALS with the short rows solved exactly ends where CG run to convergence ends,
    /// loss included: the exact path is wired into the half-epochs as the CG path is.
    func testExactShortRowsAndConvergedConjugateGradientsAgree() throws {
        func trained(shortRowLimit: Int) throws -> ([Float], [Float], Double) {
            var rng = Xoshiro256(seed: 8)
            var users = [Int32](), items = [Int32](), weights = [Float]()
            for u in 0..<50 {
                for _ in 0..<(1 + u % 9) {  // rows of 1 to 9 items; items of various lengths
                    users.append(Int32(u))
                    items.append(Int32(rng.nextIndex(below: 30)))
                    weights.append(1 + Float(rng.nextIndex(below: 3)))
                }
            }
            let data = try RatingSet(users: users, items: items, ratings: weights, count: users.count, nUsers: 50, nItems: 30)
            let model = try MFModel(config: MFConfig(nUsers: 50, nItems: 30, nFactors: 10), initStd: 0.1, seed: 2)
            var options = ImplicitOptions()
            options.epochs = 3
            options.regularization = 0.5
            options.cgSteps = 200
            options.threads = 2
            options.shortRowLimit = shortRowLimit
            let trainer = try makeImplicitTrainer(model: model, data: data, options: options)
            var loss = 0.0
            for _ in 0..<3 { loss = try trainer.runEpoch().loss }
            return (Array(model.userFactors.buffer), Array(model.itemFactors.buffer), loss)
        }
        let cg = try trained(shortRowLimit: 0)
        let exact = try trained(shortRowLimit: 6)
        for (a, b) in zip(cg.0 + cg.1, exact.0 + exact.1) { XCTAssertEqual(a, b, accuracy: 2e-4) }
        XCTAssertEqual(cg.2, exact.2, accuracy: 1e-5 * cg.2)
    }

    private func trainedLosses(_ method: ImplicitOptions.Method, epochs: Int) throws -> [Double] {
        var rng = Xoshiro256(seed: 3)
        var users = [Int32](), items = [Int32](), weights = [Float]()
        for u in 0..<60 {
            for _ in 0..<8 {
                users.append(Int32(u))
                items.append(Int32((u % 4) * 10 + rng.nextIndex(below: 10)))
                weights.append(1)
            }
        }
        let data = try RatingSet(users: users, items: items, ratings: weights, count: users.count, nUsers: 60, nItems: 40)
        let model = try MFModel(config: MFConfig(nUsers: 60, nItems: 40, nFactors: 6, biases: method == .bpr),
                                initStd: 0.1, seed: 1)
        var options = ImplicitOptions()
        options.method = method
        options.epochs = epochs
        options.learningRate = 0.05
        options.threads = 1
        let trainer = try makeImplicitTrainer(model: model, data: data, options: options)
        XCTAssertEqual(model.globalBias, 0)
        return try (0..<epochs).map { _ in try trainer.runEpoch().loss }
    }

    func testEachMethodLowersItsLoss() throws {
        let als = try trainedLosses(.als, epochs: 5)
        XCTAssertLessThan(als.last!, als.first!)
        let bpr = try trainedLosses(.bpr, epochs: 30)
        XCTAssertLessThan(bpr.last!, 0.8 * bpr.first!)
    }

    func testNegativeWeightsAndRankedModelsAreRefused() throws {
        let data = try RatingSet(users: [0], items: [0], ratings: [-1], count: 1, nUsers: 1, nItems: 1)
        let model = try MFModel(config: MFConfig(nUsers: 1, nItems: 1, nFactors: 2), initStd: 0.1, seed: 1)
        XCTAssertThrowsError(try makeImplicitTrainer(model: model, data: data, options: ImplicitOptions()))
        let ranged = try MFModel(config: MFConfig(nUsers: 1, nItems: 1, nFactors: 2, yRange: (0, 1)), initStd: 0.1, seed: 1)
        let ok = try RatingSet(users: [0], items: [0], ratings: [1], count: 1, nUsers: 1, nItems: 1)
        XCTAssertThrowsError(try makeImplicitTrainer(model: ranged, data: ok, options: ImplicitOptions()))
    }
}
