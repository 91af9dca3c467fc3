/// One side's embedding rows (all the user tables of a network, or all the item tables) as
/// `NetworkTrainer` trains them with Adam: row r's record, `stride` floats from a 64-byte
/// boundary, holds the row of every embedding node of that side one after another (the side's
/// joint row: `width` entries, node `nodes[k]`'s at `offsets[k]`), then the first moments of
/// those entries, then their second moments.
///
/// Why: a training example's user is a row at random among tens of thousands, and the
/// forward pass reads, and the optimiser step reads and writes, that user's embedding row, its
/// bias row and the moments of both. In the network's tables and the trainer's moment tables
/// those were four places, about 9.7 cache lines (a 30-wide row starting mid-line spans three;
/// its 60 moments five; the bias and its moments one each); in a record they are one run of 6
/// (the MF network: 31 entries, 93 floats). And one Adam step covers the joint row, so a bias
/// is stepped in the vector that ends its embedding row instead of with a scalar square root
/// and division of its own. Each entry's step reads only that entry, and every node of a side
/// has the same L2 term, so the results are the same bits as separate tables.
///
/// The network's tables are copied in when training starts and out after every epoch (an
/// interrupted one too), so between epochs the network is what it would have been without the
/// records. Costs the side's tables once more, plus padding to whole cache lines.
final class SideRecords {
    /// The side's embedding nodes, in node order, and where each one's entries start in the
    /// joint row.
    let nodes: [Int]
    let offsets: [Int]
    /// 0 users, 1 items.
    let side: Int
    /// Entries of the joint row: the nodes' widths added up.
    let width: Int
    let rows: Int
    /// Floats from one record to the next: 3 · width rounded up to whole 64-byte lines.
    let stride: Int
    /// Whether the side's nodes clamp their entries at zero after each step (all or none).
    let nonNegative: Bool
    private let storage: Buffer<Float>

    /// The records of `side` (0 users, 1 items), or nil when the side has no embedding nodes
    /// or its nodes cannot share one joint row: they must agree on being non-negative (the
    /// step clamps a whole joint row or none of it), and every node reading them must write
    /// exactly its width of their gradient rows (a dense layer writes padded rows, which would
    /// run into the next node's entries).
    init?(network: Network, side: Int) {
        let nodes = network.nodes.indices.filter { network.nodes[$0].isTrainedEmbedding && network.nodes[$0].side == side }
        guard let first = nodes.first else { return nil }
        guard nodes.allSatisfy({ network.nodes[$0].nonNegative == network.nodes[first].nonNegative }) else { return nil }
        let exact: Set<NodeKind> = [.product, .dot, .concat, .dropout]
        for consumer in network.nodes where consumer.inputs.contains(where: nodes.contains) {
            guard exact.contains(consumer.kind) else { return nil }
        }
        var offsets: [Int] = [], width = 0
        for j in nodes {
            offsets.append(width)
            width += network.widths[j]
        }
        self.nodes = nodes
        self.offsets = offsets
        self.side = side
        self.width = width
        rows = side == 0 ? network.nUsers : network.nItems
        stride = (3 * width + 15) & ~15
        nonNegative = network.nodes[first].nonNegative
        storage = Buffer(repeating: 0, count: rows * stride, hugePages: true)
        load(from: network)
    }

    /// Where node `j`'s entries start in the joint row (nil: not a node of this side).
    func offset(ofNode j: Int) -> Int? { nodes.firstIndex(of: j).map { offsets[$0] } }

    /// Row r's record.
    @inline(__always) func record(_ r: Int) -> UnsafeMutablePointer<Float> { storage.base + r &* stride }

    /// The first row's record: node `nodes[k]`'s row r is at `base + offsets[k] + r · stride`.
    var base: UnsafeMutablePointer<Float> { storage.base }

    /// Copies the network's tables of the side's nodes in.
    private func load(from network: Network) {
        for (k, j) in nodes.enumerated() {
            let w = network.widths[j], table = network.weights[j]!.base, at = offsets[k]
            for r in 0..<rows { (record(r) + at).update(from: table + r &* w, count: w) }
        }
    }

    /// Copies rows `part` of the side's nodes out, into the network's tables.
    func store(to network: Network, rows part: Range<Int>) {
        for (k, j) in nodes.enumerated() {
            let w = network.widths[j], table = network.weights[j]!.base, at = offsets[k]
            for r in part { (table + r &* w).update(from: record(r) + at, count: w) }
        }
    }
}
