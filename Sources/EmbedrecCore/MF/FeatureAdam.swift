/// Mini-batch Adam for the hybrid model (`FeatureSGDStep` has the model and the SGD update): a
/// user's (item's) vector and bias are the weighted sum of its parameter rows, and a batch's
/// gradient on row r is Σ_j g_j · w_rj · v_j over the batch's ratings j that reach r (g_j the
/// rating's gradient on its raw score, w_rj the row's weight in the rating's entity, v_j the
/// other side's composed vector), plus the L2 term λ · Σ_j |w_rj| · row_r; the bias likewise
/// without v_j. So a model whose entities are each their own row alone trains as
/// `AdamTrainer` does (the same objective, the same lazy, row-wise Adam), and bias-only rows
/// (numeric features' linear terms) train their bias alone.
///
/// Two parallel steps per batch, as in `AdamTrainer`. (1) Over ratings: each rating's composed
/// vectors, prediction and gradient on the raw score, kept per rating. (2) Over rows: row r
/// belongs to thread r mod T, which walks the whole batch in order, adds the gradient of every
/// rating that reaches one of its rows, then steps its touched rows with Adam. No row is
/// written by two threads (a category in most ratings is summed by one), and every row's sum
/// runs in batch order whatever T is, so results are identical for any number of threads.
///
/// Unlike `AdamTrainer` the rows stay in the model's tables with moments beside them: a hybrid
/// entity is several rows, not one record, so records would not save the fetches they save
/// there. Embedding dropout is refused, as with SGD; id dropout leaves a rating's id rows out
/// of its entities, in both steps, by the same hash as SGD's.
final class FeatureAdamTrainer: Trainer {
    let model: MFModel
    let data: RatingSet
    var nUsers: Int { users?.count ?? model.config.nUsers }
    let options: TrainOptions
    let cancel = CancelFlag()
    let progress = EpochProgress()
    private(set) var epochsDone = 0
    private var step = 0
    private let totalSteps: Int
    private let batch: Int
    private var rng: Xoshiro256
    private let team: WorkerTeam
    /// The compositions (nil: a plain side, each entity its own row).
    let users, items: Composition?
    /// Id dropout as `FeatureSGDStep` draws it: rate · 2^16, and the hash key.
    private let idThreshold: UInt32
    private let idSeed: UInt64
    /// Each side's Adam state and batch gradients.
    private let userState, itemState: FeatureAdamSide
    /// Per rating of a batch: its user's and its item's composed vector (batch × k each).
    private let composedU, composedI: Buffer<Float>
    /// Per rating of a batch: its gradient on the raw score, its error, and which sides leave
    /// their id rows out (bit 0 the user's, bit 1 the item's).
    private let ratingGradient, ratingError: Buffer<Float>
    private let skipIds: Buffer<UInt8>

    init(model: MFModel, data: RatingSet, options: TrainOptions, users: Composition?, items: Composition?,
         idDropout: Float) throws {
        guard idDropout.isFinite, idDropout >= 0, idDropout < 1 else {
            throw CoreError.invalid("id_dropout must be in [0, 1), got \(idDropout)")
        }
        self.model = model
        self.data = data
        self.options = options
        self.users = users
        self.items = items
        let k = model.k, batch = min(options.batchSize, data.count)
        self.batch = batch
        let rows = model.config.nUsers + model.config.nItems
        let state = try MemoryBudget.product([rows, k + 1, 3 * 4], what: "Adam moments and gradients")
        let scratch = try MemoryBudget.product([batch, 2 * k + 3, 4], what: "Adam scratch")
        try MemoryBudget.check(bytes: state + scratch, what: "Adam optimiser state")
        totalSteps = options.epochs * (data.count / batch + 1)
        rng = Xoshiro256(seed: options.seed ^ 0xADA3_5EED)
        team = WorkerTeam(size: resolveThreads(options.threads, work: data.count * k, minPerThread: 2_000_000))
        data.shuffle(using: &rng)
        idThreshold = UInt32((Double(idDropout) * 65536).rounded())
        idSeed = options.seed ^ 0x1D_D809
        _ = model.clearUnreachedRows(users: users, items: items, data: data)
        userState = FeatureAdamSide(composition: users, factors: model.userFactors.base, biases: model.userBias.base,
                                    rows: model.config.nUsers, k: k, threads: team.size)
        itemState = FeatureAdamSide(composition: items, factors: model.itemFactors.base, biases: model.itemBias.base,
                                    rows: model.config.nItems, k: k, threads: team.size)
        composedU = Buffer(repeating: 0, count: batch * k)
        composedI = Buffer(repeating: 0, count: batch * k)
        ratingGradient = Buffer(repeating: 0, count: batch)
        ratingError = Buffer(repeating: 0, count: batch)
        skipIds = Buffer(repeating: 0, count: batch)
    }

    deinit { team.shutdown() }

    func useEmbeddingDropout(_ dropout: EmbeddingDropout) throws {
        if dropout.isActive { throw CoreError.invalid("embedding dropout is not supported with user or item features") }
    }

    func runEpoch() throws -> EpochStats {
        try model.useGuard.withWriting { try runEpochLocked() }
    }

    private func runEpochLocked() throws -> EpochStats {
        let start = monotonicSeconds()
        progress.start(total: data.count)
        var se = 0.0, ae = 0.0, seen = 0
        var sinceCheck = cancelPollInterval
        // Id dropout's hash key changes every epoch, as SGD's does.
        let idKey = DropoutMask.key(seed: idSeed, node: epochsDone)
        for range in AdamTrainer.epochBatches(count: data.count, batch: batch, rng: &rng) {
            if sinceCheck >= cancelPollInterval {
                if cancel.isSet { throw CoreError(.cancelled, "training was interrupted") }
                sinceCheck = 0
            }
            let (s, a) = runBatch(range, idKey: idKey)
            se += s; ae += a; seen += range.count; sinceCheck += range.count
            progress.add(range.count, loss: s)
        }
        epochsDone += 1
        return EpochStats(loss: se / Double(max(seen, 1)), mae: ae / Double(max(seen, 1)), seconds: monotonicSeconds() - start)
    }

    private func runBatch(_ range: Range<Int>, idKey: UInt64) -> (Double, Double) {
        let m = model, k = m.k, threads = team.size, count = range.count, lo = range.lowerBound
        let us = data.users.base, its = data.items.base, rs = data.ratings.base
        let pU = composedU.base, pI = composedI.base
        let grads = ratingGradient.base, errors = ratingError.base, skips = skipIds.base
        let userSide = userState, itemSide = itemState
        let scale = 1 / Float(count), threshold = idThreshold, biases = m.config.biases
        team.run { t in
            let part = (count * t / threads)..<(count * (t + 1) / threads)
            for j in part {
                var skip: UInt8 = 0
                if threshold > 0 {
                    let h = DropoutMask.key(seed: idKey, node: lo + j)
                    if UInt32(truncatingIfNeeded: h & 0xFFFF) < threshold { skip |= 1 }
                    if UInt32(truncatingIfNeeded: (h >> 16) & 0xFFFF) < threshold { skip |= 2 }
                }
                skips[j] = skip
                let p = pU + j &* k, q = pI + j &* k
                let bUser = userSide.compose(Int(us[lo + j]), into: p, skipIds: skip & 1 != 0)
                let bItem = itemSide.compose(Int(its[lo + j]), into: q, skipIds: skip & 2 != 0)
                var raw = m.globalBias + Kernels.dot(p, q, k)
                if biases { raw += bUser + bItem }
                let (pred, dRaw) = m.lossGradient(raw: raw, rating: rs[lo + j])
                errors[j] = pred - rs[lo + j]
                grads[j] = 2 * dRaw * scale  // gradient of the batch's mean squared error
            }
        }
        step += 1
        let factors = Adam.Factors(lr: options.learningRate(step: step - 1, totalSteps: totalSteps), step: step)
        let decay = 2 * options.weightDecay * scale
        var se = 0.0, ae = 0.0
        team.run { t in
            if t == threads - 1 {
                for j in 0..<count {
                    let e = Double(errors[j])
                    se += e * e
                    ae += abs(e)
                }
            }
            userSide.accumulate(owner: t, of: threads, entities: us + lo, count: count, gradients: grads,
                                others: pI, skips: skips, skipBit: 1)
            itemSide.accumulate(owner: t, of: threads, entities: its + lo, count: count, gradients: grads,
                                others: pU, skips: skips, skipBit: 2)
            userSide.step(owner: t, factors: factors, decay: decay, biases: biases, nonNegative: m.config.nonNegative)
            itemSide.step(owner: t, factors: factors, decay: decay, biases: biases, nonNegative: m.config.nonNegative)
        }
        return (se, ae)
    }
}

/// One side of `FeatureAdamTrainer`: the side's parameter rows (the model's table and biases),
/// their Adam moments, and a batch's gradient sums with the list of rows each thread touched.
/// Per row, moments and gradients hold k factor entries then the bias: (k + 1) floats.
private final class FeatureAdamSide: @unchecked Sendable {
    let c: CompositionView?
    /// Keeps the composition alive while its view is used.
    let owner: Composition?
    let factors, biases: UnsafeMutablePointer<Float>
    let k: Int
    let firstMoments, secondMoments, gradients: Buffer<Float>
    /// Per row: the sum of |w| over the batch's ratings reaching it (the L2 term's weight).
    let reach: Buffer<Float>
    /// Per row: whether the batch has touched it yet.
    let touched: Buffer<UInt8>
    /// Per thread: the rows it touched this batch (thread t's at t · perThread).
    let touchedRows: Buffer<Int32>
    let touchedCount: Buffer<Int>
    let perThread: Int

    init(composition: Composition?, factors: UnsafeMutablePointer<Float>, biases: UnsafeMutablePointer<Float>,
         rows: Int, k: Int, threads: Int) {
        owner = composition
        c = composition?.view
        self.factors = factors; self.biases = biases; self.k = k
        firstMoments = Buffer(repeating: 0, count: rows * (k + 1), hugePages: true)
        secondMoments = Buffer(repeating: 0, count: rows * (k + 1), hugePages: true)
        gradients = Buffer(repeating: 0, count: rows * (k + 1), hugePages: true)
        reach = Buffer(repeating: 0, count: rows)
        touched = Buffer(repeating: 0, count: rows)
        perThread = rows / threads + 1
        touchedRows = Buffer(repeating: 0, count: perThread * threads)
        touchedCount = Buffer(repeating: 0, count: threads)
    }

    /// Entity e's composed vector written to `out`, its bias returned (a plain side: its row).
    @inline(__always)
    func compose(_ e: Int, into out: UnsafeMutablePointer<Float>, skipIds: Bool) -> Float {
        guard let c else {
            out.update(from: factors + e &* k, count: k)
            return biases[e]
        }
        return SideRows(c: c, factors: factors, biases: biases, hot: nil, k: k).compose(e, into: out, skipIds: skipIds)
    }

    /// Adds, in batch order, each rating's gradient to the rows of its entity that `owner`
    /// steps (row r mod threads == owner).
    func accumulate(owner t: Int, of threads: Int, entities: UnsafePointer<Int32>, count: Int,
                    gradients g: UnsafePointer<Float>, others: UnsafePointer<Float>,
                    skips: UnsafePointer<UInt8>, skipBit: UInt8) {
        for j in 0..<count {
            let e = Int(entities[j]), other = others + j &* k
            guard let c else {
                if e % threads == t { add(row: e, weight: 1, gradient: g[j], other: other, vector: true, owner: t) }
                continue
            }
            let skip = skips[j] & skipBit != 0
            for p in c.range(e) {
                let r = Int(c.rows[p])
                guard r % threads == t else { continue }
                let kind = c.kinds[r]
                if skip && kind == RowKind.id.rawValue { continue }
                add(row: r, weight: c.weights[p], gradient: g[j], other: other,
                    vector: kind != RowKind.biasOnly.rawValue, owner: t)
            }
        }
    }

    @inline(__always)
    private func add(row r: Int, weight w: Float, gradient g: Float, other: UnsafePointer<Float>, vector: Bool, owner t: Int) {
        let gk = k + 1, grad = gradients.base + r &* gk
        if touched[r] == 0 {
            touched[r] = 1
            touchedRows[t &* perThread &+ touchedCount[t]] = Int32(r)
            touchedCount[t] += 1
            grad.update(repeating: 0, count: gk)
            reach[r] = 0
        }
        let gw = g * w
        if vector { Kernels.axpy(grad, other, k, gw) }
        grad[k] += gw
        reach[r] += abs(w)
    }

    /// Adam on the rows `owner` touched this batch, then clears its list. A bias-only row steps
    /// its bias alone; `biases` false leaves every bias as it is.
    func step(owner t: Int, factors f: Adam.Factors, decay: Float, biases withBiases: Bool, nonNegative: Bool) {
        let gk = k + 1
        for s in 0..<touchedCount[t] {
            let r = Int(touchedRows[t &* perThread &+ s])
            touched[r] = 0
            let l2 = decay * reach[r], at = r &* gk
            let m1 = firstMoments.base + at, m2 = secondMoments.base + at, grad = gradients.base + at
            if c?.kinds[r] != RowKind.biasOnly.rawValue {
                Adam.stepRow(factors + r &* k, m1, m2, grad, k, f, decay: l2)
                if nonNegative { Kernels.clampNonNegative(factors + r &* k, k) }
            }
            if withBiases { Adam.stepRow(biases + r, m1 + k, m2 + k, grad + k, 1, f, decay: l2) }
        }
        touchedCount[t] = 0
    }
}
