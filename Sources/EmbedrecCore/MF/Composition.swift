/// Which parameter rows make up each entity (a user or an item) of a hybrid model, and with
/// what weights: entity e's vector is Σ w_j · row[r_j] and its bias Σ w_j · bias[r_j] over its
/// pairs j in `indptr[e] ..< indptr[e + 1]`. Each row has a kind (`RowKind`): a feature's
/// row, a bias-only row (a numeric feature, a learned linear term: it adds to the bias alone,
/// its vector stays zero and is never read), or an entity's own id row.
///
/// The rows are an entity's own id row and the rows of its features (a category, a numeric
/// column scaled by its value, one dimension of a dense vector): LightFM's hybrid model. The
/// Python layer builds the pairs from the feature frames; the core only sees rows and weights,
/// so every kind of feature trains through the same loop. An entity with no pairs has the zero
/// vector (a content-only model's item without features).
public final class Composition {
    public let indptr: Buffer<Int64>
    public let rows: Buffer<Int32>
    public let weights: Buffer<Float>
    /// Each row's `RowKind` raw value.
    public let kinds: Buffer<UInt8>
    /// Number of entities.
    public let count: Int
    /// Number of parameter rows the pairs index.
    public let nRows: Int
    /// The most pairs any entity has (at least 1): the size of per-entity scratch space.
    public let mostPairs: Int

    /// Copies and validates the CSR arrays: indptr non-decreasing from 0 to the pair count,
    /// rows in 0..<nRows, weights finite.
    public init(indptr: UnsafePointer<Int64>, rows: UnsafePointer<Int32>, weights: UnsafePointer<Float>,
                count: Int, nRows: Int, kinds: UnsafePointer<UInt8>? = nil) throws {
        guard count >= 1, count <= MFConfig.maxRows else {
            throw CoreError.invalid("a composition needs 1...\(MFConfig.maxRows) entities, got \(count)")
        }
        guard nRows >= 1, nRows <= MFConfig.maxRows else {
            throw CoreError.invalid("a composition needs 1...\(MFConfig.maxRows) parameter rows, got \(nRows)")
        }
        guard indptr[0] == 0 else { throw CoreError.invalid("indptr[0] must be 0, got \(indptr[0])") }
        for e in 0..<count where indptr[e + 1] < indptr[e] {
            throw CoreError.invalid("indptr must be non-decreasing; indptr[\(e + 1)] = \(indptr[e + 1]) < \(indptr[e])")
        }
        let pairs = Int(indptr[count])
        for j in 0..<pairs {
            guard rows[j] >= 0, Int(rows[j]) < nRows else {
                throw CoreError.invalid("rows[\(j)] = \(rows[j]) is outside the \(nRows) parameter rows")
            }
            guard weights[j].isFinite else { throw CoreError.invalid("weights[\(j)] is \(weights[j]); weights must be finite") }
        }
        self.count = count
        self.nRows = nRows
        var most = 1
        for e in 0..<count { most = max(most, Int(indptr[e + 1] - indptr[e])) }
        mostPairs = most
        self.indptr = Buffer(copying: indptr, count: count + 1, zero: 0)
        self.rows = Buffer(copying: rows, count: max(pairs, 1), zero: 0)
        self.weights = Buffer(copying: weights, count: max(pairs, 1), zero: 0)
        self.kinds = Buffer(repeating: RowKind.feature.rawValue, count: nRows)
        if let kinds {
            for r in 0..<nRows {
                guard RowKind(rawValue: kinds[r]) != nil else {
                    throw CoreError.invalid("kinds[\(r)] = \(kinds[r]); a row kind is 0 (feature), 1 (bias only) or 2 (id)")
                }
                self.kinds[r] = kinds[r]
            }
        }
    }

    /// Raw pointers to the arrays, for the per-rating loops (no reference counting there).
    var view: CompositionView {
        CompositionView(indptr: indptr.base, rows: rows.base, weights: weights.base, kinds: kinds.base)
    }

    @inline(__always) func range(_ e: Int) -> Range<Int> { view.range(e) }

    /// Per row, how many of the ratings of `entities` (one entry per rating) reach it.
    func ratingsReaching(_ entities: UnsafeBufferPointer<Int32>) -> [Int] {
        var perEntity = [Int](repeating: 0, count: count)
        for e in entities { perEntity[Int(e)] += 1 }
        var reached = [Int](repeating: 0, count: nRows)
        for e in 0..<count where perEntity[e] > 0 {
            for j in range(e) { reached[Int(rows[j])] += perEntity[e] }
        }
        return reached
    }
}

/// What a parameter row of a hybrid model is.
public enum RowKind: UInt8 {
    /// A feature's row: adds its weighted vector and bias.
    case feature = 0
    /// A numeric feature's linear term: adds its weighted bias only.
    case biasOnly = 1
    /// An entity's own id row (a feature row otherwise; id dropout leaves it out).
    case id = 2
}

/// A `Composition`'s arrays as raw pointers (valid while the composition lives).
struct CompositionView: @unchecked Sendable {
    let indptr: UnsafeMutablePointer<Int64>
    let rows: UnsafeMutablePointer<Int32>
    let weights: UnsafeMutablePointer<Float>
    let kinds: UnsafeMutablePointer<UInt8>

    @inline(__always) func range(_ e: Int) -> Range<Int> { Int(indptr[e]) ..< Int(indptr[e &+ 1]) }

    /// The first row of entity e (its id row, when it has one): the row worth prefetching.
    @inline(__always) func firstRow(_ e: Int) -> Int? {
        let a = Int(indptr[e])
        return a < Int(indptr[e &+ 1]) ? Int(rows[a]) : nil
    }
}

extension MFModel {
    /// The model of entities this model of parameter rows describes: every user's and item's
    /// vector and bias composed from its rows. A side without a composition is this model's
    /// own tables, shared, not copied (a plain side costs no memory twice), and so the result
    /// shares this model's `UseGuard`: while this model trains, reading the result is busy as
    /// reading this model is. The global term, biases option, y_range and non-negativity carry
    /// over, so every query (predict, recommend, ranking, similar items) runs on the result
    /// unchanged.
    public func composed(users: Composition?, items: Composition?) throws -> MFModel {
        try checkCompositions(users: users, items: items)
        var shape = config
        shape.nUsers = users?.count ?? config.nUsers
        shape.nItems = items?.count ?? config.nItems
        let k = self.k
        func side(_ c: Composition?, _ factors: Buffer<Float>, _ biases: Buffer<Float>) throws -> (Buffer<Float>, Buffer<Float>) {
            guard let c else { return (factors, biases) }
            let cells = try MemoryBudget.product([c.count, k], what: "composed embeddings")
            try MemoryBudget.check(bytes: try MemoryBudget.product([cells + c.count, 4], what: "composed model"),
                                   what: "the composed embeddings of \(c.count) entities")
            let outFactors = Buffer<Float>(repeating: 0, count: cells), outBiases = Buffer<Float>(repeating: 0, count: c.count)
            composeSide(c, factors, biases, into: outFactors, outBiases)
            return (outFactors, outBiases)
        }
        return try useGuard.withReading {
            let (uf, ub) = try side(users, userFactors, userBias)
            let (itf, ib) = try side(items, itemFactors, itemBias)
            let out = MFModel(config: shape, userFactors: uf, itemFactors: itf, userBias: ub, itemBias: ib, guard: useGuard)
            out.globalBias = globalBias
            out.initialisedFromData = initialisedFromData
            return out
        }
    }

    /// Composes again into `target`, a model `composed(users:items:)` made from this one with the
    /// same compositions: its tables are overwritten in place, so a fit that publishes the
    /// composed model after its epochs holds one composed copy, not an old and a new one. Under
    /// the shared guard's write lock: a query on `target` sees the old or the new composition.
    public func compose(into target: MFModel, users: Composition?, items: Composition?) throws {
        try checkCompositions(users: users, items: items)
        let nUsers = users?.count ?? config.nUsers, nItems = items?.count ?? config.nItems
        guard target.useGuard === useGuard, target.k == k, target.config.nUsers == nUsers, target.config.nItems == nItems,
              users != nil || target.userFactors === userFactors, items != nil || target.itemFactors === itemFactors else {
            throw CoreError.invalid("the target model (\(target.config.nUsers) users, \(target.config.nItems) items, "
                                    + "\(target.k) factors) was not composed from this model with these compositions "
                                    + "(\(nUsers) users, \(nItems) items, \(k) factors); pass the model "
                                    + "embedrec_model_compose made from it")
        }
        try useGuard.withWriting {
            if let users { composeSide(users, userFactors, userBias, into: target.userFactors, target.userBias) }
            if let items { composeSide(items, itemFactors, itemBias, into: target.itemFactors, target.itemBias) }
            target.globalBias = globalBias
        }
    }

    /// Each composition indexes this model's rows of its side (a trainer or a composition over
    /// another model's rows would read past them).
    func checkCompositions(users: Composition?, items: Composition?) throws {
        for (side, c, rows) in [("user", users, config.nUsers), ("item", items, config.nItems)] {
            if let c, c.nRows != rows {
                throw CoreError.invalid("the \(side) composition indexes \(c.nRows) rows, but the model has \(rows)")
            }
        }
    }

    /// Every entity of `c` composed from `factors` / `biases` into the output tables.
    private func composeSide(_ c: Composition, _ factors: Buffer<Float>, _ biases: Buffer<Float>,
                             into outFactors: Buffer<Float>, _ outBiases: Buffer<Float>) {
        let k = self.k
        let ptrs = UncheckedSendable((factors.base, biases.base, outFactors.base, outBiases.base))
        parallelChunks(count: c.count, chunks: resolveThreads(0, work: c.count * k, minPerThread: 1 << 18)) { _, range in
            let (f, b, of, ob) = ptrs.value
            let side = SideRows(c: c.view, factors: f, biases: b, hot: nil, k: k)
            for e in range { ob[e] = side.compose(e, into: of + e &* k, skipIds: false) }
        }
    }
}
