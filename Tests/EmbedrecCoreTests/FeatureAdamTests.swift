import XCTest
@testable import EmbedrecCore

final class FeatureAdamTests: XCTestCase {
    private func options(threads: Int = 1) -> TrainOptions {
        var o = TrainOptions()
        o.optimizer = .adam
        o.epochs = 4
        o.batchSize = 64
        o.learningRate = 0.01
        o.weightDecay = 0.05
        o.threads = threads
        o.seed = 5
        return o
    }

    /// Each entity made of its own row alone, with weight 1, trains as plain Adam MF does: the
    /// same batches, gradients, L2 term and steps, up to rounding.
    func testIdentityCompositionsTrainAsPlainAdam() throws {
        let data = LowRankData(nUsers: 80, nItems: 50)
        let config = MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: 6)
        let plain = try MFModel(config: config, initStd: 0.1, seed: 3)
        let hybrid = try MFModel(config: config, initStd: 0.1, seed: 3)
        let a = try makeTrainer(model: plain, data: try data.trainSet(), options: options())
        let b = try makeFeatureTrainer(model: hybrid, data: try data.trainSet(), options: options(),
                                       users: try identityComposition(data.nUsers), items: try identityComposition(data.nItems))
        XCTAssertTrue(b is FeatureAdamTrainer)
        for _ in 0..<4 {
            let la = try a.runEpoch().loss, lb = try b.runEpoch().loss
            XCTAssertEqual(la, lb, accuracy: 1e-5 * la)
        }
        for (x, y) in zip(plain.userFactors.buffer, hybrid.userFactors.buffer) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        for (x, y) in zip(plain.itemBias.buffer, hybrid.itemBias.buffer) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        XCTAssertLessThan(data.testRMSE(hybrid), data.testRMSE(try MFModel(config: config, initStd: 0.1, seed: 3)))
    }

    /// Adam's first step moves every parameter with a gradient by about lr against its sign
    /// (the bias-corrected moments are g and g²): each row the rating reaches moves, whatever
    /// its weight; a bias-only row's bias moves and its vector stays zero; a row no rating
    /// reaches is cleared and stays so.
    func testFirstStepMovesEveryReachedRow() throws {
        let k = 2
        let m = try MFModel(config: MFConfig(nUsers: 1, nItems: 4, nFactors: k), initStd: 0, seed: 0)
        m.userFactors.base.update(from: [0.3, -0.2], count: 2)
        m.itemFactors.base.update(from: [0.1, 0.4, -0.5, 0.2, 0.6, 0.6, 0.7, 0.7], count: 8)
        let kinds: [UInt8] = [RowKind.id.rawValue, RowKind.feature.rawValue, RowKind.biasOnly.rawValue, RowKind.feature.rawValue]
        let items = try Composition(indptr: [0, 3], rows: [0, 1, 2], weights: [1, 0.5, -2], count: 1, nRows: 4, kinds: kinds)
        let data = try RatingSet(users: [0], items: [0], ratings: [5], count: 1, nUsers: 1, nItems: 1)
        var o = options()
        o.epochs = 1
        o.weightDecay = 0
        let before = Array(m.itemFactors.buffer)
        let t = try makeFeatureTrainer(model: m, data: data, options: o, users: nil, items: items)
        XCTAssertEqual(Array(m.itemFactors.buffer[4..<8]), [0, 0, 0, 0], "bias-only and unreached rows' vectors are zero")
        _ = try t.runEpoch()
        // The prediction (the mean, 5, plus the dot product, about -0.07) is below the rating:
        // the gradient on the raw score is negative, so rows move along their weight times the
        // user's vector, and biases along their weight.
        let user: [Float] = [0.3, -0.2]
        for (row, w) in [(0, Float(1)), (1, Float(0.5))] {
            for j in 0..<k {
                let moved = m.itemFactors[row * k + j] - before[row * k + j]
                XCTAssertEqual(abs(moved), o.learningRate, accuracy: 1e-3 * o.learningRate)
                XCTAssertEqual(moved.sign, (w * user[j]).sign)
            }
        }
        XCTAssertEqual(m.itemBias[2], -o.learningRate, accuracy: 1e-5, "the bias-only row's weight is -2")
        XCTAssertEqual(Array(m.itemFactors.buffer[4..<8]), [0, 0, 0, 0])
        XCTAssertEqual(m.itemBias[3], 0)
    }

    /// Rows belong to threads by number and each sums its gradients in batch order, so one
    /// thread and three give the same bits, on a side with a hot feature row.
    func testAnyThreadCountGivesTheSameModel() throws {
        let n = 100_000, nUsers = 3000, nItems = 500, groups = 4
        var rng = Xoshiro256(seed: 4)
        var users: [Int32] = [], itemIds: [Int32] = [], ratings: [Float] = []
        for _ in 0..<n {
            let i = rng.nextIndex(below: nItems)
            users.append(Int32(rng.nextIndex(below: nUsers)))
            itemIds.append(Int32(i))
            ratings.append(3 + Float(i % groups) - 1.5 + rng.nextNormal() * 0.1)
        }
        var indptr: [Int64] = [0], rows: [Int32] = [], weights: [Float] = []
        for i in 0..<nItems {
            rows += [Int32(i), Int32(nItems + i % groups)]
            weights += [1, 1]
            indptr.append(Int64(rows.count))
        }
        var models: [MFModel] = []
        for threads in [1, 3] {
            let items = try Composition(indptr: indptr, rows: rows, weights: weights, count: nItems, nRows: nItems + groups)
            let m = try MFModel(config: MFConfig(nUsers: nUsers, nItems: nItems + groups, nFactors: 64), initStd: 0.05, seed: 1)
            var o = options(threads: threads)
            o.batchSize = 1024
            let data = try RatingSet(users: users, items: itemIds, ratings: ratings, count: n, nUsers: nUsers, nItems: nItems)
            let t = try makeFeatureTrainer(model: m, data: data, options: o, users: nil, items: items)
            _ = try t.runEpoch()  // 100,000 ratings × 64 factors: work for 3 threads
            models.append(m)
        }
        XCTAssertEqual(Array(models[0].itemFactors.buffer), Array(models[1].itemFactors.buffer))
        XCTAssertEqual(Array(models[0].userBias.buffer), Array(models[1].userBias.buffer))
        let b = (0..<groups).map { models[0].itemBias[nItems + $0] }
        XCTAssertEqual(b, b.sorted(), "the group rows' biases carry the planted offsets")
    }

    /// Embedding dropout is refused with features, as with SGD.
    func testEmbeddingDropoutIsRefused() throws {
        let m = try MFModel(config: MFConfig(nUsers: 2, nItems: 2, nFactors: 2), initStd: 0.1, seed: 0)
        let data = try RatingSet(users: [0, 1], items: [0, 1], ratings: [3, 4], count: 2, nUsers: 2, nItems: 2)
        let t = try makeFeatureTrainer(model: m, data: data, options: options(), users: nil, items: try identityComposition(2))
        XCTAssertThrowsError(try t.useEmbeddingDropout(EmbeddingDropout(userRate: 0.2, itemRate: 0)))
    }
}
