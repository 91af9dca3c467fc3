/// A network of embedding, dropout, product, dot, concat, dense and scaled-sigmoid nodes, with
/// hand-written forward and backward passes per node kind. Every neural model of embedrec is one
/// of these; they differ only in their `NodeSpec` lists.
///
/// Work happens one (user, item) example at a time on flat per-example buffers: each node's
/// output occupies `widths[j]` floats at `offsets[j]` of the activation buffer, and its
/// gradient the same place of the gradient buffer. Batches are split over threads by the
/// trainer; this type never allocates in the per-example path.
public final class Network {
    public let nodes: [NodeSpec]
    public let widths: [Int]
    public let offsets: [Int]
    public let activationSize: Int
    public let nUsers: Int
    public let nItems: Int
    /// Embedding table (rows × width) or dense kernel (units × inputs, row-major) per node.
    public let weights: [Buffer<Float>?]
    /// Dense bias per node.
    public let biases: [Buffer<Float>?]
    public let useGuard = UseGuard()
    /// False until a trainer has set the output bias from the data (or weights were loaded).
    public var initialisedFromData = false

    public init(nodes: [NodeSpec], nUsers: Int, nItems: Int, seed: UInt64) throws {
        guard (1...MFConfig.maxRows).contains(nUsers), (1...MFConfig.maxRows).contains(nItems) else {
            throw CoreError.invalid("n_users and n_items must be in 1...\(MFConfig.maxRows), got \(nUsers) and \(nItems)")
        }
        let widths = try validate(nodes)
        var offsets: [Int] = [], total = 0
        for w in widths { offsets.append(total); total += w }
        // Sizes first, with overflow checks, then one memory check for parameters + Adam moments.
        var sizes: [Int] = []
        for (j, n) in nodes.enumerated() {
            switch n.kind {
            case .embedding: sizes.append(try MemoryBudget.product([n.side == 0 ? nUsers : nItems, n.units], what: "node \(j) table"))
            case .dense: sizes.append(try MemoryBudget.product([n.units, widths[n.inputs[0]]], what: "node \(j) kernel") + n.units)
            default: sizes.append(0)
            }
        }
        var parameters = 0
        for s in sizes {
            let (sum, overflow) = parameters.addingReportingOverflow(s)
            if overflow { throw CoreError(.outOfMemory, "the network's parameter count overflows") }
            parameters = sum
        }
        try MemoryBudget.check(bytes: try MemoryBudget.product([parameters, 12], what: "network"),
                               what: "a network with \(parameters) parameters")
        self.nodes = nodes
        self.widths = widths
        self.offsets = offsets
        self.activationSize = total
        self.nUsers = nUsers
        self.nItems = nItems
        var rng = Xoshiro256(seed: seed)
        var weights: [Buffer<Float>?] = [], biases: [Buffer<Float>?] = []
        for (j, n) in nodes.enumerated() {
            switch n.kind {
            case .embedding:
                let table = Buffer<Float>(repeating: 0, count: sizes[j])
                for r in 0..<table.count {
                    var v = n.uniformInit ? Float(n.a + (n.b - n.a) * Double(rng.nextUnitFloat())) : rng.nextNormal() * Float(n.a)
                    if n.nonNegative { v = abs(v) }
                    table[r] = v
                }
                weights.append(table); biases.append(nil)
            case .dense:
                let fanIn = widths[n.inputs[0]]
                let kernel = Buffer<Float>(repeating: 0, count: n.units * fanIn)
                let limit = Float((6.0 / Double(fanIn + n.units)).squareRoot())  // Glorot uniform, as Keras
                for r in 0..<kernel.count { kernel[r] = (rng.nextUnitFloat() * 2 - 1) * limit }
                weights.append(kernel); biases.append(Buffer<Float>(repeating: 0, count: n.units))
            default:
                weights.append(nil); biases.append(nil)
            }
        }
        self.weights = weights
        self.biases = biases
    }

    public var outputNode: Int { nodes.count - 1 }

    public var parameterCount: Int {
        weights.reduce(0) { $0 + ($1?.count ?? 0) } + biases.reduce(0) { $0 + ($1?.count ?? 0) }
    }

    /// The dense node that produces the output (possibly through a final scaled sigmoid), if any:
    /// its bias is where a trainer puts the mean of the training targets.
    var outputDense: (node: Int, squashed: (lo: Double, hi: Double)?)? {
        var j = outputNode
        var squash: (lo: Double, hi: Double)? = nil
        if nodes[j].kind == .scaledSigmoid {
            squash = (lo: nodes[j].a, hi: nodes[j].b)
            j = nodes[j].inputs[0]
        }
        guard nodes[j].kind == .dense, nodes[j].activation == .linear else { return nil }
        return (node: j, squashed: squash)
    }

    /// Forward pass for one example; returns the output value. `mask` must hold space for the
    /// dropout masks (same layout as `act`) when `rng` is given (training); without `rng`,
    /// dropout is the identity. A row of -1 (unknown id) reads as a zero vector.
    @inline(__always)
    public func forward(user: Int, item: Int, act: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>?,
                        rng: inout Xoshiro256?) -> Float {
        for j in 0..<nodes.count {
            let n = nodes[j]
            let out = act + offsets[j]
            let w = widths[j]
            switch n.kind {
            case .embedding:
                let row = n.side == 0 ? user : item
                if row < 0 {
                    out.update(repeating: 0, count: w)
                } else {
                    out.update(from: weights[j]!.base + row &* w, count: w)
                }
            case .dropout:
                let x = act + offsets[n.inputs[0]]
                if var r = rng, let mask, n.rate > 0 {
                    let keep = Float(1 - n.rate), scale = 1 / keep
                    let m = mask + offsets[j]
                    for k in 0..<w {
                        m[k] = r.nextUnitFloat() < keep ? scale : 0
                        out[k] = x[k] * m[k]
                    }
                    rng = r
                } else {
                    out.update(from: x, count: w)
                }
            case .product:
                let a = act + offsets[n.inputs[0]], b = act + offsets[n.inputs[1]]
                for k in 0..<w { out[k] = a[k] * b[k] }
            case .dot:
                out[0] = Kernels.dot(act + offsets[n.inputs[0]], act + offsets[n.inputs[1]], widths[n.inputs[0]])
            case .concat:
                var at = 0
                for i in n.inputs {
                    (out + at).update(from: act + offsets[i], count: widths[i])
                    at += widths[i]
                }
            case .dense:
                let x = act + offsets[n.inputs[0]], fanIn = widths[n.inputs[0]]
                let W = weights[j]!.base, b = biases[j]!.base
                for u in 0..<w {
                    var z = b[u] + Kernels.dot(W + u &* fanIn, x, fanIn)
                    switch n.activation {
                    case .linear: break
                    case .relu: z = max(z, 0)
                    case .sigmoid: z = sigmoid(z)
                    }
                    out[u] = z
                }
            case .scaledSigmoid:
                let x = act + offsets[n.inputs[0]]
                let lo = Float(n.a), span = Float(n.b - n.a)
                for k in 0..<w { out[k] = lo + span * sigmoid(x[k]) }
            }
        }
        return act[offsets[outputNode]]
    }

    /// Backward pass for one example after `forward`: `gOut` is dL/d(output). Writes input
    /// gradients into `grad` (zeroed here) and hands parameter gradients to `sink`.
    @inline(__always)
    public func backward(user: Int, item: Int, gOut: Float, act: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                         grad: UnsafeMutablePointer<Float>, sink: GradientSink) {
        grad.update(repeating: 0, count: activationSize)
        grad[offsets[outputNode]] = gOut
        for j in stride(from: nodes.count - 1, through: 0, by: -1) {
            let n = nodes[j]
            let g = grad + offsets[j]
            let w = widths[j]
            switch n.kind {
            case .embedding:
                let row = n.side == 0 ? user : item
                if row >= 0 { sink.addEmbeddingGradient(node: j, row: row, g, w) }
            case .dropout:
                let gx = grad + offsets[n.inputs[0]]
                if let mask, n.rate > 0 {
                    let m = mask + offsets[j]
                    for k in 0..<w { gx[k] += g[k] * m[k] }
                } else {
                    for k in 0..<w { gx[k] += g[k] }
                }
            case .product:
                let a = act + offsets[n.inputs[0]], b = act + offsets[n.inputs[1]]
                let ga = grad + offsets[n.inputs[0]], gb = grad + offsets[n.inputs[1]]
                for k in 0..<w {
                    ga[k] += g[k] * b[k]
                    gb[k] += g[k] * a[k]
                }
            case .dot:
                let width = widths[n.inputs[0]]
                Kernels.axpy(grad + offsets[n.inputs[0]], act + offsets[n.inputs[1]], width, g[0])
                Kernels.axpy(grad + offsets[n.inputs[1]], act + offsets[n.inputs[0]], width, g[0])
            case .concat:
                var at = 0
                for i in n.inputs {
                    let gi = grad + offsets[i]
                    for k in 0..<widths[i] { gi[k] += g[at + k] }
                    at += widths[i]
                }
            case .dense:
                let x = act + offsets[n.inputs[0]], fanIn = widths[n.inputs[0]]
                let gx = grad + offsets[n.inputs[0]]
                let out = act + offsets[j]
                let W = weights[j]!.base
                let (dW, db) = sink.denseGradient(node: j)
                for u in 0..<w {
                    var gz = g[u]
                    switch n.activation {
                    case .linear: break
                    case .relu: if out[u] <= 0 { gz = 0 }
                    case .sigmoid: gz *= out[u] * (1 - out[u])
                    }
                    if gz == 0 { continue }
                    db[u] += gz
                    Kernels.axpy(dW + u &* fanIn, x, fanIn, gz)
                    Kernels.axpy(gx, W + u &* fanIn, fanIn, gz)
                }
            case .scaledSigmoid:
                let gx = grad + offsets[n.inputs[0]]
                let lo = Float(n.a), span = Float(n.b - n.a)
                let out = act + offsets[j]
                for k in 0..<w {
                    let s = (out[k] - lo) / span
                    gx[k] += g[k] * span * s * (1 - s)
                }
            }
        }
    }

    /// Predictions for validated index pairs (-1 = unknown id, read as a zero embedding).
    public func predict(users: UnsafePointer<Int32>, items: UnsafePointer<Int32>, count: Int, logistic: Bool,
                        out: UnsafeMutablePointer<Float>, threads: Int) {
        let n = resolveThreads(threads, work: count, minPerThread: 20_000)
        let ptrs = UncheckedSendable((users, items, out))
        parallelChunks(count: count, chunks: n) { _, range in
            let (us, its, o) = ptrs.value
            let act = Buffer<Float>(repeating: 0, count: self.activationSize)
            var noDropout: Xoshiro256? = nil
            for r in range {
                let y = self.forward(user: Int(us[r]), item: Int(its[r]), act: act.base, mask: nil, rng: &noDropout)
                o[r] = logistic ? sigmoid(y) : y
            }
        }
    }
}

/// Where the backward pass puts parameter gradients.
public protocol GradientSink: AnyObject {
    /// Gradient buffers (kernel, bias) of a dense node, to be accumulated into.
    func denseGradient(node: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
    /// Adds `g[0..<width]` to the gradient of one embedding row.
    func addEmbeddingGradient(node: Int, row: Int, _ g: UnsafePointer<Float>, _ width: Int)
}
