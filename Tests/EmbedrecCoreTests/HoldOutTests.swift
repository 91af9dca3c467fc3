import XCTest
@testable import EmbedrecCore

final class HoldOutTests: XCTestCase {
    func sgd(_ data: RatingSet, threads: Int = 1, nUsers: Int, nItems: Int) throws -> (MFModel, SGDTrainer) {
        let model = try MFModel(config: MFConfig(nUsers: nUsers, nItems: nItems, nFactors: 4), initStd: 0.1, seed: 3)
        var options = TrainOptions()
        options.epochs = 5
        options.learningRate = 0.02
        options.weightDecay = 0.05
        options.threads = threads
        options.seed = 9
        let trainer = try XCTUnwrap(makeTrainer(model: model, data: data, options: options) as? SGDTrainer)
        return (model, trainer)
    }

    /// Epochs leave the held-out ratings alone: a user whose only ratings are held out keeps
    /// its initial row, and the epoch reports the training part's count.
    func testHeldOutRatingsAreNotTrainedOn() throws {
        let d = UniformRatings(count: 5_000, nUsers: 100, nItems: 50, seed: 1)
        let (model, trainer) = try sgd(try d.set(), nUsers: 100, nItems: 50)
        try trainer.holdOut(500)
        XCTAssertEqual(trainer.trainingCount, 4_500)
        // Users of the training part, after the shuffle the trainer made.
        var trained = Set<Int32>()
        for r in 0..<trainer.trainingCount { trained.insert(trainer.data.users[r]) }
        let before = Array(model.userFactors.buffer)
        _ = try trainer.runEpoch()
        XCTAssertEqual(trainer.progress.snapshot.done, 4_500)
        let k = 4
        for u in 0..<100 where !trained.contains(Int32(u)) {
            XCTAssertEqual(Array(model.userFactors.buffer[u * k..<(u + 1) * k]), Array(before[u * k..<(u + 1) * k]))
        }
        XCTAssertNotEqual(Array(model.userFactors.buffer), before)
    }

    /// The held-out loss is the model's error on the last ratings of the data, and a hold-out
    /// of 0 trains on all again.
    func testHeldOutLossScoresTheTailAndZeroRestoresEverything() throws {
        let d = LowRankData(nUsers: 60, nItems: 40, density: 0.5, noise: 0.2)
        let (model, trainer) = try sgd(try d.trainSet(), nUsers: 60, nItems: 40)
        try trainer.holdOut(200)
        for _ in 0..<3 { _ = try trainer.runEpoch() }
        let n = trainer.data.count, start = n - 200
        let expected = model.evaluate(users: trainer.data.users.base + start, items: trainer.data.items.base + start,
                                      ratings: trainer.data.ratings.base + start, count: 200, threads: 1)
        let loss = try trainer.heldOutLoss()
        XCTAssertEqual(loss.mse, expected.mse)
        XCTAssertEqual(loss.mae, expected.mae)
        XCTAssertGreaterThan(loss.mse, 0)
        try trainer.holdOut(0)
        XCTAssertEqual(trainer.trainingCount, n)
        XCTAssertEqual(try trainer.heldOutLoss().mse, 0)
        _ = try trainer.runEpoch()
        XCTAssertEqual(trainer.progress.snapshot.done, n)
        XCTAssertThrowsError(try trainer.holdOut(n))
        XCTAssertThrowsError(try trainer.holdOut(-1))
    }

    /// New rates take effect for later epochs and are checked like the trainer's options.
    func testSetRatesChangesLaterEpochsAndIsValidated() throws {
        let d = LowRankData(nUsers: 40, nItems: 30, density: 0.5)
        let (_, trainer) = try sgd(try d.trainSet(), nUsers: 40, nItems: 30)
        try trainer.setRates(learningRate: 0.005, weightDecay: 0.5)
        XCTAssertEqual(trainer.options.learningRate, 0.005)
        XCTAssertEqual(trainer.options.weightDecay, 0.5)
        XCTAssertThrowsError(try trainer.setRates(learningRate: 0, weightDecay: 0.1))
        XCTAssertThrowsError(try trainer.setRates(learningRate: 0.01, weightDecay: -1))
        XCTAssertEqual(trainer.options.learningRate, 0.005)  // a refused change leaves them
    }

    /// With the deterministic schedule the data are shuffled again before the hold-out and the
    /// grid covers the training part only: two runs agree and the epoch counts that part.
    func testHoldOutWithTheDeterministicScheduleIsReproducible() throws {
        let d = UniformRatings(count: 450_000, nUsers: 2_000, nItems: 800, seed: 4)
        func run() throws -> [Float] {
            let (model, trainer) = try sgd(try d.set(), threads: 2, nUsers: 2_000, nItems: 800)
            trainer.useBlockSchedule(threads: 2)
            try trainer.holdOut(10_000)
            XCTAssertEqual(trainer.grid?.starts.last, 440_000)
            _ = try trainer.runEpoch()
            XCTAssertEqual(trainer.progress.snapshot.done, 440_000)
            return Array(model.itemFactors.buffer)
        }
        XCTAssertEqual(try run(), try run())
    }
}
