/// SGD for the hybrid model (LightFM's): a user's (item's) vector and bias are the weighted sum
/// of its parameter rows (`Composition`), and each rating's gradient reaches every row in
/// proportion to its weight.
///
/// For a rating with raw-score gradient g (the descent direction), a composed side's row r of
/// weight w moves by lr · (g · w · v − λ · |w| · row_r), v being the other side's composed
/// vector before the update, and its bias by lr · (g · w − λ · |w| · bias_r). A side without a
/// composition is updated as plain SGD does (`SGDStep`). So the L2 penalty per rating is
/// λ Σ |w| (‖row‖² + bias²) over the rows the rating reaches: for an id row (w = 1) exactly
/// plain MF's, and a model whose compositions are each entity's own row alone is plain MF.
///
/// Hot rows: a category such as a language is part of a large share of all ratings, so with
/// several threads its row would be written by all of them at once, and its cache line would
/// travel between the cores at every rating (with two threads an epoch took longer than with
/// one). Each block of ratings (`SGDTrainer.blockSize`) therefore works on its own copy of the
/// side's hot rows (`HotRows`: the feature rows that at least 1/200 of the ratings reach) and
/// adds what it changed back to the shared rows when it ends. With one thread the copy is
/// written back as it is, so the result is exactly per-rating SGD; with more, a hot row misses
/// the other threads' changes for at most a block, as Hogwild's rows miss lost updates.
struct FeatureSGDStep: RatingStep, @unchecked Sendable {
    let m: MFModel
    let P, Q, bu, bi: UnsafeMutablePointer<Float>
    let us, its: UnsafeMutablePointer<Int32>
    let rs: UnsafeMutablePointer<Float>
    let users, items: CompositionView?
    let userHot, itemHot: HotRows.View?
    /// Keeps the compositions and hot-row tables alive while the views are used.
    let owners: (Composition?, Composition?, HotRows?, HotRows?)
    let lr, reg: Float
    let k: Int
    let biases, nonNegative: Bool
    /// One thread: a block's copies of the hot rows are written back as they are.
    let exclusive: Bool
    /// Id dropout: a rating leaves a side's id rows out when 16 bits of a hash of (key,
    /// rating position) fall below this (rate · 2^16; 0: never).
    let idThreshold: UInt32
    let idKey: UInt64
    /// The model's global term (fixed while an epoch runs), read once: a read of the model's
    /// property per rating costs an exclusivity check.
    let globalBias: Float
    /// Whether a rating whose sides are each one to four rows of weight 1 takes `UnitRows`'
    /// two-pass step (same bits as the general one, fewer loads and stores).
    let fusesUnitRows: Bool

    init(model: MFModel, data: RatingSet, users: Composition?, items: Composition?, lr: Float, reg: Float,
         hot: (users: HotRows?, items: HotRows?) = (nil, nil), exclusive: Bool = true,
         idDropout: Float = 0, seed: UInt64 = 0, epoch: Int = 0, fusesUnitRows: Bool = true) {
        m = model
        P = model.userFactors.base; Q = model.itemFactors.base
        bu = model.userBias.base; bi = model.itemBias.base
        us = data.users.base; its = data.items.base; rs = data.ratings.base
        self.users = users?.view; self.items = items?.view
        userHot = hot.users?.view; itemHot = hot.items?.view
        owners = (users, items, hot.users, hot.items)
        self.lr = lr; self.reg = reg
        k = model.k
        biases = model.config.biases; nonNegative = model.config.nonNegative
        self.exclusive = exclusive
        idThreshold = UInt32((Double(idDropout) * 65536).rounded())
        idKey = DropoutMask.key(seed: seed ^ 0x1D_D809, node: epoch)
        globalBias = model.globalBias
        self.fusesUnitRows = fusesUnitRows
    }

    func run(_ range: Range<Int>) -> (Double, Double) {
        let userSide = users.map { SideRows(c: $0, factors: P, biases: bu, hot: userHot, k: k) }
        let itemSide = items.map { SideRows(c: $0, factors: Q, biases: bi, hot: itemHot, k: k) }
        userSide?.checkOut(exclusive: exclusive)
        itemSide?.checkOut(exclusive: exclusive)
        defer {
            userSide?.checkIn(exclusive: exclusive)
            itemSide?.checkIn(exclusive: exclusive)
        }
        let userBiases = BiasRows(), itemBiases = BiasRows()
        defer { userBiases.free(); itemBiases.free() }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * k) { scratch in
            let userScratch = scratch.baseAddress!, itemScratch = userScratch + k
            var se = 0.0, ae = 0.0
            for idx in range {
                if idx &+ 8 < range.upperBound {  // the random rows of a rating a few ahead
                    prefetch(users, P, Int(us[idx &+ 8]))
                    prefetch(items, Q, Int(its[idx &+ 8]))
                }
                let u = Int(us[idx]), i = Int(its[idx])
                var skipUserIds = false, skipItemIds = false
                if idThreshold > 0 {
                    let h = DropoutMask.key(seed: idKey, node: idx)
                    skipUserIds = UInt32(truncatingIfNeeded: h & 0xFFFF) < idThreshold
                    skipItemIds = UInt32(truncatingIfNeeded: (h >> 16) & 0xFFFF) < idThreshold
                }
                var userRows = UnitRows(placeholder: P), itemRows = UnitRows(placeholder: Q)
                var userBiases = userBiases, itemBiases = itemBiases
                if fusesUnitRows, let bUser = unitRows(userSide, u, P, bu, skipIds: skipUserIds, into: &userRows, &userBiases),
                   let bItem = unitRows(itemSide, i, Q, bi, skipIds: skipItemIds, into: &itemRows, &itemBiases),
                   userRows.count > 0, itemRows.count > 0 {
                    var raw = globalBias + UnitRows.dot(userRows, itemRows, k)
                    if biases { raw += bUser + bItem }
                    let g = accumulate(raw: raw, rating: rs[idx], &se, &ae)
                    if biases {
                        stepBiases(userBiases, g: g)
                        stepBiases(itemBiases, g: g)
                    }
                    UnitRows.step(users: userRows, items: itemRows, k, keep: 1 - lr * reg, step: lr * g,
                                  nonNegative: nonNegative)
                    continue
                }
                let (p, bUser) = vector(userSide, u, P, bu, userScratch, skipIds: skipUserIds)
                let (q, bItem) = vector(itemSide, i, Q, bi, itemScratch, skipIds: skipItemIds)
                var raw = globalBias + Kernels.dot(p, q, k)
                if biases { raw += bUser + bItem }
                let g = accumulate(raw: raw, rating: rs[idx], &se, &ae)
                // Composed sides first: they read the other side's vector before it moves
                // (a plain side's row is updated last, from the composed side's scratch copy;
                // at least one side is composed, so one of the two is a scratch copy).
                if let userSide { updateRows(userSide, entity: u, other: q, g: g, skipIds: skipUserIds) }
                if let itemSide { updateRows(itemSide, entity: i, other: p, g: g, skipIds: skipItemIds) }
                if userSide == nil { updateRow(p, bias: bu + u, other: q, g: g, w: 1) }
                if itemSide == nil { updateRow(q, bias: bi + i, other: p, g: g, w: 1) }
            }
            return (se, ae)
        }
    }

    /// Adds the rating's error to the sums and returns the raw score's descent direction.
    @inline(__always)
    private func accumulate(raw: Float, rating: Float, _ se: inout Double, _ ae: inout Double) -> Float {
        let (pred, dRaw) = m.lossGradient(raw: raw, rating: rating)
        let e = rating - pred
        se += Double(e * e)
        ae += Double(abs(e))
        return -dRaw
    }

    /// Lists entity e's vector rows (a plain side's own row) for `UnitRows`' step and its bias
    /// rows for `stepBiases`, and returns its composed bias; nil when a vector row's weight is
    /// not 1, a row comes twice, there are more than four vector rows or more than
    /// `BiasRows.capacity` rows in all (the general step then runs, as it does for a side of no
    /// vector rows).
    @inline(__always)
    private func unitRows(_ side: SideRows?, _ e: Int, _ table: UnsafeMutablePointer<Float>,
                          _ biasTable: UnsafeMutablePointer<Float>, skipIds: Bool, into list: inout UnitRows,
                          _ biasRows: inout BiasRows) -> Float? {
        biasRows.count = 0
        guard let side else {
            _ = list.append(table + e &* k)
            biasRows.append(biasTable + e, weight: 1, vector: true)
            return biasTable[e]
        }
        let c = side.c
        let entries = c.range(e)
        guard entries.count <= BiasRows.capacity else { return nil }
        var b: Float = 0
        for j in entries {
            let r = Int(c.rows[j]), w = c.weights[j], kind = c.kinds[r]
            if skipIds && kind == RowKind.id.rawValue { continue }
            let (row, bias) = side.row(r)
            b += w * bias.pointee
            let vector = kind != RowKind.biasOnly.rawValue
            if vector {
                guard w == 1, list.append(row) else { return nil }
            }
            biasRows.append(bias, weight: w, vector: vector)
        }
        return b
    }

    /// The bias half of `updateRows` over the rows `unitRows` listed (a plain side's own bias
    /// as `updateRow` at w = 1 steps it).
    @inline(__always)
    private func stepBiases(_ rows: BiasRows, g: Float) {
        for n in 0..<rows.count {
            let bias = rows.pointers[n], w = rows.weights[n]
            if rows.vector[n] {
                stepBias(bias, g: g, w: w)
            } else {
                bias.pointee += lr * (g * w - reg * abs(w) * bias.pointee)
            }
        }
    }

    /// A vector row's bias step, as `updateRow` makes it.
    @inline(__always)
    private func stepBias(_ bias: UnsafeMutablePointer<Float>, g: Float, w: Float) {
        let decay = lr * reg * abs(w), step = lr * g * w
        bias.pointee += step - decay * bias.pointee
    }

    /// A side's vector and bias for `entity`: composed into `scratch`, or its own row of a
    /// plain side's table.
    @inline(__always)
    private func vector(_ side: SideRows?, _ entity: Int, _ table: UnsafeMutablePointer<Float>,
                        _ biasTable: UnsafeMutablePointer<Float>, _ scratch: UnsafeMutablePointer<Float>,
                        skipIds: Bool) -> (UnsafeMutablePointer<Float>, Float) {
        guard let side else { return (table + entity &* k, biasTable[entity]) }
        return (scratch, side.compose(entity, into: scratch, skipIds: skipIds))
    }

    @inline(__always)
    private func prefetch(_ c: CompositionView?, _ table: UnsafeMutablePointer<Float>, _ e: Int) {
        if let c {
            if let r = c.firstRow(e) { Kernels.prefetch(table + r &* k, k) }
        } else {
            Kernels.prefetch(table + e &* k, k)
        }
    }

    @inline(__always)
    private func updateRows(_ side: SideRows, entity e: Int, other: UnsafePointer<Float>, g: Float, skipIds: Bool) {
        let c = side.c
        for j in c.range(e) {
            let r = Int(c.rows[j]), w = c.weights[j]
            let kind = c.kinds[r]
            if skipIds && kind == RowKind.id.rawValue { continue }
            let (row, bias) = side.row(r)
            if kind == RowKind.biasOnly.rawValue {
                if biases { bias.pointee += lr * (g * w - reg * abs(w) * bias.pointee) }
            } else {
                updateRow(row, bias: bias, other: other, g: g, w: w)
            }
        }
    }

    /// row += lr (g w other − λ |w| row), and its bias likewise.
    @inline(__always)
    private func updateRow(_ row: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>,
                           other: UnsafePointer<Float>, g: Float, w: Float) {
        let decay = lr * reg * abs(w), step = lr * g * w
        if biases { stepBias(bias, g: g, w: w) }
        let keep = 1 - decay
        let vKeep = SIMD8<Float>(repeating: keep), vStep = SIMD8<Float>(repeating: step)
        Kernels.elementwise(row, k) { j in Kernels.load8(row + j) * vKeep + vStep * Kernels.load8(other + j) }
            scalar: { j in row[j] * keep + step * other[j] }
        if nonNegative { Kernels.clampNonNegative(row, k) }
    }
}

/// One side's bias rows of a rating, as `FeatureSGDStep.unitRows` lists them: where each is,
/// its weight, and whether it belongs to a vector row (the two kinds' steps are written
/// differently, and each keeps its own rounding).
struct BiasRows {
    static let capacity = 16
    let pointers = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: BiasRows.capacity)
    let weights = UnsafeMutablePointer<Float>.allocate(capacity: BiasRows.capacity)
    let vector = UnsafeMutablePointer<Bool>.allocate(capacity: BiasRows.capacity)
    var count = 0

    @inline(__always)
    mutating func append(_ bias: UnsafeMutablePointer<Float>, weight: Float, vector isVector: Bool) {
        pointers[count] = bias
        weights[count] = weight
        vector[count] = isVector
        count &+= 1
    }

    func free() {
        pointers.deallocate()
        weights.deallocate()
        vector.deallocate()
    }
}

/// The feature rows of one side that a large share of the ratings reach, each given a slot in a
/// block's private copy (see `FeatureSGDStep`).
final class HotRows {
    /// Per parameter row: its slot, or -1 for a row that is not hot.
    let slots: Buffer<Int32>
    /// The hot rows, by slot.
    let rows: Buffer<Int32>

    /// A row is hot when at least 1/`share` of the ratings reach it; at most `limit` rows, the
    /// most reached first. Id rows are never hot (an entity's own row is as contended as in
    /// plain MF). Nil when no row is hot.
    /// `reached`: per row, the ratings that reach it (`Composition.ratingsReaching`) of
    /// `ratings` in all.
    static func find(_ c: Composition, reached: [Int], ratings: Int, share: Int = 200, limit: Int = 256) -> HotRows? {
        let bar = max(ratings / share, 1)
        let hot = (0..<c.nRows)
            .filter { reached[$0] >= bar && c.kinds[$0] != RowKind.id.rawValue }
            .sorted { reached[$0] > reached[$1] }
            .prefix(limit)
        guard !hot.isEmpty else { return nil }
        return HotRows(nRows: c.nRows, hot: Array(hot))
    }

    init(nRows: Int, hot: [Int]) {
        slots = Buffer(repeating: -1, count: nRows)
        rows = Buffer(repeating: 0, count: hot.count)
        for (s, r) in hot.enumerated() {
            slots[r] = Int32(s)
            rows[s] = Int32(r)
        }
    }

    var view: View { View(slots: slots.base, rows: rows.base, count: rows.count) }

    struct View: @unchecked Sendable {
        let slots: UnsafeMutablePointer<Int32>
        let rows: UnsafeMutablePointer<Int32>
        let count: Int
    }
}

/// One composed side's rows as a block of ratings reads and writes them: the shared tables,
/// with the hot rows redirected to the block's copies (made by `checkOut`, returned by
/// `checkIn`).
struct SideRows {
    let c: CompositionView
    let factors, biases: UnsafeMutablePointer<Float>
    let hot: HotRows.View?
    let k: Int
    /// The block's copies of the hot rows' vectors and biases, then the same again as they
    /// were at check-out.
    let copies: UnsafeMutablePointer<Float>?

    init(c: CompositionView, factors: UnsafeMutablePointer<Float>, biases: UnsafeMutablePointer<Float>,
         hot: HotRows.View?, k: Int) {
        self.c = c; self.factors = factors; self.biases = biases; self.hot = hot; self.k = k
        copies = hot.map { UnsafeMutablePointer<Float>.allocate(capacity: 2 * $0.count * (k + 1)) }
    }

    @inline(__always)
    func row(_ r: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        if let hot, let copies {
            let s = Int(hot.slots[r])
            if s >= 0 { return (copies + s &* k, copies + hot.count &* k + s) }
        }
        return (factors + r &* k, biases + r)
    }

    /// Writes entity e's vector (k entries) to `out` and returns its bias; `skipIds` leaves
    /// its id rows out.
    @inline(__always)
    func compose(_ e: Int, into out: UnsafeMutablePointer<Float>, skipIds: Bool) -> Float {
        var b: Float = 0
        var first = true  // the first vector row is written scaled, the others added
        for j in c.range(e) {
            let r = Int(c.rows[j]), w = c.weights[j], kind = c.kinds[r]
            if skipIds && kind == RowKind.id.rawValue { continue }
            let (row, bias) = self.row(r)
            b += w * bias.pointee
            if kind != RowKind.biasOnly.rawValue {
                if first {
                    let vw = SIMD8<Float>(repeating: w)
                    Kernels.elementwise(out, k) { i in vw * Kernels.load8(row + i) } scalar: { i in w * row[i] }
                    first = false
                } else {
                    Kernels.axpy(out, row, k, w)
                }
            }
        }
        if first { out.update(repeating: 0, count: k) }
        return b
    }

    /// Copies the hot rows into the block's copies: to work on, and, unless `exclusive` (the
    /// copies are then written back as they are), as they were.
    func checkOut(exclusive: Bool) {
        guard let hot, let copies else { return }
        let n = hot.count, stride = n * (k + 1)
        for s in 0..<n {
            let r = Int(hot.rows[s])
            (copies + s * k).update(from: factors + r * k, count: k)
            copies[n * k + s] = biases[r]
        }
        if !exclusive { (copies + stride).update(from: copies, count: stride) }
    }

    /// Returns the block's changes to the shared rows (`exclusive`: the copies as they are)
    /// and frees the copies.
    func checkIn(exclusive: Bool) {
        guard let hot, let copies else { return }
        let n = hot.count, before = copies + n * (k + 1)
        for s in 0..<n {
            let r = Int(hot.rows[s])
            let row = factors + r * k, mine = copies + s * k, old = before + s * k
            if exclusive {
                row.update(from: mine, count: k)
                biases[r] = copies[n * k + s]
            } else {
                for j in 0..<k { row[j] += mine[j] - old[j] }
                biases[r] += copies[n * k + s] - before[n * k + s]
            }
        }
        copies.deallocate()
    }
}

extension SGDTrainer {
    /// Trains `model`'s rows as parameter rows composed into users and items (either side may
    /// be plain). Before the first epoch; rows no rating reaches are cleared
    /// (`MFModel.clearUnreachedRows`).
    func useFeatures(users: Composition?, items: Composition?, idDropout: Float = 0) throws {
        self.idDropout = idDropout  // checked by makeFeatureTrainer
        guard epochsDone == 0 else { throw CoreError.invalid("features must be set before the first epoch") }
        guard !dropout.isActive else { throw CoreError.invalid("embedding dropout is not supported with user or item features") }
        features = (users, items)
        let reached = model.clearUnreachedRows(users: users, items: items, data: data)
        hotRows = (users.map { HotRows.find($0, reached: reached.users!, ratings: data.count) } ?? nil,
                   items.map { HotRows.find($0, reached: reached.items!, ratings: data.count) } ?? nil)
    }
}

extension MFModel {
    /// Before a hybrid model's first epoch: rows that no training rating reaches (a cold item's
    /// id row, a category only cold items have) are set to zero, as they never get a gradient
    /// and their random start would otherwise be noise in every entity made of them; bias-only
    /// rows' vectors are set to zero too (they are never read or trained). Returns, per composed
    /// side, the ratings reaching each row (`Composition.ratingsReaching`).
    func clearUnreachedRows(users: Composition?, items: Composition?, data: RatingSet) -> (users: [Int]?, items: [Int]?) {
        var out: [[Int]?] = []
        for (c, entities, factors, biases) in [(users, data.users, userFactors, userBias),
                                               (items, data.items, itemFactors, itemBias)] {
            guard let c else { out.append(nil); continue }
            let reached = c.ratingsReaching(UnsafeBufferPointer(entities.buffer))
            for r in 0..<c.nRows where reached[r] == 0 || c.kinds[r] == RowKind.biasOnly.rawValue {
                (factors.base + r * k).update(repeating: 0, count: k)
                if reached[r] == 0 { biases[r] = 0 }
            }
            out.append(reached)
        }
        return (out[0], out[1])
    }
}

/// A trainer (SGD or Adam) for the hybrid model: `model`'s tables are parameter rows, and the data's
/// user (item) indices are entities of `users` (`items`), or rows where that side is plain.
public func makeFeatureTrainer(model: MFModel, data: RatingSet, options: TrainOptions,
                               users: Composition?, items: Composition?, idDropout: Float = 0) throws -> Trainer {
    try options.validate()
    guard data.count > 0 else { throw CoreError.invalid("there are no training ratings") }
    guard idDropout.isFinite, idDropout >= 0, idDropout < 1 else {
        throw CoreError.invalid("id_dropout must be in [0, 1), got \(idDropout)")
    }
    guard users != nil || items != nil else {
        throw CoreError.invalid("a feature trainer needs a user or an item composition (or both); without either, "
                                + "train the plain model (embedrec_trainer_create_from)")
    }
    let nUsers = users?.count ?? model.config.nUsers, nItems = items?.count ?? model.config.nItems
    try model.checkCompositions(users: users, items: items)
    guard data.users.buffer.allSatisfy({ Int($0) < nUsers }), data.items.buffer.allSatisfy({ Int($0) < nItems }) else {
        throw CoreError.invalid("training ratings refer to users or items beyond the compositions")
    }
    try model.initialiseGlobalBias(from: data)
    switch options.optimizer {
    case .sgd:
        let trainer = SGDTrainer(model: model, data: data, options: options)
        try model.useGuard.withWriting { try trainer.useFeatures(users: users, items: items, idDropout: idDropout) }
        return trainer
    case .adam:
        return try model.useGuard.withWriting {
            try FeatureAdamTrainer(model: model, data: data, options: options, users: users, items: items,
                                   idDropout: idDropout)
        }
    }
}
