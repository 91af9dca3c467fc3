/// The description of a network: a list of nodes in topological order, each reading earlier
/// nodes' outputs. Every model of the write-ups (tabular concat, product + dense head, NeuMF)
/// is such a list, built by the Python layer; the last node outputs one number per
/// (user, item) pair.
public enum NodeKind: Int32 {
    /// A row of a user or item table (`side` 0 = user, 1 = item), `dim` wide.
    case embedding = 0
    /// Zeroes each entry with probability `rate` while training (scaling the rest by
    /// 1 / (1 - rate)); the identity when predicting.
    case dropout = 1
    /// Elementwise product of two equal-width inputs.
    case product = 2
    /// Dot product of two equal-width inputs (width 1).
    case dot = 3
    /// Concatenation of up to four inputs.
    case concat = 4
    /// `activation(W x + b)` with `units` outputs; W is Glorot-uniform initialised, b zero.
    case dense = 5
    /// lo + (hi - lo) · sigmoid(x), elementwise.
    case scaledSigmoid = 6
}

public enum Activation: Int32 {
    case linear = 0
    case relu = 1
    case sigmoid = 2
}

public struct NodeSpec {
    public var kind: NodeKind
    public var inputs: [Int] = []
    /// Embedding: 0 user, 1 item.
    public var side: Int = 0
    /// Embedding width or dense units.
    public var units: Int = 0
    public var nonNegative = false
    /// Embedding initialiser: false = normal(0, a), true = uniform(a, b).
    public var uniformInit = false
    /// A fixed embedding: a table of given values per user or item (their encoded features),
    /// read like any embedding and never trained.
    public var frozen = false
    /// An embedding whose rows the optimiser trains.
    public var isTrainedEmbedding: Bool { kind == .embedding && !frozen }
    public var a: Double = 0
    public var b: Double = 0
    public var activation: Activation = .linear
    /// Dropout rate.
    public var rate: Double = 0

    public init(kind: NodeKind) { self.kind = kind }

    public static func embedding(side: Int, dim: Int, std: Double = 0.05, nonNegative: Bool = false) -> NodeSpec {
        var n = NodeSpec(kind: .embedding)
        n.side = side; n.units = dim; n.a = std; n.nonNegative = nonNegative
        return n
    }

    public static func dense(_ input: Int, units: Int, activation: Activation) -> NodeSpec {
        var n = NodeSpec(kind: .dense)
        n.inputs = [input]; n.units = units; n.activation = activation
        return n
    }

    public static func op(_ kind: NodeKind, _ inputs: Int...) -> NodeSpec {
        var n = NodeSpec(kind: kind)
        n.inputs = inputs
        return n
    }

    public static func dropout(_ input: Int, rate: Double) -> NodeSpec {
        var n = NodeSpec(kind: .dropout)
        n.inputs = [input]; n.rate = rate
        return n
    }

    public static func scaledSigmoid(_ input: Int, lo: Double, hi: Double) -> NodeSpec {
        var n = NodeSpec(kind: .scaledSigmoid)
        n.inputs = [input]; n.a = lo; n.b = hi
        return n
    }
}

/// Checks a node list and works out each node's output width.
func validate(_ nodes: [NodeSpec]) throws -> [Int] {
    guard !nodes.isEmpty, nodes.count <= 256 else {
        throw CoreError.invalid("a network needs 1 to 256 nodes, got \(nodes.count)")
    }
    var widths: [Int] = []
    for (j, n) in nodes.enumerated() {
        for i in n.inputs where i < 0 || i >= j {
            throw CoreError.invalid("node \(j) reads node \(i); a node may only read earlier nodes")
        }
        let w = n.inputs.map { widths[$0] }
        func need(_ count: ClosedRange<Int>) throws {
            guard count.contains(n.inputs.count) else {
                throw CoreError.invalid("node \(j) (\(n.kind)) takes \(count) inputs, got \(n.inputs.count)")
            }
        }
        let width: Int
        switch n.kind {
        case .embedding:
            try need(0...0)
            guard n.side == 0 || n.side == 1 else { throw CoreError.invalid("node \(j): embedding side must be 0 (user) or 1 (item), got \(n.side)") }
            guard (1...65536).contains(n.units) else { throw CoreError.invalid("node \(j): embedding width must be in 1...65536, got \(n.units)") }
            guard n.a.isFinite, n.b.isFinite, n.uniformInit ? n.a <= n.b : (n.a >= 0 && n.a <= 10) else {
                throw CoreError.invalid("node \(j): bad initialiser (\(n.uniformInit ? "uniform" : "normal") \(n.a), \(n.b))")
            }
            width = n.units
        case .dropout:
            try need(1...1)
            guard n.rate.isFinite, n.rate >= 0, n.rate < 1 else { throw CoreError.invalid("node \(j): dropout rate must be in [0, 1), got \(n.rate)") }
            width = w[0]
        case .product, .dot:
            try need(2...2)
            guard w[0] == w[1] else { throw CoreError.invalid("node \(j) (\(n.kind)) needs equal widths, got \(w[0]) and \(w[1])") }
            width = n.kind == .dot ? 1 : w[0]
        case .concat:
            try need(1...4)
            width = w.reduce(0, +)
        case .dense:
            try need(1...1)
            guard (1...65536).contains(n.units) else { throw CoreError.invalid("node \(j): dense units must be in 1...65536, got \(n.units)") }
            width = n.units
        case .scaledSigmoid:
            try need(1...1)
            guard n.a.isFinite, n.b.isFinite, n.a < n.b else { throw CoreError.invalid("node \(j): y_range must have lo < hi, got (\(n.a), \(n.b))") }
            width = w[0]
        }
        widths.append(width)
    }
    guard widths.last == 1 else { throw CoreError.invalid("the last node must output one value per pair, it outputs \(widths.last!)") }
    return widths
}
