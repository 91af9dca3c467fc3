import XCTest
@testable import EmbedrecCore

final class EmbeddingDropoutTests: XCTestCase {
    /// Each side keeps about 1 - rate of its entries, scaled by 1 / (1 - rate), so the combined
    /// mask's entries are 0 or the product of both scales, and its mean is close to 1.
    func testCombinedMaskKeepsTheRightShareAndScale() {
        let k = 40, d = EmbeddingDropout(userRate: 0.3, itemRate: 0.6).keyed(seed: 5, epoch: 2)
        var mask = [Float](repeating: 0, count: EmbeddingDropout.scratchCount(k: k))
        var kept = 0, total = 0, sum = 0.0
        let both = Float(1 / 0.7) * Float(1 / 0.4)
        for position in 0..<2_000 {
            mask.withUnsafeMutableBufferPointer { d.combinedMask($0.baseAddress!, k: k, position: position) }
            for j in 0..<k {
                XCTAssert(mask[j] == 0 || abs(mask[j] - both) < 1e-5, "entry \(mask[j])")
                kept += mask[j] != 0 ? 1 : 0
                sum += Double(mask[j])
                total += 1
            }
        }
        XCTAssertEqual(Double(kept) / Double(total), 0.7 * 0.4, accuracy: 0.01)
        XCTAssertEqual(sum / Double(total), 1, accuracy: 0.03)
    }

    /// The mask is a function of (seed, epoch, position) alone.
    func testMasksDependOnSeedEpochAndPositionOnly() {
        let k = 16
        func mask(_ d: EmbeddingDropout, _ position: Int) -> [Float] {
            var m = [Float](repeating: 0, count: EmbeddingDropout.scratchCount(k: k))
            m.withUnsafeMutableBufferPointer { d.combinedMask($0.baseAddress!, k: k, position: position) }
            return Array(m.prefix(k))
        }
        let base = EmbeddingDropout(userRate: 0.5, itemRate: 0.5)
        XCTAssertEqual(mask(base.keyed(seed: 1, epoch: 0), 7), mask(base.keyed(seed: 1, epoch: 0), 7))
        XCTAssertNotEqual(mask(base.keyed(seed: 1, epoch: 0), 7), mask(base.keyed(seed: 1, epoch: 1), 7))
        XCTAssertNotEqual(mask(base.keyed(seed: 1, epoch: 0), 7), mask(base.keyed(seed: 2, epoch: 0), 7))
        XCTAssertNotEqual(mask(base.keyed(seed: 1, epoch: 0), 7), mask(base.keyed(seed: 1, epoch: 0), 8))
    }

    /// One SGD step with dropout on one rating, against the update written out by hand.
    func testSGDStepWithDropoutMatchesTheHandWrittenUpdate() throws {
        let k = 5
        let model = try MFModel(config: MFConfig(nUsers: 1, nItems: 1, nFactors: k), initStd: 0.3, seed: 4)
        model.globalBias = 3
        model.userBias[0] = 0.2
        model.itemBias[0] = -0.1
        let p0 = Array(model.userFactors.buffer), q0 = Array(model.itemFactors.buffer)
        let data = try RatingSet(users: [0], items: [0], ratings: [4.5], count: 1, nUsers: 1, nItems: 1)
        let dropout = EmbeddingDropout(userRate: 0.4, itemRate: 0.2).keyed(seed: 0, epoch: 0)
        let lr: Float = 0.05, reg: Float = 0.02
        _ = SGDStep(model: model, data: data, lr: lr, reg: reg, dropout: dropout).run(0..<1)

        var c = [Float](repeating: 0, count: EmbeddingDropout.scratchCount(k: k))
        c.withUnsafeMutableBufferPointer { dropout.combinedMask($0.baseAddress!, k: k, position: 0) }
        var raw: Float = 3 + 0.2 - 0.1
        for j in 0..<k { raw += c[j] * p0[j] * q0[j] }
        let g = 4.5 - raw
        for j in 0..<k {
            XCTAssertEqual(model.userFactors[j], p0[j] + lr * (g * c[j] * q0[j] - reg * p0[j]), accuracy: 1e-6)
            XCTAssertEqual(model.itemFactors[j], q0[j] + lr * (g * c[j] * p0[j] - reg * q0[j]), accuracy: 1e-6)
        }
        XCTAssertEqual(model.userBias[0], 0.2 + lr * (g - reg * 0.2), accuracy: 1e-6)
    }

    /// Rates of zero leave both trainers' results bit for bit as without dropout; positive
    /// rates change them; Adam with dropout still gives the same weights for 1 and 2 threads.
    func testDropoutInBothTrainers() throws {
        // 2 epochs of 20k ratings; 1 epoch of 130k x 32 factors, enough work for two Adam threads.
        let small = UniformRatings(count: 20_000, nUsers: 1_000, nItems: 200, seed: 3)
        let large = UniformRatings(count: 130_000, nUsers: 1_500, nItems: 300, seed: 3)
        func run(_ optimizer: Optimizer, _ dropout: EmbeddingDropout?, threads: Int = 1, onLarge: Bool = false) throws -> [Float] {
            let ratings = onLarge ? large : small
            let model = try MFModel(config: MFConfig(nUsers: ratings.nUsers, nItems: ratings.nItems, nFactors: 32),
                                    initStd: 0.1, seed: 2)
            var options = TrainOptions()
            options.optimizer = optimizer
            options.epochs = onLarge ? 1 : 2
            options.batchSize = 512
            options.learningRate = optimizer == .adam ? 0.01 : 0.005
            options.weightDecay = 0.02
            options.threads = threads
            let trainer = try makeTrainer(model: model, data: try ratings.set(), options: options)
            if let dropout { try trainer.useEmbeddingDropout(dropout) }
            for _ in 0..<options.epochs {
                let stats = try trainer.runEpoch()
                XCTAssert(stats.loss.isFinite)
            }
            return Array(model.userFactors.buffer) + Array(model.itemFactors.buffer) + Array(model.itemBias.buffer)
        }
        for optimizer in [Optimizer.sgd, .adam] {
            let plain = try run(optimizer, nil)
            XCTAssertEqual(try run(optimizer, EmbeddingDropout(userRate: 0, itemRate: 0)), plain)
            let dropped = try run(optimizer, EmbeddingDropout(userRate: 0.3, itemRate: 0.6))
            XCTAssertNotEqual(dropped, plain)
            XCTAssert(dropped.allSatisfy { $0.isFinite })
        }
        let dropout = EmbeddingDropout(userRate: 0.3, itemRate: 0.6)
        XCTAssertEqual(try run(.adam, dropout, threads: 1, onLarge: true), try run(.adam, dropout, threads: 2, onLarge: true))
    }
}
