import XCTest
@testable import EmbedrecCore

/// Collects the parameter gradients of one backward pass.
final class CapturingSink: GradientSink {
    var dense: [Int: (Buffer<Float>, Buffer<Float>)] = [:]
    var embedding: [Int: [Int: [Float]]] = [:]
    let network: Network

    init(_ network: Network) {
        self.network = network
        for (j, n) in network.nodes.enumerated() where n.kind == .dense {
            dense[j] = (Buffer(repeating: 0, count: network.weights[j]!.count), Buffer(repeating: 0, count: network.biases[j]!.count))
        }
    }

    func denseGradient(node: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        (dense[node]!.0.base, dense[node]!.1.base)
    }

    func addEmbeddingGradient(node: Int, row: Int, _ g: UnsafePointer<Float>, _ width: Int) {
        var current = embedding[node, default: [:]][row] ?? [Float](repeating: 0, count: width)
        for k in 0..<width { current[k] += g[k] }
        embedding[node, default: [:]][row] = current
    }
}

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
    /// Output with dropout masks drawn from a fixed seed (the same masks every call).
    func output(_ net: Network, _ u: Int, _ i: Int) -> Double {
        let act = Buffer<Float>(repeating: 0, count: net.activationSize)
        let mask = Buffer<Float>(repeating: 0, count: net.activationSize)
        var rng: Xoshiro256? = Xoshiro256(seed: 77)
        return Double(net.forward(user: u, item: i, act: act.base, mask: mask.base, rng: &rng))
    }

    func numeric(_ net: Network, _ p: UnsafeMutablePointer<Float>, _ u: Int, _ i: Int) -> Double {
        let h: Float = 5e-3
        let saved = p.pointee
        p.pointee = saved + h
        let up = output(net, u, i)
        p.pointee = saved - h
        let down = output(net, u, i)
        p.pointee = saved
        return (up - down) / Double(2 * h)
    }

    func check(_ nodes: [NodeSpec], file: StaticString = #filePath, line: UInt = #line) throws {
        let net = try Network(nodes: nodes, nUsers: 3, nItems: 4, seed: 5)
        for (u, i) in [(0, 1), (2, 3)] {
            let act = Buffer<Float>(repeating: 0, count: net.activationSize)
            let mask = Buffer<Float>(repeating: 0, count: net.activationSize)
            let grad = Buffer<Float>(repeating: 0, count: net.activationSize)
            var rng: Xoshiro256? = Xoshiro256(seed: 77)
            _ = net.forward(user: u, item: i, act: act.base, mask: mask.base, rng: &rng)
            let sink = CapturingSink(net)
            net.backward(user: u, item: i, gOut: 1, act: act.base, mask: mask.base, grad: grad.base, sink: sink)
            var checked = 0
            for (j, n) in net.nodes.enumerated() {
                switch n.kind {
                case .dense:
                    let (gW, gB) = sink.dense[j]!
                    for k in 0..<gW.count {
                        XCTAssertEqual(Double(gW[k]), numeric(net, net.weights[j]!.base + k, u, i), accuracy: 2e-3,
                                       "node \(j) kernel[\(k)]", file: file, line: line)
                    }
                    for k in 0..<gB.count {
                        XCTAssertEqual(Double(gB[k]), numeric(net, net.biases[j]!.base + k, u, i), accuracy: 2e-3,
                                       "node \(j) bias[\(k)]", file: file, line: line)
                    }
                    checked += gW.count + gB.count
                case .embedding:
                    let row = n.side == 0 ? u : i
                    let g = sink.embedding[j]?[row] ?? [Float](repeating: 0, count: n.units)
                    for k in 0..<n.units {
                        XCTAssertEqual(Double(g[k]), numeric(net, net.weights[j]!.base + row * n.units + k, u, i), accuracy: 2e-3,
                                       "node \(j) row \(row)[\(k)]", file: file, line: line)
                    }
                    checked += n.units
                default:
                    break
                }
            }
            XCTAssertGreaterThan(checked, 0)
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
            net.predict(users: data.testUsers, items: data.testItems, count: out.count, logistic: false, out: &out, threads: 1)
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

    func testSameSeedSameWeightsWhateverTheThreadCount() throws {
        let one = try trainedWeights(threads: 1, seed: 4)
        XCTAssertEqual(one, try trainedWeights(threads: 0, seed: 4))
        XCTAssertEqual(one, try trainedWeights(threads: 2, seed: 4))
        XCTAssertEqual(one, try trainedWeights(threads: 3, seed: 4))  // uneven split of rows and kernels
        XCTAssertNotEqual(one, try trainedWeights(threads: 1, seed: 5))
    }

    func testDropoutIsOffWhenPredicting() throws {
        let net = try Network(nodes: Architectures.tabular(), nUsers: 3, nItems: 4, seed: 5)
        var first = [Float](repeating: 0, count: 4), second = [Float](repeating: 0, count: 4)
        let users: [Int32] = [0, 1, 2, 0], items: [Int32] = [0, 1, 2, 3]
        net.predict(users: users, items: items, count: 4, logistic: false, out: &first, threads: 1)
        net.predict(users: users, items: items, count: 4, logistic: false, out: &second, threads: 1)
        XCTAssertEqual(first, second)
        // Equal to a forward pass with no dropout generator, different from one with dropout.
        let act = Buffer<Float>(repeating: 0, count: net.activationSize)
        let mask = Buffer<Float>(repeating: 0, count: net.activationSize)
        var none: Xoshiro256? = nil
        XCTAssertEqual(net.forward(user: 0, item: 0, act: act.base, mask: nil, rng: &none), first[0])
        var differs = false
        for s in 0..<20 {
            var rng: Xoshiro256? = Xoshiro256(seed: UInt64(s))
            if net.forward(user: 0, item: 0, act: act.base, mask: mask.base, rng: &rng) != first[0] { differs = true }
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
            net.predict(users: [Int32(u)], items: [own], count: 1, logistic: true, out: &inGroup, threads: 1)
            net.predict(users: [Int32(u)], items: [other], count: 1, logistic: true, out: &outGroup, threads: 1)
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
