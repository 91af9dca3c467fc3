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
