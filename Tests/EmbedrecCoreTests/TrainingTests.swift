import XCTest
@testable import EmbedrecCore

final class TrainingTests: XCTestCase {
    /// init_std 0 (a model about to be loaded) leaves every factor +0: nothing is drawn (a draw
    /// scaled by 0 would leave -0 where it was negative).
    func testAZeroInitStdLeavesTheFactorsAtPositiveZero() throws {
        for nonNegative in [false, true] {
            let model = try MFModel(config: MFConfig(nUsers: 50, nItems: 40, nFactors: 9, nonNegative: nonNegative),
                                    initStd: 0, seed: 7)
            for t in [model.userFactors, model.itemFactors] {
                XCTAssertTrue(t.buffer.allSatisfy { $0.bitPattern == 0 })
            }
        }
    }

    /// On ratings = 3 + rank-4 signal + N(0, 0.1²) noise, a trained model's held-out RMSE comes
    /// close to the noise level (a constant predictor is ~10 times worse).
    func testSGDLearnsLowRankDataDownToTheNoise() throws {
        let data = LowRankData()
        let model = try MFModel(config: MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: 8), initStd: 0.1, seed: 1)
        var options = TrainOptions()
        options.optimizer = .sgd
        options.epochs = 80
        options.learningRate = 0.01
        options.weightDecay = 0.01
        options.threads = 1
        try train(model, try data.trainSet(), options)
        let rmse = data.testRMSE(model)
        XCTAssertLessThan(rmse, 0.2, "test RMSE \(rmse) should approach the noise level 0.1")
    }

    func testAdamLearnsLowRankDataDownToTheNoise() throws {
        let data = LowRankData()
        let model = try MFModel(config: MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: 8), initStd: 0.1, seed: 1)
        var options = TrainOptions()
        options.optimizer = .adam
        options.epochs = 60
        options.batchSize = 256
        options.learningRate = 0.02
        options.weightDecay = 0.01
        options.schedule = .oneCycle
        options.threads = 1
        try train(model, try data.trainSet(), options)
        let rmse = data.testRMSE(model)
        XCTAssertLessThan(rmse, 0.2, "test RMSE \(rmse) should approach the noise level 0.1")
    }

    func testSameSeedGivesSameEmbeddings() throws {
        let data = LowRankData(nUsers: 80, nItems: 60)
        func run(seed: UInt64, optimizer: Optimizer) throws -> [Float] {
            let model = try MFModel(config: MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: 6), initStd: 0.1, seed: seed)
            var options = TrainOptions()
            options.optimizer = optimizer
            options.epochs = 5
            options.seed = seed
            options.threads = 0  // small data runs on one thread whatever is asked
            try train(model, try data.trainSet(), options)
            return Array(model.userFactors.buffer) + Array(model.itemBias.buffer)
        }
        for optimizer in [Optimizer.sgd, .adam] {
            XCTAssertEqual(try run(seed: 3, optimizer: optimizer), try run(seed: 3, optimizer: optimizer))
            XCTAssertNotEqual(try run(seed: 3, optimizer: optimizer), try run(seed: 4, optimizer: optimizer))
        }
    }

    /// Adam's batch is split over threads by rating (errors) and by row (gradient sums, Adam
    /// steps, each row on the thread of its first rating), and every row's sum runs in batch
    /// order: 1, 2 and 3 threads give identical weights. (200k ratings x 32 factors is enough
    /// work for three threads: `resolveThreads` gives one per 2M rating-factors.)
    func testAdamGivesTheSameWeightsWhateverTheThreadCount() throws {
        let ratings = UniformRatings(count: 200_000, nUsers: 2_000, nItems: 300, seed: 9)
        func run(threads: Int) throws -> [Float] {
            let data = try ratings.set()
            let model = try MFModel(config: MFConfig(nUsers: 2_000, nItems: 300, nFactors: 32), initStd: 0.1, seed: 1)
            var options = TrainOptions()
            options.optimizer = .adam
            options.batchSize = 512
            options.threads = threads
            options.epochs = 2
            try train(model, data, options)
            return Array(model.userFactors.buffer) + Array(model.itemFactors.buffer) + Array(model.userBias.buffer)
                + Array(model.itemBias.buffer)
        }
        XCTAssertEqual(resolveThreads(3, work: 200_000 * 32, minPerThread: 2_000_000), 3)  // the runs below do use them
        let one = try run(threads: 1)
        XCTAssertEqual(one, try run(threads: 2))
        XCTAssertEqual(one, try run(threads: 3))  // 512 ratings split 170/171/171: uneven parts
    }

    func testNonNegativeModelStaysNonNegative() throws {
        let data = LowRankData(nUsers: 80, nItems: 60)
        for optimizer in [Optimizer.sgd, .adam] {
            let model = try MFModel(config: MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: 6, nonNegative: true),
                                    initStd: 0.1, seed: 2)
            var options = TrainOptions()
            options.optimizer = optimizer
            options.epochs = 5
            try train(model, try data.trainSet(), options)
            XCTAssertTrue(model.userFactors.buffer.allSatisfy { $0 >= 0 })
            XCTAssertTrue(model.itemFactors.buffer.allSatisfy { $0 >= 0 })
            XCTAssertTrue(model.userFactors.buffer.contains { $0 > 0 })
        }
    }

    func testYRangeKeepsPredictionsInsideTheRange() throws {
        let data = LowRankData(nUsers: 80, nItems: 60)
        let model = try MFModel(config: MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: 6, yRange: (2.5, 3.5)),
                                initStd: 0.1, seed: 2)
        var options = TrainOptions()
        options.epochs = 10
        try train(model, try data.trainSet(), options)
        var out = [Float](repeating: 0, count: data.testUsers.count)
        model.predict(users: data.testUsers, items: data.testItems, count: out.count, out: &out, threads: 1)
        XCTAssertTrue(out.allSatisfy { $0 > 2.5 && $0 < 3.5 })
    }

    func testCancelStopsAnEpochAndLeavesFiniteWeights() throws {
        let data = LowRankData()
        let model = try MFModel(config: MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: 8), initStd: 0.1, seed: 1)
        let trainer = try makeTrainer(model: model, data: try data.trainSet(), options: TrainOptions())
        trainer.cancel.set()
        XCTAssertThrowsError(try trainer.runEpoch()) { error in
            XCTAssertEqual((error as? CoreError)?.kind, .cancelled)
        }
        XCTAssertTrue(model.userFactors.buffer.allSatisfy { $0.isFinite })
        trainer.cancel.clear()
        XCTAssertNoThrow(try trainer.runEpoch())
    }

    /// Adam trains rows in its own records (`Records`) and copies them into the model after each
    /// epoch. An epoch interrupted half-way must copy them too: the model then holds every step
    /// taken, as it did when Adam stepped the model's tables directly.
    func testAdamModelHoldsEveryStepAfterAnInterruptedEpoch() throws {
        let data = try UniformRatings(count: 300_000, nUsers: 3_000, nItems: 500, seed: 21).set()
        let model = try MFModel(config: MFConfig(nUsers: 3_000, nItems: 500, nFactors: 12), initStd: 0.1, seed: 1)
        var options = TrainOptions()
        options.optimizer = .adam
        options.batchSize = 64
        options.threads = 1
        let trainer = try XCTUnwrap(try makeTrainer(model: model, data: data, options: options) as? AdamTrainer)
        func modelMatchesRecords() -> Bool {
            for (records, factors, biases) in [(trainer.userRecords, model.userFactors, model.userBias),
                                               (trainer.itemRecords, model.itemFactors, model.itemBias)] {
                for r in 0..<records.rows {
                    let rec = records.record(r)
                    if rec[records.bias] != biases[r] { return false }
                    for j in 0..<records.k where rec[j] != factors[r * records.k + j] { return false }
                }
            }
            return true
        }
        let before = Array(model.userFactors.buffer)
        _ = try trainer.runEpoch()
        XCTAssertTrue(Array(model.userFactors.buffer) != before, "the epoch's steps reached the model")
        XCTAssertTrue(modelMatchesRecords())
        // Interrupt the next epoch once some batches have run.
        var interrupted = false
        for _ in 0..<20 where !interrupted {
            let afterLast = Array(model.userFactors.buffer)
            interrupted = try runInterruptedEpoch(trainer)
            if interrupted { XCTAssertTrue(Array(model.userFactors.buffer) != afterLast, "the partial epoch's steps reached the model") }
            XCTAssertTrue(modelMatchesRecords())
        }
        XCTAssertTrue(interrupted, "no epoch was interrupted half-way")
    }

    /// Adam's step-1 parts tile the batch in order, thread 0's a little shorter than the rest.
    func testAdamBatchPartsTileTheBatch() {
        for threads in 1...5 {
            for count in [1, 7, 256, 1_000, 1_024] {
                let starts = (0...threads).map { AdamTrainer.partStart($0, of: threads, count: count) }
                XCTAssertEqual(starts.first, 0)
                XCTAssertEqual(starts.last, count)
                XCTAssertEqual(starts, starts.sorted(), "\(threads) threads, \(count) ratings")
                if threads > 1 && count >= 256 {
                    XCTAssertLessThan(starts[1], count / threads)
                    XCTAssertGreaterThan(starts[1], count / threads * 8 / 10)
                }
            }
        }
    }

    func testOneCycleScheduleShape() {
        var options = TrainOptions()
        options.learningRate = 1
        options.schedule = .oneCycle
        XCTAssertEqual(options.learningRate(step: 0, totalSteps: 100), 1.0 / 25, accuracy: 1e-6)
        XCTAssertEqual(options.learningRate(step: 25, totalSteps: 100), 1, accuracy: 1e-6)
        XCTAssertLessThan(options.learningRate(step: 99, totalSteps: 100), 0.01)
    }
}

final class ProgressTests: XCTestCase {
    func testProgressCountsEveryExampleAndItsLoss() throws {
        let data = LowRankData(nUsers: 100, nItems: 80)
        for optimizer in [Optimizer.sgd, .adam] {
            let model = try MFModel(config: MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: 4), initStd: 0.1, seed: 1)
            var options = TrainOptions()
            options.optimizer = optimizer
            options.batchSize = 100
            let trainer = try makeTrainer(model: model, data: try data.trainSet(), options: options)
            let stats = try trainer.runEpoch()
            let p = trainer.progress.snapshot
            XCTAssertEqual(p.done, data.trainUsers.count)
            XCTAssertEqual(p.total, data.trainUsers.count)
            XCTAssertEqual(p.lossSum / Double(p.done), stats.loss, accuracy: 1e-9)
        }
    }
}

final class BlockScheduleTests: XCTestCase {
    func testBlockScheduleIsRepeatableAndSortsRatingsIntoBands() throws {
        let ratings = UniformRatings(count: 450_000, nUsers: 3_000, nItems: 500, seed: 4)
        func run() throws -> ([Float], BlockGrid?, [Int32], [Int32], [Float]) {
            let data = try ratings.set()
            let model = try MFModel(config: MFConfig(nUsers: 3_000, nItems: 500, nFactors: 4), initStd: 0.1, seed: 1)
            var options = TrainOptions()
            options.threads = 2
            options.epochs = 2
            let trainer = try makeTrainer(model: model, data: data, options: options) as! SGDTrainer
            trainer.useBlockSchedule(threads: 2)
            for _ in 0..<2 { _ = try trainer.runEpoch() }
            return (Array(model.itemFactors.buffer), trainer.grid, Array(trainer.data.users.buffer),
                    Array(trainer.data.items.buffer), Array(trainer.data.ratings.buffer))
        }
        let (first, grid, us, its, rs) = try run()
        let (second, _, _, _, _) = try run()
        XCTAssertEqual(first, second)
        // Sorting into blocks happens in place: the same ratings, only reordered.
        func triples(_ u: [Int32], _ i: [Int32], _ r: [Float]) -> [[Float]] {
            (0..<u.count).map { [Float(u[$0]), Float(i[$0]), r[$0]] }.sorted { $0.lexicographicallyPrecedes($1) }
        }
        XCTAssertEqual(triples(us, its, rs), triples(ratings.users, ratings.items, ratings.ratings))
        let g = try XCTUnwrap(grid)
        XCTAssertEqual(g.bands, 2)
        XCTAssertEqual(g.starts.last, ratings.users.count)
        // Every rating of block b lies in b's user band and item band.
        for b in 0..<4 {
            for r in g.starts[b]..<g.starts[b + 1] {
                XCTAssertEqual(Int(us[r]) * 2 / 3_000, b / 2)
                XCTAssertEqual(Int(its[r]) * 2 / 500, b % 2)
            }
        }
    }
}
