import XCTest
@testable import EmbedrecCore

/// The three shapes of the write-ups' networks, together using every node kind.
enum Architectures {
    static func tabular() -> [NodeSpec] {
        [.embedding(side: 0, dim: 3, std: 0.5), .embedding(side: 1, dim: 4, std: 0.5),
         .dropout(0, rate: 0.3), .dropout(1, rate: 0.3), .op(.concat, 2, 3),
         .dense(4, units: 5, activation: .relu), .dropout(5, rate: 0.2), .dense(6, units: 4, activation: .sigmoid),
         .dense(7, units: 1, activation: .linear), .scaledSigmoid(8, lo: 1, hi: 5)]
    }

    static func productWithBiases() -> [NodeSpec] {
        [.embedding(side: 0, dim: 4, std: 0.5), .embedding(side: 1, dim: 4, std: 0.5), .op(.product, 0, 1),
         .dropout(2, rate: 0.25), .embedding(side: 0, dim: 1, std: 0.5), .embedding(side: 1, dim: 1, std: 0.5),
         .op(.concat, 3, 4, 5), .dense(6, units: 3, activation: .relu), .dense(7, units: 1, activation: .linear)]
    }

    static func neuMF() -> [NodeSpec] {
        [.embedding(side: 0, dim: 3, std: 0.5), .embedding(side: 1, dim: 3, std: 0.5), .op(.product, 0, 1),
         .embedding(side: 0, dim: 2, std: 0.5), .embedding(side: 1, dim: 2, std: 0.5), .op(.concat, 3, 4),
         .dense(5, units: 4, activation: .relu), .dense(6, units: 2, activation: .relu), .op(.concat, 2, 7),
         .dense(8, units: 1, activation: .linear)]
    }

    static func dotProduct() -> [NodeSpec] {
        [.embedding(side: 0, dim: 3, std: 0.5), .embedding(side: 1, dim: 3, std: 0.5), .op(.dot, 0, 1),
         .dense(2, units: 1, activation: .linear)]
    }
}

final class NetworkGradientTests: XCTestCase {
    /// Examples of one tile: two repeat a (user, item) pair and users and items recur, so
    /// gradients of a row must add up over its examples.
    static let users: [Int32] = [0, 2, 1, 0, 2], items: [Int32] = [1, 3, 1, 1, 0]

    /// Sum of the tile's outputs, dropout masks from fixed per-example seeds (the same masks every call).
    func output(_ net: Network, _ tile: TilePass, _ weights: PaddedWeights) -> Double {
        weights.refresh()
        tile.forward(users: Self.users, items: Self.items, count: Self.users.count, dropoutSeeds: { UInt64(77 + $0) })
        return (0..<Self.users.count).reduce(0.0) { $0 + Double(tile.output($1)) }
    }

    func numeric(_ net: Network, _ tile: TilePass, _ weights: PaddedWeights, _ p: UnsafeMutablePointer<Float>) -> Double {
        let h: Float = 5e-3
        let saved = p.pointee
        p.pointee = saved + h
        let up = output(net, tile, weights)
        p.pointee = saved - h
        let down = output(net, tile, weights)
        p.pointee = saved
        return (up - down) / Double(2 * h)
    }

    /// The tile pass's analytic gradients of every parameter against central differences.
    func check(_ nodes: [NodeSpec], file: StaticString = #filePath, line: UInt = #line) throws {
        let net = try Network(nodes: nodes, nUsers: 3, nItems: 4, seed: 5)
        let weights = PaddedWeights(network: net)
        let tile = try TilePass(network: net, weights: weights, capacity: 8)
        let n = Self.users.count
        _ = output(net, tile, weights)
        let ones = [Float](repeating: 1, count: n)
        tile.backward(count: n, gOut: ones, fresh: true)
        // Copy the analytic gradients out before the numeric passes overwrite the tile.
        var analytic: [(UnsafeMutablePointer<Float>, Double, String)] = []
        for (j, node) in net.nodes.enumerated() {
            switch node.kind {
            case .dense:
                let fanIn = net.widths[node.inputs[0]], stride = TileKernels.padded(fanIn)
                for u in 0..<node.units {
                    for i in 0..<fanIn {
                        analytic.append((net.weights[j]!.base + u * fanIn + i, Double(tile.kernelGradients[j]![u * stride + i]),
                                         "node \(j) kernel[\(u), \(i)]"))
                    }
                    analytic.append((net.biases[j]!.base + u, Double(tile.biasGradients[j]![u]), "node \(j) bias[\(u)]"))
                }
            case .embedding:
                let ids = node.side == 0 ? Self.users : Self.items
                for row in Set(ids) {
                    for k in 0..<node.units {
                        var g = 0.0
                        for b in 0..<n where ids[b] == row { g += Double(tile.gradient(j, b)[k]) }
                        analytic.append((net.weights[j]!.base + Int(row) * node.units + k, g, "node \(j) row \(row)[\(k)]"))
                    }
                }
            default:
                break
            }
        }
        XCTAssertGreaterThan(analytic.count, 10, file: file, line: line)
        for (p, g, what) in analytic {
            XCTAssertEqual(g, numeric(net, tile, weights, p), accuracy: 4e-3, what, file: file, line: line)
        }
    }

    /// Without dropout, the tile pass computes what the per-example pass (used for predictions) does.
    func testTilePassMatchesThePerExamplePass() throws {
        for nodes in [Architectures.tabular(), Architectures.productWithBiases(), Architectures.neuMF(), Architectures.dotProduct()] {
            let net = try Network(nodes: nodes, nUsers: 3, nItems: 4, seed: 9)
            let tile = try TilePass(network: net, weights: PaddedWeights(network: net), capacity: 8)
            tile.forward(users: Self.users, items: Self.items, count: Self.users.count, dropoutSeeds: nil)
            for b in 0..<Self.users.count {
                let one = net.referenceOutput(user: Int(Self.users[b]), item: Int(Self.items[b]))
                XCTAssertEqual(tile.output(b), one, accuracy: 1e-5 * max(1, abs(one)))
            }
        }
    }

    func testTabularNetworkGradients() throws { try check(Architectures.tabular()) }
    func testProductWithBiasesGradients() throws { try check(Architectures.productWithBiases()) }
    func testNeuMFGradients() throws { try check(Architectures.neuMF()) }
    func testDotGradients() throws { try check(Architectures.dotProduct()) }

    func testSpecValidation() {
        XCTAssertThrowsError(try Network(nodes: [.embedding(side: 0, dim: 2)], nUsers: 2, nItems: 2, seed: 0))  // width 2 output
        XCTAssertThrowsError(try Network(nodes: [.embedding(side: 0, dim: 2), .embedding(side: 1, dim: 3), .op(.dot, 0, 1)],
                                         nUsers: 2, nItems: 2, seed: 0))  // width mismatch
        XCTAssertThrowsError(try Network(nodes: [.op(.dot, 1, 2)], nUsers: 2, nItems: 2, seed: 0))  // forward reference
        XCTAssertThrowsError(try Network(nodes: [.embedding(side: 0, dim: 1), .dropout(0, rate: 1)], nUsers: 2, nItems: 2, seed: 0))
        XCTAssertThrowsError(try Network(nodes: [.embedding(side: 2, dim: 1)], nUsers: 2, nItems: 2, seed: 0))
        XCTAssertNoThrow(try Network(nodes: Architectures.neuMF(), nUsers: 2, nItems: 2, seed: 0))
    }
}

final class NetworkTrainingTests: XCTestCase {
    func options(epochs: Int, threads: Int = 0, seed: UInt64 = 1) -> TrainOptions {
        var o = TrainOptions()
        o.optimizer = .adam
        o.epochs = epochs
        o.batchSize = 256
        o.learningRate = 0.01
        o.schedule = .oneCycle
        o.threads = threads
        o.seed = seed
        return o
    }

    func testEachArchitectureLearnsLowRankData() throws {
        let data = LowRankData(nUsers: 100, nItems: 80, rank: 3, density: 0.5, noise: 0.1)
        var constant = 0.0
        for r in 0..<data.testRatings.count { constant += Double((data.testRatings[r] - 3) * (data.testRatings[r] - 3)) }
        constant = (constant / Double(data.testRatings.count)).squareRoot()
        let wide: [[NodeSpec]] = [
            [.embedding(side: 0, dim: 8, std: 0.1), .embedding(side: 1, dim: 8, std: 0.1), .op(.product, 0, 1),
             .embedding(side: 0, dim: 1, std: 0.01), .embedding(side: 1, dim: 1, std: 0.01), .op(.concat, 2, 3, 4),
             .dense(5, units: 8, activation: .relu), .dense(6, units: 1, activation: .linear)],
            [.embedding(side: 0, dim: 8, std: 0.1), .embedding(side: 1, dim: 8, std: 0.1), .op(.concat, 0, 1),
             .dense(2, units: 24, activation: .relu), .dense(3, units: 12, activation: .relu), .dense(4, units: 1, activation: .linear)],
        ]
        for nodes in wide {
            let net = try Network(nodes: nodes, nUsers: data.nUsers, nItems: data.nItems, seed: 3)
            var o = options(epochs: 30)
            o.batchSize = 128
            o.learningRate = 0.02
            let trainer = try NetworkTrainer(network: net, data: try data.trainSet(), loss: .mse, negatives: 0, options: o)
            for _ in 0..<30 { _ = try trainer.runEpoch() }
            var out = [Float](repeating: 0, count: data.testUsers.count)
            try net.predict(users: data.testUsers, items: data.testItems, count: out.count, logistic: false, out: &out, threads: 1)
            var se = 0.0
            for r in 0..<out.count { se += Double((out[r] - data.testRatings[r]) * (out[r] - data.testRatings[r])) }
            let rmse = (se / Double(out.count)).squareRoot()
            XCTAssertLessThan(rmse, 0.5 * constant, "test RMSE \(rmse) vs constant predictor \(constant)")
        }
    }

    func trainedWeights(threads: Int, seed: UInt64) throws -> [Float] {
        let data = LowRankData(nUsers: 60, nItems: 50)
        let net = try Network(nodes: Architectures.tabular(), nUsers: data.nUsers, nItems: data.nItems, seed: seed)
        let trainer = try NetworkTrainer(network: net, data: try data.trainSet(), loss: .mse, negatives: 0,
                                         options: options(epochs: 3, threads: threads, seed: seed))
        for _ in 0..<3 { _ = try trainer.runEpoch() }
        return net.weights.compactMap { $0 }.flatMap { Array($0.buffer) }
    }

    /// Dense layers go whole to the least-loaded thread, largest first, unless one is larger
    /// than 1.25 times an even share of them all (then every thread steps a share of its units).
    func testDenseLayersGoWholeToThreadsUnlessOneDominates() throws {
        let mfNetwork: [NodeSpec] = [
            .embedding(side: 0, dim: 30), .embedding(side: 1, dim: 30), .op(.product, 0, 1), .dropout(2, rate: 0.2),
            .embedding(side: 0, dim: 1), .embedding(side: 1, dim: 1), .op(.concat, 3, 4, 5),
            .dense(6, units: 50, activation: .relu), .dense(7, units: 20, activation: .relu), .dense(8, units: 1, activation: .linear)]
        let mf = try Network(nodes: mfNetwork, nUsers: 3, nItems: 3, seed: 1)
        // Kernels of 1,600, 1,000 and 20 floats: the first to thread 0, the others to thread 1.
        XCTAssertEqual(NetworkTrainer.denseStepOwners(network: mf, threads: 2), [nil, nil, nil, nil, nil, nil, nil, 0, 1, 1])
        XCTAssertEqual(NetworkTrainer.denseStepOwners(network: mf, threads: 1), [nil, nil, nil, nil, nil, nil, nil, 0, 0, 0])
        let tabular: [NodeSpec] = [
            .embedding(side: 0, dim: 50), .embedding(side: 1, dim: 50), .op(.concat, 0, 1),
            .dense(2, units: 20, activation: .relu), .dense(3, units: 1, activation: .linear)]
        let tab = try Network(nodes: tabular, nUsers: 3, nItems: 3, seed: 1)
        // One kernel of 2,000 floats against 20: split between the threads.
        XCTAssertEqual(NetworkTrainer.denseStepOwners(network: tab, threads: 2), [nil, nil, nil, nil, 0])
    }

    func testSameSeedSameWeightsWhateverTheThreadCount() throws {
        let one = try trainedWeights(threads: 1, seed: 4)
        XCTAssertEqual(one, try trainedWeights(threads: 0, seed: 4))
        XCTAssertEqual(one, try trainedWeights(threads: 2, seed: 4))
        XCTAssertEqual(one, try trainedWeights(threads: 3, seed: 4))  // uneven split of rows and kernels
        // More threads than chunks: every half of the chunks' dense gradients spans two threads.
        XCTAssertEqual(one, try trainedWeights(threads: 8, seed: 4))
        XCTAssertNotEqual(one, try trainedWeights(threads: 1, seed: 5))
    }

    /// With Adam, each side's embedding rows train in records (`SideRecords`: a joint row of
    /// the side's nodes, then its moments): the same bits as separate tables and moment tables,
    /// on one thread and on several, for every architecture.
    func testSideRecordsGiveTheBitsOfSeparateTables() throws {
        let data = LowRankData(nUsers: 60, nItems: 50)
        for (name, nodes) in [("tabular", Architectures.tabular()), ("product with biases", Architectures.productWithBiases()),
                              ("NeuMF", Architectures.neuMF()), ("dot", Architectures.dotProduct())] {
            for threads in [1, 2] {
                var weights: [[Float]] = []
                for records in [true, false] {
                    let net = try Network(nodes: nodes, nUsers: data.nUsers, nItems: data.nItems, seed: 8)
                    var o = options(epochs: 3, threads: threads, seed: 8)
                    o.batchSize = 100
                    let trainer = try NetworkTrainer(network: net, data: try data.trainSet(), loss: .mse, negatives: 0,
                                                     options: o, sideRecords: records)
                    XCTAssertEqual(trainer.sideRecords.map { $0 != nil }, [records, records], name)
                    for _ in 0..<3 { _ = try trainer.runEpoch() }
                    weights.append(net.weights.compactMap { $0 }.flatMap { Array($0.buffer) }
                                   + net.biases.compactMap { $0 }.flatMap { Array($0.buffer) })
                }
                XCTAssertEqual(weights[0].map(\.bitPattern), weights[1].map(\.bitPattern), "\(name), \(threads) threads")
            }
        }
    }

    /// A side's nodes share records only when every reader writes exactly their widths of the
    /// gradient (not a dense layer, which writes padded rows) and they agree on being
    /// non-negative; otherwise that side keeps separate tables, and still trains.
    func testSideRecordsOnlyWhereTheNodesCanShareAJointRow() throws {
        let data = LowRankData(nUsers: 30, nItems: 20)
        let denseOnUsers: [NodeSpec] = [.embedding(side: 0, dim: 5, std: 0.3), .dense(0, units: 3, activation: .relu),
                                         .embedding(side: 1, dim: 3, std: 0.3), .op(.dot, 1, 2), .dense(3, units: 1, activation: .linear)]
        var mixed = Architectures.productWithBiases()
        mixed[0].nonNegative = true  // the user embedding, not the user bias
        for (nodes, expected) in [(denseOnUsers, [false, true]), (mixed, [false, true])] {
            let net = try Network(nodes: nodes, nUsers: data.nUsers, nItems: data.nItems, seed: 2)
            let before = net.weights.compactMap { $0 }.flatMap { Array($0.buffer) }
            let trainer = try NetworkTrainer(network: net, data: try data.trainSet(), loss: .mse, negatives: 0, options: options(epochs: 1))
            XCTAssertEqual(trainer.sideRecords.map { $0 != nil }, expected)
            _ = try trainer.runEpoch()
            XCTAssertNotEqual(net.weights.compactMap { $0 }.flatMap { Array($0.buffer) }, before)
        }
        var sgd = options(epochs: 1)
        sgd.optimizer = .sgd
        let net = try Network(nodes: Architectures.productWithBiases(), nUsers: data.nUsers, nItems: data.nItems, seed: 2)
        let trainer = try NetworkTrainer(network: net, data: try data.trainSet(), loss: .mse, negatives: 0, options: sgd)
        XCTAssertEqual(trainer.sideRecords.map { $0 != nil }, [false, false], "SGD has no moments to keep beside the rows")
    }

    /// The records are copied into the network's tables after every epoch, an interrupted one
    /// too: the network then holds every step taken.
    func testNetworkHoldsEveryStepAfterAnInterruptedEpoch() throws {
        let data = try UniformRatings(count: 200_000, nUsers: 2_000, nItems: 400, seed: 5).set()
        let net = try Network(nodes: Architectures.productWithBiases(), nUsers: 2_000, nItems: 400, seed: 3)
        var o = options(epochs: 5, threads: 1)
        o.batchSize = 64
        let trainer = try NetworkTrainer(network: net, data: data, loss: .mse, negatives: 0, options: o)
        func tablesMatchRecords() -> Bool {
            for records in trainer.sideRecords.compactMap({ $0 }) {
                for (k, j) in records.nodes.enumerated() {
                    let w = net.widths[j], table = net.weights[j]!
                    for r in 0..<records.rows {
                        for e in 0..<w where table[r * w + e] != records.record(r)[records.offsets[k] + e] { return false }
                    }
                }
            }
            return true
        }
        XCTAssertEqual(trainer.sideRecords.compactMap { $0 }.count, 2)
        var interrupted = false
        for _ in 0..<20 where !interrupted {
            let afterLast = net.weights[0]!.buffer.map { $0 }
            interrupted = try runInterruptedEpoch(trainer)
            if interrupted { XCTAssertNotEqual(net.weights[0]!.buffer.map { $0 }, afterLast, "the partial epoch's steps reached the network") }
            XCTAssertTrue(tablesMatchRecords())
        }
        XCTAssertTrue(interrupted, "no epoch was interrupted half-way")
    }

    func testDropoutIsOffWhenPredicting() throws {
        let net = try Network(nodes: Architectures.tabular(), nUsers: 3, nItems: 4, seed: 5)
        var first = [Float](repeating: 0, count: 4), second = [Float](repeating: 0, count: 4)
        let users: [Int32] = [0, 1, 2, 0], items: [Int32] = [0, 1, 2, 3]
        try net.predict(users: users, items: items, count: 4, logistic: false, out: &first, threads: 1)
        try net.predict(users: users, items: items, count: 4, logistic: false, out: &second, threads: 1)
        XCTAssertEqual(first, second)
        // Equal to a tile pass without dropout seeds, different from one with them.
        let tile = try TilePass(network: net, weights: PaddedWeights(network: net), capacity: 4)
        tile.forward(users: users, items: items, count: 4, dropoutSeeds: nil)
        XCTAssertEqual((0..<4).map { tile.output($0) }, first)
        XCTAssertEqual(net.referenceOutput(user: 0, item: 0), first[0], accuracy: 1e-5)
        var differs = false
        for s in 0..<20 {
            tile.forward(users: users, items: items, count: 4, dropoutSeeds: { UInt64(s * 4 + $0) })
            if (0..<4).map({ tile.output($0) }) != first { differs = true }
        }
        XCTAssertTrue(differs)
    }

    func testImplicitTrainingWithNegativesRanksPositivesHigher() throws {
        // Users 0..<30 interact with items 0..<20, users 30..<60 with items 20..<40.
        var users: [Int32] = [], items: [Int32] = []
        var rng = Xoshiro256(seed: 2)
        for u in 0..<60 {
            let base = u < 30 ? 0 : 20
            for i in 0..<20 where rng.nextUnitFloat() < 0.5 { users.append(Int32(u)); items.append(Int32(base + i)) }
        }
        let ones = [Float](repeating: 1, count: users.count)
        let data = try RatingSet(users: users, items: items, ratings: ones, count: users.count, nUsers: 60, nItems: 40)
        let net = try Network(nodes: Architectures.neuMF(), nUsers: 60, nItems: 40, seed: 1)
        var o = options(epochs: 60)
        o.learningRate = 0.05
        o.batchSize = 64
        let trainer = try NetworkTrainer(network: net, data: data, loss: .bce, negatives: 4, options: o)
        for _ in 0..<60 { _ = try trainer.runEpoch() }
        var inGroup = [Float](repeating: 0, count: 1), outGroup = [Float](repeating: 0, count: 1)
        var wins = 0
        for u in 0..<60 {
            let own: Int32 = u < 30 ? 5 : 25, other: Int32 = u < 30 ? 25 : 5
            try net.predict(users: [Int32(u)], items: [own], count: 1, logistic: true, out: &inGroup, threads: 1)
            try net.predict(users: [Int32(u)], items: [other], count: 1, logistic: true, out: &outGroup, threads: 1)
            XCTAssertTrue((0...1).contains(inGroup[0]))
            if inGroup[0] > outGroup[0] { wins += 1 }
        }
        XCTAssertGreaterThan(wins, 54)
    }

    func testBCERejectsTargetsOutsideZeroOne() throws {
        let net = try Network(nodes: Architectures.neuMF(), nUsers: 2, nItems: 2, seed: 1)
        let data = try RatingSet(users: [0], items: [1], ratings: [3], count: 1, nUsers: 2, nItems: 2)
        XCTAssertThrowsError(try NetworkTrainer(network: net, data: data, loss: .bce, negatives: 0, options: options(epochs: 1)))
        XCTAssertThrowsError(try NetworkTrainer(network: net, data: data, loss: .mse, negatives: 2, options: options(epochs: 1)))
    }
}

final class FrozenEmbeddingTests: XCTestCase {
    /// A fixed embedding (an item's encoded features) is read like any table and never moves,
    /// with Adam and with SGD; the trained tables around it do move.
    func testFixedTablesStayWhileTheRestTrains() throws {
        let data = LowRankData(nUsers: 60, nItems: 40, rank: 2, density: 0.5)
        var features = NodeSpec.embedding(side: 1, dim: 3, std: 0.5)
        features.frozen = true
        let nodes: [NodeSpec] = [.embedding(side: 0, dim: 4, std: 0.1), .embedding(side: 1, dim: 4, std: 0.1), features,
                                 .dense(2, units: 4, activation: .linear), .op(.product, 0, 3), .op(.concat, 0, 1, 2, 4),
                                 .dense(5, units: 8, activation: .relu), .dense(6, units: 1, activation: .linear)]
        for optimizer in [Optimizer.adam, .sgd] {
            let net = try Network(nodes: nodes, nUsers: data.nUsers, nItems: data.nItems, seed: 2)
            let fixed = Array(net.weights[2]!.buffer), user = Array(net.weights[0]!.buffer)
            var o = TrainOptions()
            o.optimizer = optimizer
            o.epochs = 3
            o.batchSize = 64
            o.learningRate = 0.01
            o.weightDecay = 0.1
            let trainer = try NetworkTrainer(network: net, data: try data.trainSet(), loss: .mse, negatives: 0, options: o)
            for _ in 0..<3 { _ = try trainer.runEpoch() }
            XCTAssertEqual(Array(net.weights[2]!.buffer), fixed, "\(optimizer)")
            XCTAssertNotEqual(Array(net.weights[0]!.buffer), user, "\(optimizer)")
        }
    }
}
