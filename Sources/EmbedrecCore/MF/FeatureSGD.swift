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
/// The feature rows are few and shared by many entities, so they stay in cache; what an epoch
/// costs over plain MF is composing each side (a few row reads) and writing its rows back.
struct FeatureSGDStep: RatingStep, @unchecked Sendable {
    let m: MFModel
    let P, Q, bu, bi: UnsafeMutablePointer<Float>
    let us, its: UnsafeMutablePointer<Int32>
    let rs: UnsafeMutablePointer<Float>
    let users, items: CompositionView?
    /// Keeps the compositions alive while the views are used.
    let owners: (Composition?, Composition?)
    let lr, reg: Float
    let k: Int
    let biases, nonNegative: Bool
    /// Id dropout: a rating leaves a side's id rows out when 16 bits of a hash of (key,
    /// rating position) fall below this (rate · 2^16; 0: never).
    let idThreshold: UInt32
    let idKey: UInt64

    init(model: MFModel, data: RatingSet, users: Composition?, items: Composition?, lr: Float, reg: Float,
         idDropout: Float = 0, seed: UInt64 = 0, epoch: Int = 0) {
        m = model
        P = model.userFactors.base; Q = model.itemFactors.base
        bu = model.userBias.base; bi = model.itemBias.base
        us = data.users.base; its = data.items.base; rs = data.ratings.base
        self.users = users?.view; self.items = items?.view
        owners = (users, items)
        self.lr = lr; self.reg = reg
        k = model.k
        biases = model.config.biases; nonNegative = model.config.nonNegative
        idThreshold = UInt32((Double(idDropout) * 65536).rounded())
        idKey = DropoutMask.key(seed: seed ^ 0x1D_D809, node: epoch)
    }

    func run(_ range: Range<Int>) -> (Double, Double) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * k) { scratch in
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
                // Each side's vector: its own row, or composed into scratch.
                let p: UnsafeMutablePointer<Float>, q: UnsafeMutablePointer<Float>
                var bUser: Float, bItem: Float
                if let users {
                    bUser = users.compose(u, factors: P, biases: bu, k: k, into: userScratch, skipIds: skipUserIds)
                    p = userScratch
                } else {
                    p = P + u &* k
                    bUser = bu[u]
                }
                if let items {
                    bItem = items.compose(i, factors: Q, biases: bi, k: k, into: itemScratch, skipIds: skipItemIds)
                    q = itemScratch
                } else {
                    q = Q + i &* k
                    bItem = bi[i]
                }
                var raw = m.globalBias + Kernels.dot(p, q, k)
                if biases { raw += bUser + bItem }
                let (pred, dRaw) = m.lossGradient(raw: raw, rating: rs[idx])
                let e = rs[idx] - pred
                se += Double(e * e)
                ae += Double(abs(e))
                let g = -dRaw
                // Composed sides first: they read the other side's vector before it moves
                // (a plain side's row is updated last, from the composed side's scratch copy).
                if let users { updateRows(users, entity: u, factors: P, biases: bu, other: q, g: g, skipIds: skipUserIds) }
                if let items { updateRows(items, entity: i, factors: Q, biases: bi, other: p, g: g, skipIds: skipItemIds) }
                if users == nil && items == nil {
                    if biases {
                        bu[u] += lr * (g - reg * bu[u])
                        bi[i] += lr * (g - reg * bi[i])
                    }
                    Kernels.sgdPairUpdate(p, q, k, g: g, lr: lr, reg: reg)
                    if nonNegative {
                        Kernels.clampNonNegative(p, k)
                        Kernels.clampNonNegative(q, k)
                    }
                } else if users == nil {
                    updateRow(P + u &* k, bias: bu + u, other: q, g: g, w: 1)
                } else if items == nil {
                    updateRow(Q + i &* k, bias: bi + i, other: p, g: g, w: 1)
                }
            }
            return (se, ae)
        }
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
    private func updateRows(_ c: CompositionView, entity e: Int, factors: UnsafeMutablePointer<Float>,
                            biases: UnsafeMutablePointer<Float>, other: UnsafePointer<Float>, g: Float, skipIds: Bool) {
        for j in c.range(e) {
            let r = Int(c.rows[j]), w = c.weights[j]
            let kind = c.kinds[r]
            if skipIds && kind == RowKind.id.rawValue { continue }
            if kind == RowKind.biasOnly.rawValue {
                if self.biases { biases[r] += lr * (g * w - reg * abs(w) * biases[r]) }
            } else {
                updateRow(factors + r &* k, bias: biases + r, other: other, g: g, w: w)
            }
        }
    }

    /// row += lr (g w other − λ |w| row), and its bias likewise.
    @inline(__always)
    private func updateRow(_ row: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>,
                           other: UnsafePointer<Float>, g: Float, w: Float) {
        let decay = lr * reg * abs(w), step = lr * g * w
        if biases { bias.pointee += step - decay * bias.pointee }
        let keep = 1 - decay
        let vKeep = SIMD8<Float>(repeating: keep), vStep = SIMD8<Float>(repeating: step)
        Kernels.elementwise(row, k) { j in Kernels.load8(row + j) * vKeep + vStep * Kernels.load8(other + j) }
            scalar: { j in row[j] * keep + step * other[j] }
        if nonNegative { Kernels.clampNonNegative(row, k) }
    }
}

extension SGDTrainer {
    /// Trains `model`'s rows as parameter rows composed into users and items (either side may
    /// be plain). Before the first epoch. Rows that no training rating reaches (a cold item's id
    /// row, a category only cold items have) are set to zero: they never get a gradient, and
    /// their random start would otherwise be noise in every entity made of them. Bias-only
    /// rows' vectors are set to zero too (they are never read or trained).
    func useFeatures(users: Composition?, items: Composition?, idDropout: Float = 0) throws {
        guard idDropout.isFinite, idDropout >= 0, idDropout < 1 else {
            throw CoreError.invalid("id_dropout must be in [0, 1), got \(idDropout)")
        }
        self.idDropout = idDropout
        guard epochsDone == 0 else { throw CoreError.invalid("features must be set before the first epoch") }
        guard !dropout.isActive else { throw CoreError.invalid("embedding dropout is not supported with user or item features") }
        features = (users, items)
        for (c, factors, biases) in [(users, model.userFactors, model.userBias), (items, model.itemFactors, model.itemBias)] {
            guard let c else { continue }
            var reached = [Bool](repeating: false, count: c.nRows)
            c.markRows(of: UnsafeBufferPointer(c === users ? data.users.buffer : data.items.buffer), in: &reached)
            for r in 0..<c.nRows where !reached[r] || c.kinds[r] == RowKind.biasOnly.rawValue {
                (factors.base + r * model.k).update(repeating: 0, count: model.k)
                if !reached[r] { biases[r] = 0 }
            }
        }
    }
}

/// An SGD trainer for the hybrid model: `model`'s tables are parameter rows, and the data's
/// user (item) indices are entities of `users` (`items`), or rows where that side is plain.
public func makeFeatureTrainer(model: MFModel, data: RatingSet, options: TrainOptions,
                               users: Composition?, items: Composition?, idDropout: Float = 0) throws -> Trainer {
    try options.validate()
    guard options.optimizer == .sgd else {
        throw CoreError.invalid("user and item features train with SGD (optimizer='sgd'); Adam does not support them yet")
    }
    guard data.count > 0 else { throw CoreError.invalid("there are no training ratings") }
    let nUsers = users?.count ?? model.config.nUsers, nItems = items?.count ?? model.config.nItems
    for (side, c, rows) in [("user", users, model.config.nUsers), ("item", items, model.config.nItems)] {
        if let c, c.nRows != rows {
            throw CoreError.invalid("the \(side) composition indexes \(c.nRows) rows, but the model has \(rows)")
        }
    }
    guard data.users.buffer.allSatisfy({ Int($0) < nUsers }), data.items.buffer.allSatisfy({ Int($0) < nItems }) else {
        throw CoreError.invalid("training ratings refer to users or items beyond the compositions")
    }
    try model.initialiseGlobalBias(from: data)
    let trainer = SGDTrainer(model: model, data: data, options: options)
    try model.useGuard.withWriting { try trainer.useFeatures(users: users, items: items, idDropout: idDropout) }
    return trainer
}
