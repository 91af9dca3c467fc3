/// Implicit-feedback interactions as compressed rows: for row r (a user, or an item in the
/// transposed view), the columns it interacted with are `indices[indptr[r] ..< indptr[r + 1]]`,
/// sorted, each once, with the summed weight of its duplicates in `weights`.
///
/// ALS solves one row at a time against all its columns, and BPR asks "has this user seen
/// that item?" for every sampled negative: both want each row's columns together and sorted.
public final class InteractionRows {
    public let nRows: Int
    public let indptr: Buffer<Int64>
    public let indices: Buffer<Int32>
    public let weights: Buffer<Float>
    /// The most columns of any row (for per-row scratch space).
    public let longestRow: Int

    /// Builds the rows from `count` (row, column, weight) triples: two stable counting sorts
    /// (by column, then by row) leave each row's columns in order in O(count), then duplicates
    /// are merged by adding their weights.
    public init(rows: UnsafePointer<Int32>, columns: UnsafePointer<Int32>, weights w: UnsafePointer<Float>,
                count: Int, nRows: Int, nColumns: Int) {
        self.nRows = nRows
        let byColumn = Buffer<Int32>(repeating: 0, count: count)
        do {  // positions ordered by column
            var start = [Int](repeating: 0, count: nColumns + 1)
            for r in 0..<count { start[Int(columns[r]) + 1] += 1 }
            for c in 0..<nColumns { start[c + 1] += start[c] }
            for r in 0..<count {
                let c = Int(columns[r])
                byColumn[start[c]] = Int32(r)
                start[c] += 1
            }
        }
        let ptr = Buffer<Int64>(repeating: 0, count: nRows + 1)
        for r in 0..<count { ptr[Int(rows[r]) + 1] += 1 }
        for r in 0..<nRows { ptr[r + 1] += ptr[r] }
        let cols = Buffer<Int32>(repeating: 0, count: count)
        let vals = Buffer<Float>(repeating: 0, count: count)
        do {  // then stably by row: each row's columns come out sorted
            var fill = [Int](repeating: 0, count: nRows)
            for r in 0..<nRows { fill[r] = Int(ptr[r]) }
            for j in 0..<count {
                let p = Int(byColumn[j]), row = Int(rows[p])
                cols[fill[row]] = columns[p]
                vals[fill[row]] = w[p]
                fill[row] += 1
            }
        }
        // Merge repeated (row, column) pairs in place.
        var out = 0
        var newPtr = [Int64](repeating: 0, count: nRows + 1)
        for row in 0..<nRows {
            let lo = Int(ptr[row]), hi = Int(ptr[row + 1])
            var j = lo
            while j < hi {
                let c = cols[j]
                var sum = vals[j]
                j += 1
                while j < hi && cols[j] == c { sum += vals[j]; j += 1 }
                cols[out] = c
                vals[out] = sum
                out += 1
            }
            newPtr[row + 1] = Int64(out)
        }
        for row in 0...nRows { ptr[row] = newPtr[row] }
        indptr = ptr
        var longest = 0
        for row in 0..<nRows { longest = max(longest, Int(ptr[row + 1] - ptr[row])) }
        longestRow = longest
        indices = Buffer(copying: cols.base, count: out, zero: 0)
        weights = Buffer(copying: vals.base, count: out, zero: 0)
    }

    /// The number of distinct (row, column) pairs.
    public var count: Int { indices.count }

    /// Whether `row` interacted with `column` (binary search in the row's sorted columns).
    @inline(__always)
    public func contains(row: Int, column: Int32) -> Bool {
        var lo = Int(indptr[row]), hi = Int(indptr[row + 1])
        while lo < hi {
            let mid = (lo &+ hi) >> 1
            let c = indices[mid]
            if c == column { return true }
            if c < column { lo = mid &+ 1 } else { hi = mid }
        }
        return false
    }

    @inline(__always) public func length(of row: Int) -> Int { Int(indptr[row + 1] - indptr[row]) }
}

/// Hyper-parameters of the implicit-feedback trainers.
public struct ImplicitOptions {
    public enum Method: Int32 {
        /// Weighted matrix factorisation by alternating least squares with conjugate-gradient
        /// solves (Hu, Koren & Volinsky 2008; Takács et al. 2011).
        case als = 0
        /// Bayesian personalised ranking by SGD over sampled (user, positive, negative) triples
        /// (Rendle et al. 2009).
        case bpr = 1
    }

    public var method: Method = .als
    public var epochs = 15
    /// BPR's step size (unused by ALS).
    public var learningRate: Float = 0.01
    /// L2 penalty on every factor row (and, for BPR, item bias).
    public var regularization: Float = 0.01
    /// ALS's confidence slope: an interaction of weight w counts 1 + alpha · w.
    public var alpha: Float = 1
    /// Conjugate-gradient steps per row and half-epoch (ALS).
    public var cgSteps = 3
    /// ALS rows up to this many interactions solved exactly (`ShortRowSolves`) whatever it
    /// costs, 0 for none; nil (the default): where the estimate says it is cheaper.
    var shortRowLimit: Int?
    public var threads = 0
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        guard epochs >= 1, epochs <= 1_000_000 else { throw CoreError.invalid("epochs must be in 1...1000000, got \(epochs)") }
        guard learningRate.isFinite, learningRate > 0, learningRate <= 10 else {
            throw CoreError.invalid("lr must be a finite number in (0, 10], got \(learningRate)")
        }
        guard regularization.isFinite, regularization >= 0, regularization <= 1e6 else {
            throw CoreError.invalid("regularization must be a finite number in [0, 1e6], got \(regularization)")
        }
        guard alpha.isFinite, alpha >= 0, alpha <= 1e6 else {
            throw CoreError.invalid("alpha must be a finite number in [0, 1e6], got \(alpha)")
        }
        guard cgSteps >= 1, cgSteps <= 1000 else { throw CoreError.invalid("cg_steps must be in 1...1000, got \(cgSteps)") }
        guard threads >= 0, threads <= 1024 else { throw CoreError.invalid("n_threads must be in 0...1024 (0 = all cores), got \(threads)") }
    }
}

/// A trainer for an implicit-feedback model: `model`'s factor tables (and item biases, for
/// BPR) are trained on the interactions in `data` (weights in its rating column). The model's
/// global and user biases are set to zero and stay so: scores are p_u · q_i (+ b_i).
public func makeImplicitTrainer(model: MFModel, data: RatingSet, options: ImplicitOptions) throws -> Trainer {
    try options.validate()
    guard data.count > 0 else { throw CoreError.invalid("there are no training interactions") }
    guard !model.config.nonNegative, model.config.yRange == nil else {
        throw CoreError.invalid("implicit-feedback training takes a model without y_range or non-negativity")
    }
    for r in 0..<data.count {
        guard Int(data.users[r]) < model.config.nUsers, Int(data.items[r]) < model.config.nItems else {
            throw CoreError.invalid("training interactions refer to rows beyond the model's tables")
        }
        guard data.ratings[r] >= 0 else {
            throw CoreError.invalid("interaction weight \(data.ratings[r]) at position \(r) is negative; weights must be >= 0")
        }
    }
    try model.useGuard.withWriting {
        model.globalBias = 0
        model.userBias.base.update(repeating: 0, count: model.userBias.count)
        model.initialisedFromData = true
    }
    switch options.method {
    case .als: return ImplicitALSTrainer(model: model, data: data, options: options)
    case .bpr: return BPRTrainer(model: model, data: data, options: options)
    }
}
