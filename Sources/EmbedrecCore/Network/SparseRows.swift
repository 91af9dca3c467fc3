/// Gradients of the embedding rows one batch (or one chunk of it) touched, kept in a compact
/// area of `capacity` rows instead of a table-sized buffer. A row's slot is valid while its
/// stamp equals the current batch stamp; `begin` starts a new batch in O(1).
final class SparseRows {
    let width: Int
    let capacity: Int
    private let stamp: Buffer<Int32>
    private let slot: Buffer<Int32>
    let touched: Buffer<Int32>
    let grads: Buffer<Float>
    private(set) var count = 0
    private var current: Int32 = 0

    init(rows: Int, width: Int, capacity: Int) {
        self.width = width
        self.capacity = capacity
        stamp = Buffer(repeating: -1, count: rows)
        slot = Buffer(repeating: 0, count: rows)
        touched = Buffer(repeating: 0, count: capacity)
        grads = Buffer(repeating: 0, count: capacity * width)
    }

    func begin() {
        if current == Int32.max {
            stamp.base.update(repeating: -1, count: stamp.count)
            current = 0
        }
        current += 1
        count = 0
    }

    /// The gradient row of `row`, zeroed on first use in this batch.
    @inline(__always)
    func row(_ row: Int) -> UnsafeMutablePointer<Float> {
        if stamp[row] != current {
            stamp[row] = current
            slot[row] = Int32(count)
            touched[count] = Int32(row)
            (grads.base + count &* width).update(repeating: 0, count: width)
            count += 1
        }
        return grads.base + Int(slot[row]) &* width
    }
}

/// The gradients of one chunk of a batch: dense gradients in full, embedding gradients sparse.
final class ChunkGradients: GradientSink {
    let network: Network
    let dense: [(Buffer<Float>, Buffer<Float>)?]
    let sparse: [SparseRows?]
    let embeddingDecay: Float
    var scale: Float = 1
    /// Per-example scratch of the forward and backward passes (activations, dropout masks,
    /// activation gradients), allocated once per chunk instead of once per batch.
    let act, mask, grad: Buffer<Float>

    init(network: Network, capacity: Int, weightDecay: Float) {
        self.network = network
        embeddingDecay = weightDecay
        act = Buffer(repeating: 0, count: network.activationSize)
        mask = Buffer(repeating: 0, count: network.activationSize)
        grad = Buffer(repeating: 0, count: network.activationSize)
        dense = network.nodes.indices.map { j in
            guard let w = network.weights[j], let b = network.biases[j] else { return nil }
            return (Buffer<Float>(repeating: 0, count: w.count), Buffer<Float>(repeating: 0, count: b.count))
        }
        sparse = network.nodes.enumerated().map { j, n in
            n.kind == .embedding ? SparseRows(rows: n.side == 0 ? network.nUsers : network.nItems, width: n.units, capacity: capacity) : nil
        }
    }

    func begin() {
        for case let (w, b)? in dense {
            w.base.update(repeating: 0, count: w.count)
            b.base.update(repeating: 0, count: b.count)
        }
        for case let s? in sparse { s.begin() }
    }

    /// Per node: dense gradient pointers and sparse accumulators, read without reference
    /// counting in the per-example path (the arrays above keep the objects alive).
    private lazy var densePointers: [(UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)] =
        dense.map { $0.map { ($0.0.base, $0.1.base) } ?? (UnsafeMutablePointer(bitPattern: 8)!, UnsafeMutablePointer(bitPattern: 8)!) }
    private lazy var sparseRefs: [Unmanaged<SparseRows>?] = sparse.map { $0.map { Unmanaged.passUnretained($0) } }

    @inline(__always)
    func denseGradient(node: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        densePointers.withUnsafeBufferPointer { $0[node] }
    }

    /// Adds the example's gradient plus the L2 term of that occurrence: 2 λ e / batch.
    @inline(__always)
    func addEmbeddingGradient(node: Int, row: Int, _ g: UnsafePointer<Float>, _ width: Int) {
        let rows = sparseRefs.withUnsafeBufferPointer { $0[node]! }
        let dst = rows._withUnsafeGuaranteedRef { $0.row(row) }
        Kernels.axpy(dst, g, width, 1)
        if embeddingDecay > 0 {
            Kernels.axpy(dst, network.compiled[node].weights! + row &* width, width, 2 * embeddingDecay * scale)
        }
    }
}
