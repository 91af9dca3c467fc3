import XCTest
@testable import EmbedrecCore

final class FeatureSGDTests: XCTestCase {
    private func options(epochs: Int = 1) -> TrainOptions {
        var o = TrainOptions()
        o.epochs = epochs
        o.learningRate = 0.02
        o.weightDecay = 0.03
        o.threads = 1
        o.seed = 5
        return o
    }

    /// Each entity made of its own row alone, with weight 1, is plain MF: the same training
    /// up to rounding (the composed update is written as row·(1 − lr λ) + lr g v).
    func testIdentityCompositionsTrainAsPlainMF() throws {
        let data = LowRankData(nUsers: 80, nItems: 50)
        let config = MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: 6)
        let plain = try MFModel(config: config, initStd: 0.1, seed: 3)
        let hybrid = try MFModel(config: config, initStd: 0.1, seed: 3)
        let a = try makeTrainer(model: plain, data: try data.trainSet(), options: options())
        let b = try makeFeatureTrainer(model: hybrid, data: try data.trainSet(), options: options(),
                                       users: try identityComposition(data.nUsers), items: try identityComposition(data.nItems))
        for _ in 0..<5 {
            let la = try a.runEpoch().loss, lb = try b.runEpoch().loss
            XCTAssertEqual(la, lb, accuracy: 1e-5 * la)
        }
        for (x, y) in zip(plain.userFactors.buffer, hybrid.userFactors.buffer) { XCTAssertEqual(x, y, accuracy: 1e-4) }
        for (x, y) in zip(plain.itemBias.buffer, hybrid.itemBias.buffer) { XCTAssertEqual(x, y, accuracy: 1e-4) }
        XCTAssertEqual(data.testRMSE(plain), data.testRMSE(hybrid), accuracy: 1e-4)
    }

    /// One rating against an item made of two rows (weights 1 and 0.5): every row moves by
    /// lr (g w v − λ |w| row), v the other side's vector before the update.
    func testOneStepMovesEveryRowByItsWeight() throws {
        let k = 2
        let config = MFConfig(nUsers: 1, nItems: 3, nFactors: k)
        let m = try MFModel(config: config, initStd: 0, seed: 0)
        let user: [Float] = [0.3, -0.2], rowA: [Float] = [0.1, 0.4], rowB: [Float] = [-0.5, 0.2]
        m.userFactors.base.update(from: user, count: 2)
        m.itemFactors.base.update(from: rowA + rowB + [0.7, 0.7], count: 6)
        m.userBias[0] = 0.1
        m.itemBias[0] = 0.2; m.itemBias[1] = -0.4; m.itemBias[2] = 0.9
        let items = try Composition(indptr: [0, 2], rows: [0, 1], weights: [1, 0.5], count: 1, nRows: 3)
        let data = try RatingSet(users: [0], items: [0], ratings: [4], count: 1, nUsers: 1, nItems: 1)
        var o = options()
        o.learningRate = 0.1
        o.weightDecay = 0.2
        let t = try makeFeatureTrainer(model: m, data: data, options: o, users: nil, items: items)
        // Row 2 is reached by no rating: set to zero when the trainer is made.
        XCTAssertEqual(Array(m.itemFactors.buffer[4..<6]), [0, 0])
        XCTAssertEqual(m.itemBias[2], 0)
        _ = try t.runEpoch()
        let v = zip(rowA, rowB).map { $0 + 0.5 * $1 }
        let bItem: Float = 0.2 + 0.5 * -0.4
        let raw = 4 /* global = mean */ + zip(user, v).map(*).reduce(0, +) + 0.1 + bItem
        let lr: Float = 0.1, reg: Float = 0.2
        let gHalf = 4 - raw  // −dRaw of ½ (ŷ − r)² (MFModel.lossGradient), the descent direction
        for j in 0..<k {
            XCTAssertEqual(m.itemFactors[j], rowA[j] + lr * (gHalf * 1 * user[j] - reg * 1 * rowA[j]), accuracy: 1e-6)
            XCTAssertEqual(m.itemFactors[k + j], rowB[j] + lr * (gHalf * 0.5 * user[j] - reg * 0.5 * rowB[j]), accuracy: 1e-6)
            XCTAssertEqual(m.userFactors[j], user[j] + lr * (gHalf * v[j] - reg * user[j]), accuracy: 1e-6)
        }
        XCTAssertEqual(m.itemBias[1], -0.4 + lr * (gHalf * 0.5 - reg * 0.5 * -0.4), accuracy: 1e-6)
    }

    /// The composed model holds each entity's weighted sums; a side without a composition is
    /// copied; an entity with no pairs is zero.
    func testComposedModelSumsTheRows() throws {
        let config = MFConfig(nUsers: 2, nItems: 4, nFactors: 3)
        let m = try MFModel(config: config, initStd: 0.5, seed: 9)
        m.globalBias = 3.5
        for r in 0..<4 { m.itemBias[r] = Float(r) }
        let items = try Composition(indptr: [0, 2, 2, 3], rows: [0, 3, 1], weights: [1, -2, 0.25], count: 3, nRows: 4)
        let c = try m.composed(users: nil, items: items)
        XCTAssertEqual(c.config.nItems, 3)
        XCTAssertEqual(c.globalBias, 3.5)
        XCTAssertTrue(c.userFactors === m.userFactors, "a plain side is shared, not copied")
        XCTAssertTrue(c.useGuard === m.useGuard)
        for j in 0..<3 {
            XCTAssertEqual(c.itemFactors[j], m.itemFactors[j] - 2 * m.itemFactors[9 + j], accuracy: 1e-6)
            XCTAssertEqual(c.itemFactors[3 + j], 0)
            XCTAssertEqual(c.itemFactors[6 + j], 0.25 * m.itemFactors[3 + j], accuracy: 1e-6)
        }
        XCTAssertEqual(Array(c.itemBias.buffer), [-6, 0, 0.25])
    }

    /// Composing again into an earlier composed model overwrites it with what a new
    /// composition gives; a model not composed from this one with these compositions is refused.
    func testComposingIntoTheComposedModelOverwritesItInPlace() throws {
        let m = try MFModel(config: MFConfig(nUsers: 2, nItems: 4, nFactors: 3), initStd: 0.5, seed: 4)
        let items = try Composition(indptr: [0, 2, 2, 3], rows: [0, 3, 1], weights: [1, -2, 0.25], count: 3, nRows: 4)
        let c = try m.composed(users: nil, items: items)
        let tables = (c.itemFactors, c.itemBias)
        for j in 0..<12 { m.itemFactors[j] += Float(j) * 0.1 }
        for r in 0..<4 { m.itemBias[r] = Float(r) - 1 }
        m.globalBias = 2
        try m.compose(into: c, users: nil, items: items)
        let fresh = try m.composed(users: nil, items: items)
        XCTAssertTrue(c.itemFactors === tables.0 && c.itemBias === tables.1, "the same tables, overwritten")
        XCTAssertEqual(Array(c.itemFactors.buffer), Array(fresh.itemFactors.buffer))
        XCTAssertEqual(Array(c.itemBias.buffer), Array(fresh.itemBias.buffer))
        XCTAssertEqual(c.globalBias, 2)
        let other = try MFModel(config: MFConfig(nUsers: 2, nItems: 3, nFactors: 3), initStd: 0.5, seed: 4)
        XCTAssertThrowsError(try m.compose(into: other, users: nil, items: items), "another guard: not composed from m")
        let fewer = try Composition(indptr: [0, 1, 2], rows: [0, 1], weights: [1, 1], count: 2, nRows: 4)
        XCTAssertThrowsError(try m.compose(into: c, users: nil, items: fewer), "another entity count")
        XCTAssertThrowsError(try m.compose(into: c, users: items, items: items), "a composition the target lacks")
    }

    func testMalformedCompositionsAreRefused() {
        XCTAssertThrowsError(try Composition(indptr: [0, 1], rows: [4], weights: [1], count: 1, nRows: 4))
        XCTAssertThrowsError(try Composition(indptr: [0, 2, 1], rows: [0, 1], weights: [1, 1], count: 2, nRows: 4))
        XCTAssertThrowsError(try Composition(indptr: [0, 1], rows: [0], weights: [.nan], count: 1, nRows: 4))
        XCTAssertThrowsError(try Composition(indptr: [1, 1], rows: [0], weights: [1], count: 1, nRows: 4))
        // A feature trainer without a composition on either side is the plain model: refused.
        let m = try? MFModel(config: MFConfig(nUsers: 1, nItems: 1, nFactors: 2), initStd: 0.1, seed: 0)
        let data = try? RatingSet(users: [0], items: [0], ratings: [3], count: 1, nUsers: 1, nItems: 1)
        XCTAssertThrowsError(try makeFeatureTrainer(model: m!, data: data!, options: TrainOptions(), users: nil, items: nil))
    }

    /// Ratings whose sides are one to four rows of weight 1 take `UnitRows`' two-pass step;
    /// the others the general one. Both must give the same bits: entities here mix every case
    /// (an id and categories, a bias-only row beside them, a weight of 0.5, five unit rows, a
    /// row listed twice), at a k with a partial last vector and at a k below 8, with and
    /// without biases, non-negativity and id dropout.
    func testTheTwoPassStepOfUnitRowsChangesNoBit() throws {
        let nUsers = 40, nItems = 30, categories = 6
        var rng = Xoshiro256(seed: 12)
        var users: [Int32] = [], items: [Int32] = [], ratings: [Float] = []
        for _ in 0..<3000 {
            users.append(Int32(rng.nextIndex(below: nUsers)))
            items.append(Int32(rng.nextIndex(below: nItems)))
            ratings.append(Float(1 + rng.nextIndex(below: 5)))
        }
        // Item rows: ids, then categories, then one bias-only row. User rows: ids, then two groups.
        let numeric = nItems + categories
        var itemKinds = [UInt8](repeating: RowKind.id.rawValue, count: nItems) + [UInt8](repeating: RowKind.feature.rawValue, count: categories)
        itemKinds.append(RowKind.biasOnly.rawValue)
        var iIndptr: [Int64] = [0], iRows: [Int32] = [], iWeights: [Float] = []
        for i in 0..<nItems {
            let c = Int32(nItems)
            switch i % 5 {
            case 0: iRows += [Int32(i), c + Int32(i % 3), Int32(numeric)]; iWeights += [1, 1, Float(i) / 10 - 1]
            case 1: iRows += [Int32(i), c + 3, c + 4, c + 5]; iWeights += [1, 1, 1, 1]
            case 2: iRows += [Int32(i), c, c + 1, c + 2, c + 3]; iWeights += [1, 1, 1, 1, 1]  // five: general
            case 3: iRows += [Int32(i), c + 1, c + 2]; iWeights += [1, 0.5, 0.5]  // not unit: general
            default: iRows += [Int32(i), c + 4, c + 4]; iWeights += [1, 1, 1]  // a row twice: general
            }
            iIndptr.append(Int64(iRows.count))
        }
        var uIndptr: [Int64] = [0], uRows: [Int32] = []
        for u in 0..<nUsers {
            uRows += [Int32(u), Int32(nUsers + u % 2)]
            uIndptr.append(Int64(uRows.count))
        }
        let uKinds = [UInt8](repeating: RowKind.id.rawValue, count: nUsers) + [RowKind.feature.rawValue, RowKind.feature.rawValue]
        for k in [13, 5] {
            for (biases, nonNegative, idDropout) in [(true, false, Float(0)), (false, true, 0), (true, false, 0.3)] {
                var tables: [[Float]] = []
                for fused in [true, false] {
                    // A set of its own: a trainer shuffles its ratings in place.
                    let data = try RatingSet(users: users, items: items, ratings: ratings, count: users.count,
                                             nUsers: nUsers, nItems: nItems)
                    let itemComposition = try Composition(indptr: iIndptr, rows: iRows, weights: iWeights, count: nItems,
                                                          nRows: numeric + 1, kinds: itemKinds)
                    let userComposition = try Composition(indptr: uIndptr, rows: uRows,
                                                          weights: [Float](repeating: 1, count: uRows.count),
                                                          count: nUsers, nRows: nUsers + 2, kinds: uKinds)
                    let config = MFConfig(nUsers: nUsers + 2, nItems: numeric + 1, nFactors: k, biases: biases,
                                          nonNegative: nonNegative)
                    let m = try MFModel(config: config, initStd: 0.2, seed: 7)
                    let t = try makeFeatureTrainer(model: m, data: data, options: options(), users: userComposition,
                                                   items: itemComposition, idDropout: idDropout)
                    (t as! SGDTrainer).fusesUnitRows = fused
                    for _ in 0..<3 { _ = try t.runEpoch() }
                    tables.append(Array(m.userFactors.buffer) + Array(m.itemFactors.buffer) + Array(m.userBias.buffer)
                                  + Array(m.itemBias.buffer))
                }
                XCTAssertEqual(tables[0].map(\.bitPattern), tables[1].map(\.bitPattern),
                               "k \(k), biases \(biases), non-negative \(nonNegative), id dropout \(idDropout)")
            }
        }
    }
}

final class IdDropoutTests: XCTestCase {
    /// With id dropout, about that share of the ratings leaves the id rows alone; the feature
    /// rows get every rating.
    func testIdDropoutSkipsTheIdRowsOfThatShareOfRatings() throws {
        let n = 4000, k = 4
        let config = MFConfig(nUsers: 1, nItems: n + 1, nFactors: k)
        let m = try MFModel(config: config, initStd: 0.1, seed: 2)
        // Item e: its own id row e (kind id) and the shared feature row n.
        var indptr: [Int64] = [0], rows: [Int32] = [], weights: [Float] = []
        for e in 0..<n {
            rows += [Int32(e), Int32(n)]
            weights += [1, 1]
            indptr.append(Int64(rows.count))
        }
        var kinds = [UInt8](repeating: RowKind.id.rawValue, count: n + 1)
        kinds[n] = RowKind.feature.rawValue
        let items = try Composition(indptr: indptr, rows: rows, weights: weights, count: n, nRows: n + 1, kinds: kinds)
        let data = try RatingSet(users: [Int32](repeating: 0, count: n), items: (0..<n).map { Int32($0) },
                                 ratings: (0..<n).map { Float($0 % 5 + 1) }, count: n, nUsers: 1, nItems: n)
        var o = TrainOptions()
        o.learningRate = 0.01
        o.threads = 1
        let before = Array(m.itemFactors.buffer)
        let t = try makeFeatureTrainer(model: m, data: data, options: o, users: nil, items: items, idDropout: 0.3)
        _ = try t.runEpoch()
        var unchanged = 0
        for e in 0..<n where (0..<k).allSatisfy({ m.itemFactors[e * k + $0] == before[e * k + $0] }) { unchanged += 1 }
        XCTAssertEqual(Double(unchanged) / Double(n), 0.3, accuracy: 0.04)
        XCTAssertThrowsError(try makeFeatureTrainer(model: m, data: data, options: o, users: nil, items: items, idDropout: 1))
    }

}

final class HotRowTests: XCTestCase {
    /// Rating r = 3 + (item group's offset): all signal is in a hot feature row (4 groups, each
    /// a quarter of the ratings). Two threads, each working on a block's copy of the hot rows
    /// and adding its changes back, learn it as one thread does (exact per-rating SGD).
    func testTwoThreadsLearnTheHotRowsAsOneDoes() throws {
        let n = 420_000, nUsers = 2000, nItems = 400, groups = 4
        var rng = Xoshiro256(seed: 4)
        var users: [Int32] = [], itemIds: [Int32] = [], ratings: [Float] = []
        let offsets: [Float] = [-1.5, -0.5, 0.5, 1.5]
        for _ in 0..<n {
            let i = rng.nextIndex(below: nItems)
            users.append(Int32(rng.nextIndex(below: nUsers)))
            itemIds.append(Int32(i))
            ratings.append(3 + offsets[i % groups] + rng.nextNormal() * 0.1)
        }
        var indptr: [Int64] = [0], rows: [Int32] = [], weights: [Float] = []
        for i in 0..<nItems {
            rows += [Int32(i), Int32(nItems + i % groups)]
            weights += [1, 1]
            indptr.append(Int64(rows.count))
        }
        var kinds = [UInt8](repeating: RowKind.id.rawValue, count: nItems + groups)
        for g in 0..<groups { kinds[nItems + g] = RowKind.feature.rawValue }
        var losses: [Double] = []
        for threads in [1, 2] {
            let items = try Composition(indptr: indptr, rows: rows, weights: weights, count: nItems,
                                        nRows: nItems + groups, kinds: kinds)
            let m = try MFModel(config: MFConfig(nUsers: nUsers, nItems: nItems + groups, nFactors: 8),
                                initStd: 0.05, seed: 1)
            var o = TrainOptions()
            o.learningRate = 0.01
            o.weightDecay = 0.02
            o.threads = threads
            let t = try makeFeatureTrainer(model: m, data: try RatingSet(users: users, items: itemIds, ratings: ratings,
                                                                        count: n, nUsers: nUsers, nItems: nItems),
                                           options: o, users: nil, items: items)
            var last = 0.0
            for _ in 0..<3 { last = try t.runEpoch().loss }
            losses.append(last)
            // The group biases carry the offsets.
            let b = (0..<groups).map { m.itemBias[nItems + $0] }
            XCTAssertLessThan(b[0], b[1]); XCTAssertLessThan(b[1], b[2]); XCTAssertLessThan(b[2], b[3])
        }
        XCTAssertLessThan(losses[0], 0.05)
        XCTAssertEqual(losses[1], losses[0], accuracy: 0.2 * losses[0])
    }
}
