/// The dense kernels of a network copied into the padded layouts the tile passes multiply by:
/// per dense node, Wᵀ (inputs × padded units) for the forward pass, W (units × padded inputs)
/// for the input gradient, and the bias padded to the units' row length. Padding is zero, so
/// padded columns of every product come out zero. Rebuilt after each optimiser step (a few
/// thousand floats), read by every tile of the next batch.
final class PaddedWeights {
    let network: Network
    let transposed: [Buffer<Float>?]
    let rows: [Buffer<Float>?]
    let bias: [Buffer<Float>?]

    init(network: Network) {
        self.network = network
        var transposed: [Buffer<Float>?] = [], rows: [Buffer<Float>?] = [], bias: [Buffer<Float>?] = []
        for n in network.nodes {
            guard n.kind == .dense else {
                transposed.append(nil); rows.append(nil); bias.append(nil)
                continue
            }
            let fanIn = network.widths[n.inputs[0]]
            transposed.append(Buffer(repeating: 0, count: fanIn * TileKernels.padded(n.units)))
            rows.append(Buffer(repeating: 0, count: n.units * TileKernels.padded(fanIn)))
            bias.append(Buffer(repeating: 0, count: TileKernels.padded(n.units)))
        }
        self.transposed = transposed
        self.rows = rows
        self.bias = bias
        refresh()
    }

    /// Copies the current kernels and biases in.
    func refresh() {
        for (j, n) in network.nodes.enumerated() where n.kind == .dense {
            refresh(node: j, units: 0..<n.units)
        }
    }

    /// Copies kernel rows and bias entries `units` of dense node `j` in (after an optimiser
    /// step changed them; threads refresh the rows they stepped).
    func refresh(node j: Int, units: Range<Int>) {
        let W = network.weights[j]!.base, fanIn = network.widths[network.nodes[j].inputs[0]]
        let wt = transposed[j]!.base, wr = rows[j]!.base, b = bias[j]!.base, B = network.biases[j]!.base
        let su = TileKernels.padded(network.nodes[j].units), sf = TileKernels.padded(fanIn)
        for u in units {
            (wr + u * sf).update(from: W + u * fanIn, count: fanIn)
            b[u] = B[u]
        }
        // Wᵀ row by row: a thread's units of one input are adjacent in Wᵀ, and a line that
        // both threads' units share (they split the units) changes core once per row rather
        // than once per unit.
        for i in 0..<fanIn {
            let row = wt + i * su
            for u in units { row[u] = W[u * fanIn + i] }
        }
    }
}

/// The per-tile working matrices of a `TilePass`: every node's values, dropout masks and
/// gradients for up to `capacity` examples, and the examples' dropout seeds. Only
/// needed while a tile is in flight, so the tile passes of chunks that run one after another
/// on the same thread share one: each chunk keeping its own put four sets per thread through
/// the core's L2 every batch (about 0.5 MB for the MF network), crowding out the embedding
/// rows and moments the optimiser step reads next.
final class TileScratch {
    let capacity: Int
    let strides: [Int]
    let starts: [Int]
    let act, mask, grad: Buffer<Float>
    /// Per example of the tile: its dropout seed (used only with dropout).
    let seeds: UnsafeMutablePointer<UInt64>

    init(network: Network, capacity: Int) throws {
        self.capacity = capacity
        var strides: [Int] = [], starts: [Int] = [], total = 0
        for w in network.widths {
            let s = TileKernels.padded(w)
            strides.append(s)
            starts.append(total)
            total += s * capacity
        }
        try MemoryBudget.check(bytes: try MemoryBudget.product([total, 12], what: "tile buffers"), what: "the network's tile buffers")
        self.strides = strides
        self.starts = starts
        act = Buffer(repeating: 0, count: total)
        mask = Buffer(repeating: 0, count: total)
        grad = Buffer(repeating: 0, count: total)
        seeds = .allocate(capacity: capacity)
        seeds.initialize(repeating: 0, count: capacity)
    }

    deinit { seeds.deallocate() }
}

/// Forward and backward passes of a `Network` over a tile of up to `capacity` examples at
/// once, node by node. Each node's values for the tile form a matrix with one row per example,
/// rows padded to a multiple of 8 floats, so a dense layer is one blocked matrix product
/// (`TileKernels`) instead of one matrix-vector product per example.
///
/// Results match a plain one-example-at-a-time forward pass up to float rounding (the tests
/// keep one as the reference): the same operations, summed in a different order. Dropout masks
/// are hashes of each example's seed (from the caller), the node and the entry (`DropoutMask`).
///
/// The backward pass never clears the gradient matrices: the first node to pass a gradient to
/// an input (in backward order) writes it, later ones add to it. Clearing them per tile took about
/// a tenth of the training time of the write-ups' networks (profiled).
final class TilePass {
    /// Examples per tile, for training and prediction alike.
    static let defaultRows = 64

    let network: Network
    let weights: PaddedWeights
    let capacity: Int
    /// Per node, what the per-tile loops read, as raw pointers and plain values (no
    /// reference counting: tiles run on several threads at once).
    private let layout: UnsafeMutableBufferPointer<TileNode>
    /// The tile's matrices; shared with other tile passes that never run at the same time.
    private let scratch: TileScratch
    private var seeds: UnsafeMutablePointer<UInt64> { scratch.seeds }
    let hasDropout: Bool
    /// Per dense node: this tile owner's kernel and bias gradients, in the padded layout
    /// (units × padded inputs, padded units); written by a chunk's first tile (`backward(fresh:)`)
    /// and added to by the rest.
    let kernelGradients: [Buffer<Float>?]
    let biasGradients: [Buffer<Float>?]
    /// Per node: (consumer, input slot) pairs that read it.
    private let consumers: [[(Int, Int)]]

    /// `scratch`: the tile's matrices, from `TileScratch(network:capacity:)` with at least
    /// `capacity`; shared only between tile passes that never run at the same time. Without
    /// it the pass allocates its own.
    init(network: Network, weights: PaddedWeights, capacity: Int, scratch: TileScratch? = nil) throws {
        self.network = network
        self.weights = weights
        self.capacity = capacity
        let count = network.nodes.count
        let scratch = try scratch ?? TileScratch(network: network, capacity: capacity)
        precondition(scratch.capacity >= capacity)
        self.scratch = scratch
        let strides = scratch.strides, starts = scratch.starts
        let act = scratch.act, mask = scratch.mask, grad = scratch.grad
        hasDropout = network.nodes.contains { $0.kind == .dropout && $0.rate > 0 }
        kernelGradients = network.nodes.map { n in
            n.kind == .dense ? Buffer(repeating: 0, count: n.units * TileKernels.padded(network.widths[n.inputs[0]])) : nil
        }
        biasGradients = network.nodes.map { n in n.kind == .dense ? Buffer(repeating: 0, count: TileKernels.padded(n.units)) : nil }
        // The first writer of each node's gradient in backward order: its highest-numbered consumer.
        var firstWriter = [Int](repeating: -1, count: count)
        var consumers = [[(Int, Int)]](repeating: [], count: count)
        for (j, n) in network.nodes.enumerated() {
            for (k, i) in n.inputs.enumerated() {
                firstWriter[i] = max(firstWriter[i], j)
                consumers[i].append((j, k))
            }
        }
        self.consumers = consumers
        let placed = Self.placeInConcatenations(network: network, consumers: consumers,
                                                values: starts.map { act.base + $0 }, grads: starts.map { grad.base + $0 },
                                                strides: strides)
        layout = .allocate(capacity: count)
        for (j, n) in network.nodes.enumerated() {
            var t = TileNode(stride: placed.valueStrides[j], gradStride: placed.gradStrides[j], maskStride: strides[j],
                             values: placed.values[j], mask: mask.base + starts[j], grad: placed.grads[j],
                             inputs: n.inputs.map { placed.values[$0] }, inputGrads: n.inputs.map { placed.grads[$0] },
                             inputStrides: n.inputs.map { placed.valueStrides[$0] },
                             inputGradStrides: n.inputs.map { placed.gradStrides[$0] })
            t.valuesInPlace = placed.valuesInPlace[j]
            t.gradsInPlace = placed.gradsInPlace[j]
            for (k, i) in n.inputs.enumerated() where firstWriter[i] == j && !n.inputs[..<k].contains(i) {
                t.setAssigns(k)
            }
            t.cleared = firstWriter[j] < 0 && j != count - 1  // nobody passes it a gradient
            if n.kind == .embedding {
                t.table = network.weights[j]!.base
                t.tableStride = network.widths[j]
                t.fetchCount = network.widths[j]
            }
            if n.kind == .dense {
                t.transposed = weights.transposed[j]!.base
                t.kernelRows = weights.rows[j]!.base
                t.bias = weights.bias[j]!.base
                t.kernelGradient = kernelGradients[j]!.base
                t.biasGradient = biasGradients[j]!.base
            }
            layout.initializeElement(at: j, to: t)
        }
    }

    deinit { layout.deallocate() }

    /// Where the nodes' values and gradients live: each in its own matrix, except
    /// - the inputs of a concatenation that it is the only reader of, whose values are written
    ///   straight into their columns of its rows (and whose gradients are read from there), so
    ///   the concatenation copies nothing (it used to copy rows that were just written, forward
    ///   and backward).
    /// - the input of a dropout node that it is the only reader of: the mask is applied in
    ///   place, forward and backward (the elementwise kernels read each vector before writing it).
    /// Only embedding, dropout and product nodes are placed so, as they write exactly their own
    /// columns; an embedding node's gradient keeps its own matrix, since the trainer redirects it
    /// (`redirectGradient`).
    private static func placeInConcatenations(network: Network, consumers: [[(Int, Int)]], values: [UnsafeMutablePointer<Float>],
                                              grads: [UnsafeMutablePointer<Float>], strides: [Int])
        -> (values: [UnsafeMutablePointer<Float>], grads: [UnsafeMutablePointer<Float>], valueStrides: [Int],
            gradStrides: [Int], valuesInPlace: [Int], gradsInPlace: [Int]) {
        var values = values, grads = grads, valueStrides = strides, gradStrides = strides
        var valuesInPlace = [Int](repeating: 0, count: strides.count), gradsInPlace = valuesInPlace
        func placeable(_ i: Int) -> Bool {
            consumers[i].count == 1 && [.embedding, .dropout, .product].contains(network.nodes[i].kind)
        }
        for (c, node) in network.nodes.enumerated() where node.kind == .concat {
            var at = 0
            for (k, i) in node.inputs.enumerated() {
                defer { at += network.widths[i] }
                guard placeable(i) else { continue }
                values[i] = values[c] + at
                valueStrides[i] = valueStrides[c]
                valuesInPlace[c] |= 1 << k
                if network.nodes[i].kind != .embedding {
                    grads[i] = grads[c] + at
                    gradStrides[i] = gradStrides[c]
                    gradsInPlace[c] |= 1 << k
                }
            }
        }
        // Latest first, so a dropout already placed in a concatenation takes its input along.
        for d in network.nodes.indices.reversed() where network.nodes[d].kind == .dropout {
            let i = network.nodes[d].inputs[0]
            guard placeable(i) else { continue }
            values[i] = values[d]
            valueStrides[i] = valueStrides[d]
            if network.nodes[i].kind != .embedding {
                grads[i] = grads[d]
                gradStrides[i] = gradStrides[d]
            }
        }
        return (values, grads, valueStrides, gradStrides, valuesInPlace, gradsInPlace)
    }

    /// Row length of node `j`'s gradient matrix (the trainer's redirected rows use it too).
    func rowStride(_ j: Int) -> Int { layout[j].gradStride }

    /// Row `b` of node `j`'s values.
    @inline(__always)
    func values(_ j: Int, _ b: Int) -> UnsafeMutablePointer<Float> { layout[j].values + b &* layout[j].stride }

    /// Row `b` of the loss gradient with respect to node `j`'s values (after `backward`).
    @inline(__always)
    func gradient(_ j: Int, _ b: Int) -> UnsafeMutablePointer<Float> { layout[j].grad + b &* layout[j].gradStride }

    /// Makes the backward pass write node `j`'s gradient rows at `rows`, `stride` floats apart
    /// (by default `rowStride(j)`), instead of in the tile: the trainer points embedding nodes
    /// at its per-batch arrays, so their gradients need no copy. Only row b's first `width`
    /// entries are written, so several nodes' rows can share one array side by side.
    func redirectGradient(node j: Int, to rows: UnsafeMutablePointer<Float>, stride: Int? = nil) {
        precondition(!consumers[j].contains { (c, k) in layout[c].gradsInPlace & (1 << k) != 0 },
                     "a gradient read in place from a concatenation cannot be redirected")
        let stride = stride ?? layout[j].gradStride
        layout[j].grad = rows
        layout[j].gradStride = stride
        layout[j].redirected = true
        for (c, k) in consumers[j] { layout[c].setInputGrad(k, rows, stride: stride) }
    }

    /// Makes the forward pass read embedding node `j`'s row r at `table + r · stride` (the
    /// trainer's records) and fetch `fetch` floats of the row a few examples ahead (0: none).
    func readRows(node j: Int, from table: UnsafeMutablePointer<Float>, stride: Int, fetch: Int) {
        precondition(network.nodes[j].kind == .embedding)
        layout[j].table = table
        layout[j].tableStride = stride
        layout[j].fetchCount = fetch
    }

    /// A table with one row per row of embedding node `j` (the optimiser's moments, two
    /// floats per embedding entry) whose rows the forward pass fetches into cache along with
    /// the embedding rows: the optimiser step then finds them there instead of waiting for
    /// memory at the end of the batch. Into L2 and for reading: the forward pass does not read
    /// them, and a write-intent fetch into L1 crowded L1 and took the lines of rows both
    /// threads' chunks touch away from the other core.
    ///
    /// Row r of the companion is `count` floats at `companion + r · stride` (by default the
    /// trainer's moment tables: two floats per entry of the node's row).
    func prefetchAlong(node j: Int, _ companion: UnsafeMutablePointer<Float>, stride: Int? = nil, count: Int? = nil) {
        layout[j].companion = companion
        layout[j].companionStride = stride ?? 2 * network.widths[j]
        layout[j].companionCount = count ?? 2 * network.widths[j]
    }

    /// Forward pass over `count` examples (read `output(b)` after). With `dropoutSeeds`,
    /// example b's dropout masks are keyed by `dropoutSeeds(b)`; without, dropout is the
    /// identity (prediction).
    func forward(users: UnsafePointer<Int32>, items: UnsafePointer<Int32>, count n: Int, dropoutSeeds: ((Int) -> UInt64)?) {
        precondition(n <= capacity)
        let training = dropoutSeeds != nil && hasDropout
        if training, let seedOf = dropoutSeeds {
            for b in 0..<n { seeds[b] = seedOf(b) }
        }
        let nodes = network.compiled
        for j in 0..<nodes.count {
            let node = nodes[j], t = layout[j]
            let s = t.stride, w = node.width, out = t.values
            switch node.kind {
            case .embedding:
                let table = t.table!, ts = t.tableStride, fetch = t.fetchCount
                let ids = node.side == 0 ? users : items
                for b in 0..<n {
                    // Rows are read at random: ask for the one 8 examples ahead, so several
                    // cache misses are under way at once.
                    if b &+ 8 < n, ids[b &+ 8] >= 0 {
                        let ahead = Int(ids[b &+ 8])
                        Kernels.prefetch(table + ahead &* ts, fetch)
                        if let c = t.companion { Kernels.prefetchL2(c + ahead &* t.companionStride, t.companionCount) }
                    }
                    let row = Int(ids[b])
                    if row < 0 {
                        (out + b &* s).update(repeating: 0, count: w)
                    } else {
                        Kernels.copy(out + b &* s, table + row &* ts, w)
                    }
                }
            case .dropout:
                let sx = t.inputStride(0), x = t.input(0)
                if training && node.rate > 0 {
                    let keep = 1 - node.rate, scale = 1 / keep
                    let threshold = DropoutMask.threshold(keep: keep)
                    for b in 0..<n {
                        let mb = t.mask + b &* t.maskStride
                        DropoutMask.fill(mb, width: w, key: DropoutMask.key(seed: seeds[b], node: j), threshold: threshold, scale: scale)
                        Kernels.multiply(out + b &* s, x + b &* sx, mb, w, accumulate: false)
                    }
                } else {
                    for b in 0..<n { Kernels.copy(out + b &* s, x + b &* sx, w) }
                }
            case .product:
                let sa = t.inputStride(0), sb = t.inputStride(1), a = t.input(0), bb = t.input(1)
                for b in 0..<n { Kernels.multiply(out + b &* s, a + b &* sa, bb + b &* sb, w, accumulate: false) }
            case .dot:
                let sa = t.inputStride(0), sb = t.inputStride(1), a = t.input(0), bb = t.input(1)
                for b in 0..<n { out[b &* s] = Kernels.dot(a + b &* sa, bb + b &* sb, node.fanIn) }
            case .concat:
                var at = 0
                for k in 0..<node.inputCount {
                    let width = nodes[node.input(k)].width, si = t.inputStride(k), x = t.input(k)
                    if t.valuesInPlace & (1 << k) == 0 {
                        for b in 0..<n { Kernels.copy(out + b &* s + at, x + b &* si, width) }
                    }
                    at += width
                }
            case .dense:
                let sx = t.inputStride(0), x = t.input(0)
                if w == 1 {  // the padded columns of a one-unit layer's rows stay 0 as they started
                    TileKernels.multiplyOneUnit(rows: n, inner: node.fanIn, a: x, aRowStride: sx, w: t.transposed!, wStride: s,
                                                c: out, cStride: s, start: t.bias![0])
                } else if node.activation == .relu {  // the ReLU applied as the product is stored
                    TileKernels.multiplyAccumulate(rows: n, inner: node.fanIn, cols8: s, a: x, aRowStride: sx, aColStride: 1,
                                                   b: t.transposed!, bStride: s, c: out, cStride: s, rowStart: t.bias!, relu: true)
                } else {
                    TileKernels.multiplyAccumulate(rows: n, inner: node.fanIn, cols8: s, a: x, aRowStride: sx, aColStride: 1,
                                                   b: t.transposed!, bStride: s, c: out, cStride: s, rowStart: t.bias!)
                }
                switch node.activation {
                case .linear: break
                case .relu:
                    if w == 1 { Kernels.relu(out, n &* s) }  // padded entries are 0 and stay 0
                case .sigmoid:
                    for b in 0..<n {
                        let ob = out + b &* s
                        for u in 0..<w { ob[u] = sigmoid(ob[u]) }
                    }
                }
            case .scaledSigmoid:
                let sx = t.inputStride(0), x = t.input(0)
                for b in 0..<n {
                    let xb = x + b &* sx, ob = out + b &* s
                    for k in 0..<w { ob[k] = node.lo + node.span * sigmoid(xb[k]) }
                }
            }
        }
    }

    /// The output of example b after `forward`.
    @inline(__always)
    func output(_ b: Int) -> Float { layout[layout.count - 1].values[b &* layout[layout.count - 1].stride] }

    /// Backward pass after `forward` over the same `count` examples: `gOut[b]` is dL/d(output b).
    /// Leaves every node's gradient rows in place (the embedding nodes' are the gradients of
    /// their table rows, read by the trainer) and adds the dense nodes' parameter gradients to
    /// `kernelGradients` / `biasGradients`, or with `fresh` writes them there (a chunk's first
    /// tile of a batch: the same sums as clearing them first, without a pass over them that,
    /// after the other thread read them in the optimiser step, took each line back from its core).
    func backward(count n: Int, gOut: UnsafePointer<Float>, fresh: Bool = false) {
        let nodes = network.compiled
        let last = nodes.count - 1
        for j in 0..<nodes.count where layout[j].cleared {
            if layout[j].redirected {  // rows shared with other nodes: only this node's entries
                for b in 0..<n { gradient(j, b).update(repeating: 0, count: nodes[j].width) }
            } else {
                layout[j].grad.update(repeating: 0, count: n &* layout[j].gradStride)
            }
        }
        for b in 0..<n { gradient(last, b).pointee = gOut[b] }
        let training = hasDropout
        for j in stride(from: last, through: 0, by: -1) {
            let node = nodes[j], t = layout[j]
            let s = t.gradStride, w = node.width, g = t.grad
            switch node.kind {
            case .embedding:
                break
            case .dropout:
                let sx = t.inputGradStride(0), gx = t.inputGrad(0), set = t.assigns(0)
                if training && node.rate > 0 {
                    for b in 0..<n { Kernels.multiply(gx + b &* sx, g + b &* s, t.mask + b &* t.maskStride, w, accumulate: !set) }
                } else {
                    for b in 0..<n { Kernels.scale(gx + b &* sx, g + b &* s, w, 1, accumulate: !set) }
                }
            case .product:
                let sa = t.inputStride(0), sb = t.inputStride(1), a = t.input(0), bb = t.input(1)
                let ga = t.inputGrad(0), gb = t.inputGrad(1), setA = t.assigns(0), setB = t.assigns(1)
                let gsa = t.inputGradStride(0), gsb = t.inputGradStride(1)
                for b in 0..<n {
                    let gr = g + b &* s
                    Kernels.multiply(ga + b &* gsa, gr, bb + b &* sb, w, accumulate: !setA)
                    Kernels.multiply(gb + b &* gsb, gr, a + b &* sa, w, accumulate: !setB)
                }
            case .dot:
                let sa = t.inputStride(0), sb = t.inputStride(1), a = t.input(0), bb = t.input(1)
                let ga = t.inputGrad(0), gb = t.inputGrad(1), setA = t.assigns(0), setB = t.assigns(1)
                let gsa = t.inputGradStride(0), gsb = t.inputGradStride(1)
                for b in 0..<n {
                    let gr = g[b &* s]
                    Kernels.scale(ga + b &* gsa, bb + b &* sb, node.fanIn, gr, accumulate: !setA)
                    Kernels.scale(gb + b &* gsb, a + b &* sa, node.fanIn, gr, accumulate: !setB)
                }
            case .concat:
                var at = 0
                for k in 0..<node.inputCount {
                    let width = nodes[node.input(k)].width, si = t.inputGradStride(k), gi = t.inputGrad(k), set = t.assigns(k)
                    if t.gradsInPlace & (1 << k) == 0 {
                        for b in 0..<n {
                            let src = g + b &* s + at, dst = gi + b &* si
                            if set { Kernels.copy(dst, src, width) } else { Kernels.axpy(dst, src, width, 1) }
                        }
                    }
                    at += width
                }
            case .dense:
                // A dense node's values and gradients, and its input's, are never placed in a
                // concatenation (`placeInConcatenations`): one stride for both.
                let sx = t.inputStride(0), x = t.input(0), gx = t.inputGrad(0)
                let out = t.values
                // g becomes the gradient before the activation, in place (nothing reads it after).
                switch node.activation {
                case .linear:
                    TileKernels.sumRows(into: t.biasGradient!, rows: g, count: n, stride: s, cols8: s, accumulate: !fresh)
                case .relu:  // padded entries have out = 0 and g = 0
                    TileKernels.reluGradientAndSumRows(g, out: out, count: n, stride: s, into: t.biasGradient!, accumulate: !fresh)
                case .sigmoid:
                    for b in 0..<n {
                        let gb = g + b &* s, ob = out + b &* s
                        for u in 0..<w { gb[u] *= ob[u] * (1 - ob[u]) }
                    }
                    TileKernels.sumRows(into: t.biasGradient!, rows: g, count: n, stride: s, cols8: s, accumulate: !fresh)
                }
                // dW (units × padded inputs) (+)= gᵀ x;  gx (+)= g W.
                TileKernels.multiplyAccumulate(rows: w, inner: n, cols8: sx, a: g, aRowStride: 1, aColStride: s,
                                               b: x, bStride: sx, c: t.kernelGradient!, cStride: sx, accumulate: !fresh)
                TileKernels.multiplyAccumulate(rows: n, inner: w, cols8: sx, a: g, aRowStride: s, aColStride: 1,
                                               b: t.kernelRows!, bStride: sx, c: gx, cStride: sx, accumulate: !t.assigns(0))
            case .scaledSigmoid:
                let sx = t.inputGradStride(0), gx = t.inputGrad(0), set = t.assigns(0)
                for b in 0..<n {
                    let gb = g + b &* s, ob = t.values + b &* t.stride, gxb = gx + b &* sx
                    for k in 0..<w {
                        let y = (ob[k] - node.lo) / node.span
                        put(gxb, k, gb[k] * node.span * y * (1 - y), set)
                    }
                }
            }
        }
    }
}

/// dst[k] = v when `assign`, else dst[k] += v (the branch is the same for a whole loop, and the
/// compiler takes it out of the loop).
@inline(__always)
private func put(_ dst: UnsafeMutablePointer<Float>, _ k: Int, _ v: Float, _ assign: Bool) {
    if assign { dst[k] = v } else { dst[k] += v }
}

/// One node as a tile pass reads it: where its rows are, where its inputs' rows are, and (for
/// dense nodes) its padded kernels and gradient buffers. Inputs are at most four (concat).
private struct TileNode {
    /// Row lengths of the values, the gradients and the dropout mask: the node's padded width,
    /// except where `TilePass.placeInConcatenations` put its rows inside a concatenation's.
    var stride, gradStride, maskStride: Int
    var values, mask, grad: UnsafeMutablePointer<Float>
    private var in0, in1, in2, in3: UnsafeMutablePointer<Float>?
    private var gin0, gin1, gin2, gin3: UnsafeMutablePointer<Float>?
    private var sin0 = 0, sin1 = 0, sin2 = 0, sin3 = 0
    private var gsin0 = 0, gsin1 = 0, gsin2 = 0, gsin3 = 0
    /// Concatenations, bit k: input k's values (`valuesInPlace`) or gradients (`gradsInPlace`)
    /// are already in this node's rows, so nothing is copied.
    var valuesInPlace = 0, gradsInPlace = 0
    /// Bit k: this node's backward writes (not adds) input k's gradient.
    private var assignBits = 0
    /// Nobody passes this node a gradient: the backward pass zeroes its rows.
    var cleared = false
    /// Its gradient rows are the trainer's (`redirectGradient`), maybe shared with other nodes.
    var redirected = false
    var transposed, kernelRows, bias, kernelGradient, biasGradient: UnsafeMutablePointer<Float>?
    /// Embedding nodes: where row r's entries are read, `table + r · tableStride` (the
    /// network's table, or the trainer's records: `readRows`), and how many floats from there
    /// the forward pass fetches into L1 for a row a few examples ahead (0: none, another node
    /// of the same records fetches them).
    var table: UnsafeMutablePointer<Float>?
    var tableStride = 0, fetchCount = 0
    /// Embedding nodes: a table whose rows are fetched into L2 along with the node's
    /// (`prefetchAlong`), `companionCount` floats from `companion + r · companionStride`.
    var companion: UnsafeMutablePointer<Float>?
    var companionStride = 0, companionCount = 0

    init(stride: Int, gradStride: Int, maskStride: Int, values: UnsafeMutablePointer<Float>,
         mask: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>, inputs: [UnsafeMutablePointer<Float>],
         inputGrads: [UnsafeMutablePointer<Float>], inputStrides: [Int], inputGradStrides: [Int]) {
        self.stride = stride
        self.gradStride = gradStride
        self.maskStride = maskStride
        self.values = values
        self.mask = mask
        self.grad = grad
        for k in 0..<inputs.count {
            switch k {
            case 0: in0 = inputs[0]; gin0 = inputGrads[0]; sin0 = inputStrides[0]; gsin0 = inputGradStrides[0]
            case 1: in1 = inputs[1]; gin1 = inputGrads[1]; sin1 = inputStrides[1]; gsin1 = inputGradStrides[1]
            case 2: in2 = inputs[2]; gin2 = inputGrads[2]; sin2 = inputStrides[2]; gsin2 = inputGradStrides[2]
            default: in3 = inputs[3]; gin3 = inputGrads[3]; sin3 = inputStrides[3]; gsin3 = inputGradStrides[3]
            }
        }
    }

    @inline(__always) func input(_ k: Int) -> UnsafeMutablePointer<Float> {
        switch k { case 0: return in0!; case 1: return in1!; case 2: return in2!; default: return in3! }
    }

    @inline(__always) func inputGrad(_ k: Int) -> UnsafeMutablePointer<Float> {
        switch k { case 0: return gin0!; case 1: return gin1!; case 2: return gin2!; default: return gin3! }
    }

    @inline(__always) func inputStride(_ k: Int) -> Int {
        switch k { case 0: return sin0; case 1: return sin1; case 2: return sin2; default: return sin3 }
    }

    @inline(__always) func inputGradStride(_ k: Int) -> Int {
        switch k { case 0: return gsin0; case 1: return gsin1; case 2: return gsin2; default: return gsin3 }
    }

    @inline(__always) func assigns(_ k: Int) -> Bool { assignBits & (1 << k) != 0 }

    mutating func setAssigns(_ k: Int) { assignBits |= 1 << k }

    mutating func setInputGrad(_ k: Int, _ p: UnsafeMutablePointer<Float>, stride: Int) {
        switch k {
        case 0: gin0 = p; gsin0 = stride
        case 1: gin1 = p; gsin1 = stride
        case 2: gin2 = p; gsin2 = stride
        default: gin3 = p; gsin3 = stride
        }
    }
}
