/// A network of embedding, dropout, product, dot, concat, dense and scaled-sigmoid nodes, with
/// hand-written forward and backward passes per node kind. Every neural model of embedrec is one
/// of these; they differ only in their `NodeSpec` lists.
///
/// This type holds the parameters and the nodes in the form the loops read (`compiled`);
/// `TilePass` runs the forward and backward passes over tiles of examples, for training and
/// for predictions.
public final class Network {
    public let nodes: [NodeSpec]
    public let widths: [Int]
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
        self.nUsers = nUsers
        self.nItems = nItems
        var rng = Xoshiro256(seed: seed)
        var weights: [Buffer<Float>?] = [], biases: [Buffer<Float>?] = []
        for (j, n) in nodes.enumerated() {
            switch n.kind {
            case .embedding:
                let table = Buffer<Float>(repeating: 0, count: sizes[j], hugePages: true)
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

    /// The nodes as the tile passes read them (pointers into `weights` / `biases`,
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

    /// Predictions for validated index pairs (-1 = unknown id, read as a zero embedding).
    /// Throws `.outOfMemory` when the tile buffers of a very wide network do not fit.
    public func predict(users: UnsafePointer<Int32>, items: UnsafePointer<Int32>, count: Int, logistic: Bool,
                        out: UnsafeMutablePointer<Float>, threads: Int) throws {
        let n = resolveThreads(threads, work: count, minPerThread: 20_000)
        let weights = PaddedWeights(network: self)
        let tiles = try (0..<n).map { _ in try TilePass(network: self, weights: weights, capacity: TilePass.defaultRows) }
        let ptrs = UncheckedSendable((users, items, out))
        parallelChunks(count: count, chunks: n) { c, range in
            let (us, its, o) = ptrs.value
            let tile = tiles[c]
            var at = range.lowerBound
            while at < range.upperBound {
                let n = min(tile.capacity, range.upperBound - at)
                tile.forward(users: us + at, items: its + at, count: n, dropoutSeeds: nil)
                for b in 0..<n {
                    let y = tile.output(b)
                    o[at + b] = logistic ? sigmoid(y) : y
                }
                at += n
            }
        }
    }
}

/// A node as the tile passes read it: only trivial fields and raw pointers, so reading it
/// costs no reference counting (which, done from several threads on shared objects, made the
/// loops slower than the arithmetic in them).
struct CompiledNode {
    var kind: NodeKind
    var in0 = 0, in1 = 0, in2 = 0, in3 = 0, inputCount = 0
    var width = 0, fanIn = 0
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
