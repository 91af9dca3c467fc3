#if canImport(Glibc)
import Glibc
#endif
import EmbedrecCore

// The C ABI of the network models, declared in embedrec.h ("Networks") and bound in
// python/embedrec/_lib.py.

private let registry = HandleRegistry.shared
private let nodeInts = 8, nodeValues = 4

private func network(_ h: UnsafeMutableRawPointer?) throws -> Network {
    try registry.lookup(h, as: Network.self, kind: "network")
}

/// Decodes one node description; `validate` in the core checks the graph as a whole.
private func decodeNode(_ ints: UnsafePointer<Int32>, _ values: UnsafePointer<Double>, index j: Int) throws -> NodeSpec {
    guard let kind = NodeKind(rawValue: ints[0]) else {
        throw CoreError.invalid("node \(j): kind must be 0...6, got \(ints[0])")
    }
    var n = NodeSpec(kind: kind)
    n.inputs = (1...4).map { Int(ints[$0]) }.filter { $0 != -1 }
    for k in 0..<4 where !values[k].isFinite {
        throw CoreError.invalid("node \(j): value \(k) is \(values[k]); values must be finite")
    }
    switch kind {
    case .embedding:
        n.side = Int(ints[5])
        n.units = Int(ints[6])
        guard (0...7).contains(ints[7]) else { throw CoreError.invalid("node \(j): embedding flags must be 0...7, got \(ints[7])") }
        n.nonNegative = ints[7] & 1 != 0
        n.uniformInit = ints[7] & 2 != 0
        n.frozen = ints[7] & 4 != 0
        n.a = values[0]
        n.b = values[1]
    case .dense:
        n.units = Int(ints[5])
        guard let activation = Activation(rawValue: ints[6]) else {
            throw CoreError.invalid("node \(j): activation must be 0 (linear), 1 (relu) or 2 (sigmoid), got \(ints[6])")
        }
        n.activation = activation
    case .dropout:
        n.rate = values[0]
    case .scaledSigmoid:
        n.a = values[0]
        n.b = values[1]
    case .product, .dot, .concat:
        break
    }
    return n
}

/// The parameter `which` of `node` and the caller's `length`, checked to be its exact size.
private func sizedParameter(_ net: Network, _ node: Int32, _ which: Int32, _ length: Int64) throws -> (Buffer<Float>?, Int) {
    let p = try parameter(net, node, which)
    let n = try Check.length(length, "length", max: Int.max)
    guard n == (p?.count ?? 0) else {
        throw CoreError.invalid("length must be \(p?.count ?? 0) for node \(node) parameter \(which), got \(n)")
    }
    return (p, n)
}

/// The parameter buffer `which` (0 weights, 1 bias) of a node, or nil when it has none.
private func parameter(_ net: Network, _ node: Int32, _ which: Int32) throws -> Buffer<Float>? {
    guard node >= 0, Int(node) < net.nodes.count else {
        throw CoreError.invalid("node must be in 0..<\(net.nodes.count), got \(node)")
    }
    switch which {
    case 0: return net.weights[Int(node)]
    case 1: return net.biases[Int(node)]
    default: throw CoreError.invalid("which must be 0 (weights) or 1 (bias), got \(which)")
    }
}

@_cdecl("embedrec_net_create")
public func embedrecNetCreate(_ spec: UnsafePointer<Int32>?, _ values: UnsafePointer<Double>?, _ nNodes: Int32,
                              _ nUsers: Int64, _ nItems: Int64, _ seed: UInt64,
                              _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let count = try Check.int(Int64(nNodes), "n_nodes", in: 1...256)
            let ints = try Check.pointer(spec, "spec", count: count * nodeInts)
            let vals = try Check.pointer(values, "values", count: count * nodeValues)
            let nodes = try (0..<count).map { try decodeNode(ints + $0 * nodeInts, vals + $0 * nodeValues, index: $0) }
            let net = try Network(nodes: nodes, nUsers: try Check.int(nUsers, "n_users", in: 1...Int64(Int32.max)),
                                  nItems: try Check.int(nItems, "n_items", in: 1...Int64(Int32.max)), seed: seed)
            return net
        }
    }
}

@_cdecl("embedrec_net_param_size")
public func embedrecNetParamSize(_ h: UnsafeMutableRawPointer?, _ node: Int32, _ which: Int32,
                                 _ length: UnsafeMutablePointer<Int64>?) -> Int32 {
    status {
        let p = try parameter(try network(h), node, which)
        guard let length else { throw CoreError.invalid("length (the output) is NULL") }
        length.pointee = Int64(p?.count ?? 0)
    }
}

@_cdecl("embedrec_net_get_param")
public func embedrecNetGetParam(_ h: UnsafeMutableRawPointer?, _ node: Int32, _ which: Int32,
                                _ out: UnsafeMutablePointer<Float>?, _ length: Int64) -> Int32 {
    status {
        let net = try network(h)
        let (p, n) = try sizedParameter(net, node, which, length)
        let dst = try Check.mutablePointer(out, "out", count: n)
        try net.useGuard.withReading { if let p { dst.update(from: p.base, count: n) } }
    }
}

@_cdecl("embedrec_net_set_param")
public func embedrecNetSetParam(_ h: UnsafeMutableRawPointer?, _ node: Int32, _ which: Int32,
                                _ values: UnsafePointer<Float>?, _ length: Int64) -> Int32 {
    status {
        let net = try network(h)
        let (p, n) = try sizedParameter(net, node, which, length)
        let src = try Check.pointer(values, "values", count: n)
        for j in 0..<n where !src[j].isFinite {
            throw CoreError.invalid("values[\(j)] is \(src[j]); parameters must be finite")
        }
        if net.nodes[Int(node)].nonNegative {
            for j in 0..<n where src[j] < 0 {
                throw CoreError.invalid("values[\(j)] is \(src[j]); a non-negative embedding must be >= 0")
            }
        }
        try net.useGuard.withWriting {
            if let p { p.base.update(from: src, count: n) }
            net.initialisedFromData = true
        }
    }
}

@_cdecl("embedrec_net_predict")
public func embedrecNetPredict(_ h: UnsafeMutableRawPointer?, _ users: UnsafePointer<Int32>?, _ items: UnsafePointer<Int32>?,
                               _ n: Int64, _ logistic: Int32, _ threads: Int32, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    status {
        let net = try network(h)
        let q = try Check.pairs(users, items, n, threads: threads, nUsers: net.nUsers, nItems: net.nItems,
                                allowUnknown: true, what: "predict")
        let dst = try Check.mutablePointer(out, "out", count: q.count)
        try net.useGuard.withReading {
            try net.predict(users: q.users, items: q.items, count: q.count, logistic: logistic != 0, out: dst, threads: q.threads)
        }
    }
}

@_cdecl("embedrec_net_trainer_create")
public func embedrecNetTrainerCreate(_ h: UnsafeMutableRawPointer?, _ users: UnsafePointer<Int32>?, _ items: UnsafePointer<Int32>?,
                                     _ targets: UnsafePointer<Float>?, _ n: Int64, _ loss: Int32, _ negatives: Int32,
                                     _ optimizer: Int32, _ schedule: Int32, _ epochs: Int32, _ batchSize: Int32,
                                     _ lr: Double, _ weightDecay: Double, _ threads: Int32, _ seed: UInt64,
                                     _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let net = try network(h)
            let l = try loaderCopying(users, items, targets, n, valuesName: "targets", nUsers: net.nUsers, nItems: net.nItems)
            let lossKind = try Loss.numbered(loss)
            let options = try Check.trainOptions(optimizer: optimizer, schedule: schedule, epochs: epochs, batchSize: batchSize,
                                                 lr: lr, weightDecay: weightDecay, threads: threads, seed: seed)
            return TrainerBox(try l.handOver {
                try NetworkTrainer(network: net, data: $0, loss: lossKind, negatives: Int(negatives), options: options)
            })
        }
    }
}

@_cdecl("embedrec_net_trainer_freeze")
public func embedrecNetTrainerFreeze(_ h: UnsafeMutableRawPointer?, _ firstUser: Int64) -> Int32 {
    status {
        guard let trainer = try registry.lookup(h, as: TrainerBox.self, kind: "trainer").trainer as? NetworkTrainer else {
            throw CoreError(.invalidHandle, "handle \(h!) is not a network trainer")
        }
        trainer.firstTrainableUser = try Check.int(firstUser, "first_user", in: 0...Int64(trainer.network.nUsers - 1))
    }
}
