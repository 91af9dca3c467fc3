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
        compiled = UnsafeMutableBufferPointer<CompiledNode>.allocate(capacity: nodes.count)
        for (j, n) in nodes.enumerated() {
            var c = CompiledNode(kind: n.kind)
            c.inputCount = n.inputs.count
            if n.inputs.count > 0 { c.in0 = n.inputs[0] }
            if n.inputs.count > 1 { c.in1 = n.inputs[1] }
            if n.inputs.count > 2 { c.in2 = n.inputs[2] }
            if n.inputs.count > 3 { c.in3 = n.inputs[3] }
            c.width = widths[j]
            c.offset = offsets[j]
            c.fanIn = n.inputs.isEmpty ? 0 : widths[n.inputs[0]]
            c.side = n.side
            c.activation = n.activation
            c.rate = Float(n.rate)
            c.lo = Float(n.a)
            c.span = Float(n.b - n.a)
            c.nonNegative = n.nonNegative
            c.weights = weights[j]?.base
            c.bias = biases[j]?.base
            compiled.initializeElement(at: j, to: c)
        }
    }

    /// The nodes as the per-example loops read them (pointers into `weights` / `biases`,
    /// which this object keeps alive).
    let compiled: UnsafeMutableBufferPointer<CompiledNode>

    deinit {
        compiled.deallocate()
    }

    public var outputNode: Int { nodes.count - 1 }

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
        let nodes = compiled
        for j in 0..<nodes.count {
            let n = nodes[j]
            let out = act + n.offset
            let w = n.width
            switch n.kind {
            case .embedding:
                let row = n.side == 0 ? user : item
                if row < 0 {
                    out.update(repeating: 0, count: w)
                } else {
                    out.update(from: n.weights! + row &* w, count: w)
                }
            case .dropout:
                let x = act + nodes[n.in0].offset
                if var r = rng, let mask, n.rate > 0 {
                    let keep = 1 - n.rate, scale = 1 / keep
                    let m = mask + n.offset
                    for k in 0..<w {
                        m[k] = r.nextUnitFloat() < keep ? scale : 0
                        out[k] = x[k] * m[k]
                    }
                    rng = r
                } else {
                    out.update(from: x, count: w)
                }
            case .product:
                let a = act + nodes[n.in0].offset, b = act + nodes[n.in1].offset
                for k in 0..<w { out[k] = a[k] * b[k] }
            case .dot:
                out[0] = Kernels.dot(act + nodes[n.in0].offset, act + nodes[n.in1].offset, n.fanIn)
            case .concat:
                var at = 0
                for k in 0..<n.inputCount {
                    let i = nodes[n.input(k)]
                    (out + at).update(from: act + i.offset, count: i.width)
                    at += i.width
                }
            case .dense:
                let x = act + nodes[n.in0].offset, fanIn = n.fanIn
                let W = n.weights!, b = n.bias!
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
                let x = act + nodes[n.in0].offset
                for k in 0..<w { out[k] = n.lo + n.span * sigmoid(x[k]) }
            }
        }
        return act[nodes[nodes.count - 1].offset]
    }

    /// Backward pass for one example after `forward`: `gOut` is dL/d(output). Writes input
    /// gradients into `grad` (zeroed here) and hands parameter gradients to `sink`.
    @inline(__always)
    public func backward<Sink: GradientSink>(user: Int, item: Int, gOut: Float, act: UnsafePointer<Float>,
                                             mask: UnsafePointer<Float>?, grad: UnsafeMutablePointer<Float>, sink: Sink) {
        let nodes = compiled
        grad.update(repeating: 0, count: activationSize)
        grad[nodes[nodes.count - 1].offset] = gOut
        for j in stride(from: nodes.count - 1, through: 0, by: -1) {
            let n = nodes[j]
            let g = grad + n.offset
            let w = n.width
            switch n.kind {
            case .embedding:
                let row = n.side == 0 ? user : item
                if row >= 0 { sink.addEmbeddingGradient(node: j, row: row, g, w) }
            case .dropout:
                let gx = grad + nodes[n.in0].offset
                if let mask, n.rate > 0 {
                    let m = mask + n.offset
                    for k in 0..<w { gx[k] += g[k] * m[k] }
                } else {
                    for k in 0..<w { gx[k] += g[k] }
                }
            case .product:
                let a = act + nodes[n.in0].offset, b = act + nodes[n.in1].offset
                let ga = grad + nodes[n.in0].offset, gb = grad + nodes[n.in1].offset
                for k in 0..<w {
                    ga[k] += g[k] * b[k]
                    gb[k] += g[k] * a[k]
                }
            case .dot:
                Kernels.axpy(grad + nodes[n.in0].offset, act + nodes[n.in1].offset, n.fanIn, g[0])
                Kernels.axpy(grad + nodes[n.in1].offset, act + nodes[n.in0].offset, n.fanIn, g[0])
            case .concat:
                var at = 0
                for k in 0..<n.inputCount {
                    let i = nodes[n.input(k)]
                    let gi = grad + i.offset
                    for e in 0..<i.width { gi[e] += g[at + e] }
                    at += i.width
                }
            case .dense:
                let x = act + nodes[n.in0].offset, fanIn = n.fanIn
                let gx = grad + nodes[n.in0].offset
                let out = act + n.offset
                let W = n.weights!
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
                let gx = grad + nodes[n.in0].offset
                let out = act + n.offset
                for k in 0..<w {
                    let s = (out[k] - n.lo) / n.span
                    gx[k] += g[k] * n.span * s * (1 - s)
                }
            }
        }
    }

    /// Hints the CPU to fetch the embedding rows of an example a few ahead of its forward pass:
    /// rows are read at random and a forward pass is too long for the CPU to reach the next
    /// example's loads on its own.
    @inline(__always)
    func prefetchRows(user: Int, item: Int) {
        for n in compiled where n.kind == .embedding {
            let row = n.side == 0 ? user : item
            if row >= 0 { Kernels.prefetch(n.weights! + row &* n.width, n.width) }
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

/// A node as the per-example loops read it: only trivial fields and raw pointers, so reading it
/// costs no reference counting (which, done from several threads on shared objects, made the
/// loops slower than the arithmetic in them).
struct CompiledNode {
    var kind: NodeKind
    var in0 = 0, in1 = 0, in2 = 0, in3 = 0, inputCount = 0
    var width = 0, offset = 0, fanIn = 0
    var side = 0
    var activation: Activation = .linear
    var rate: Float = 0, lo: Float = 0, span: Float = 1
    var nonNegative = false
    var weights: UnsafeMutablePointer<Float>? = nil
    var bias: UnsafeMutablePointer<Float>? = nil

    @inline(__always) func input(_ k: Int) -> Int {
        switch k {
        case 0: return in0
        case 1: return in1
        case 2: return in2
        default: return in3
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
