import XCTest
@testable import EmbedrecCore

final class BlockSGDTests: XCTestCase {
    /// A block that is the whole data set is one epoch of the local SGD trainer, bit for bit:
    /// the distributed fit runs the local update rule, nothing else.
    func testOneBlockIsOneEpochOfLocalSGD() throws {
        let data = LowRankData(nUsers: 60, nItems: 40)
        let k = 6
        let config = MFConfig(nUsers: data.nUsers, nItems: data.nItems, nFactors: k, biases: true, yRange: (0.5, 5.5))
        let local = try MFModel(config: config, initStd: 0.1, seed: 3)
        local.globalBias = 0.4
        local.initialisedFromData = true
        var P = Array(local.userFactors.buffer), Q = Array(local.itemFactors.buffer)
        var bu = [Float](repeating: 0.05, count: data.nUsers), bi = [Float](repeating: -0.02, count: data.nItems)
        local.userBias.base.update(from: bu, count: bu.count)
        local.itemBias.base.update(from: bi, count: bi.count)
        var options = TrainOptions()
        options.optimizer = .sgd
        options.epochs = 1
        options.learningRate = 0.02
        options.weightDecay = 0.03
        options.threads = 1
        options.seed = 11
        let trainer = try makeTrainer(model: local, data: try data.trainSet(), options: options)
        let expected = try trainer.runEpoch()
        let got = try P.withUnsafeMutableBufferPointer { p in
            try Q.withUnsafeMutableBufferPointer { q in
                try bu.withUnsafeMutableBufferPointer { ub in
                    try bi.withUnsafeMutableBufferPointer { ib in
                        try BlockSGD.run(ratings: try data.trainSet(),
                                         users: .init(factors: p.baseAddress!, biases: ub.baseAddress!, rows: data.nUsers),
                                         items: .init(factors: q.baseAddress!, biases: ib.baseAddress!, rows: data.nItems),
                                         nFactors: k, biases: true, nonNegative: false, yRange: (0.5, 5.5),
                                         globalBias: 0.4, options: options, dropout: .none)
                    }
                }
            }
        }
        XCTAssertEqual(P, Array(local.userFactors.buffer))
        XCTAssertEqual(Q, Array(local.itemFactors.buffer))
        XCTAssertEqual(bi, Array(local.itemBias.buffer))
        XCTAssertEqual(got.loss, expected.loss)
    }
}
