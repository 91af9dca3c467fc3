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

    /// `idDropout` in [0, 1), as `makeFeatureTrainer` checks.
    init(model: MFModel, data: RatingSet, options: TrainOptions, users: Composition?, items: Composition?,
         idDropout: Float) throws {
        self.model = model
        self.data = data
        self.options = options
        self.users = users
        self.items = items
        let k = model.k, batch = min(options.batchSize, data.count)
        self.batch = batch
        let threads = resolveThreads(options.threads, work: data.count * k, minPerThread: 2_000_000)
        // A batch reaches at most batch × (the most pairs an entity has; 1 on a plain side) rows'
        // pairs per side.
        let userPairs = batch * (users?.mostPairs ?? 1), itemPairs = batch * (items?.mostPairs ?? 1)
        let state = try FeatureAdamSide.bytes(rows: model.config.nUsers, k: k, pairs: userPairs, threads: threads)
            + FeatureAdamSide.bytes(rows: model.config.nItems, k: k, pairs: itemPairs, threads: threads)
        let scratch = try MemoryBudget.product([batch, 2 * k + 3, 4], what: "Adam scratch")
        try MemoryBudget.check(bytes: state + scratch, what: "Adam optimiser state")
        totalSteps = options.epochs * (data.count / batch + 1)
        rng = Xoshiro256(seed: options.seed ^ 0xADA3_5EED)
        team = WorkerTeam(size: threads)
        data.shuffle(using: &rng)
        idThreshold = UInt32((Double(idDropout) * 65536).rounded())
        idSeed = options.seed ^ 0x1D_D809
        _ = model.clearUnreachedRows(users: users, items: items, data: data)
        userState = FeatureAdamSide(composition: users, factors: model.userFactors.base, biases: model.userBias.base,
                                    rows: model.config.nUsers, k: k, threads: team.size, pairs: userPairs)
        itemState = FeatureAdamSide(composition: items, factors: model.itemFactors.base, biases: model.itemBias.base,
                                    rows: model.config.nItems, k: k, threads: team.size, pairs: itemPairs)
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
                if j &+ 8 < part.upperBound {  // the random rows of a rating a few ahead
                    if let r = userSide.firstRow(Int(us[lo + j &+ 8])) { Kernels.prefetch(userSide.factors + r &* k, k) }
                    if let r = itemSide.firstRow(Int(its[lo + j &+ 8])) { Kernels.prefetch(itemSide.factors + r &* k, k) }
                }
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
            let users = userSide.gather(owner: t, of: threads, entities: us + lo, count: count, skips: skips, skipBit: 1)
            let items = itemSide.gather(owner: t, of: threads, entities: its + lo, count: count, skips: skips, skipBit: 2)
            userSide.step(owner: t, touched: users, gradients: grads, others: pI, factors: factors, decay: decay,
                          biases: biases, nonNegative: m.config.nonNegative)
            itemSide.step(owner: t, touched: items, gradients: grads, others: pU, factors: factors, decay: decay,
                          biases: biases, nonNegative: m.config.nonNegative)
        }
        return (se, ae)
    }
}

/// One side of `FeatureAdamTrainer`: the side's parameter rows (the model's table and biases),
/// each row's Adam moments (a record of its first then second moments, factors then bias), and
/// per batch, per row, the list of the batch's (rating, weight) pairs that reach it.
///
/// Lists rather than a gradient table: a batch's user rows are random and mostly evicted from
/// the cache between the steps, and a gradient row per touched row was one more row to fetch
/// and write (twice: summed into, then read by the step). The step builds each row's gradient
/// from its list, on the stack, from the per-rating vectors the batch keeps in order. Rows
/// belong to threads in runs of 16 (`owner`): with rows dealt out one by one, neighbouring
/// rows of two threads shared cache lines of the factor table, and two threads were slower
/// than one.
private final class FeatureAdamSide: @unchecked Sendable {
    let c: CompositionView?
    /// Keeps the composition alive while its view is used.
    let composition: Composition?
    let factors, biases: UnsafeMutablePointer<Float>
    let k: Int
    /// Floats from one moments record to the next: 2 (k + 1) rounded up to whole 64-byte lines.
    let stride: Int
    private let moments: Buffer<Float>
    /// Per row: its first and last pair of the batch (-1: untouched), in its owner's pairs.
    private let head, tail: Buffer<Int32>
    /// Per thread (from t · capacity): the pairs of its rows (rating, weight, next pair of the
    /// same row or -1) and the rows it touched.
    private let pairRating, pairNext, touchedRows: Buffer<Int32>
    private let pairWeight: Buffer<Float>
    let capacity: Int

    init(composition: Composition?, factors: UnsafeMutablePointer<Float>, biases: UnsafeMutablePointer<Float>,
         rows: Int, k: Int, threads: Int, pairs: Int) {
        self.composition = composition
        c = composition?.view
        self.factors = factors; self.biases = biases; self.k = k
        stride = (2 * (k + 1) + 15) & ~15
        moments = Buffer(repeating: 0, count: rows * stride, hugePages: true)
        // From a cache line: a run of 16 rows' entries is one line, so threads share none.
        head = Buffer(repeating: -1, count: rows, hugePages: true)
        tail = Buffer(repeating: -1, count: rows, hugePages: true)
        capacity = max(pairs, 1)
        pairRating = Buffer(repeating: 0, count: capacity * threads)
        pairNext = Buffer(repeating: 0, count: capacity * threads)
        pairWeight = Buffer(repeating: 0, count: capacity * threads)
        touchedRows = Buffer(repeating: 0, count: capacity * threads)
    }

    /// Bytes of this side's optimiser state for `rows` rows and a batch's pairs.
    static func bytes(rows: Int, k: Int, pairs: Int, threads: Int) throws -> Int {
        let momentBytes = try MemoryBudget.product([rows, (2 * (k + 1) + 15) & ~15, 4], what: "Adam moments")
        return momentBytes + (try MemoryBudget.product([pairs, threads, 16], what: "Adam batch pairs")) + rows * 8
    }

    /// The thread that sums and steps row r: its run of 16 rows hashed (Fibonacci hashing)
    /// and scaled to the thread count: no division per pair, and a feature's consecutive rows
    /// spread over the threads.
    @inline(__always) static func owner(_ r: Int, of threads: Int) -> Int {
        let h = UInt32(truncatingIfNeeded: (r >> 4) &* 0x9E37_79B1)
        return Int((UInt64(h) &* UInt64(threads)) >> 32)
    }

    /// The row worth fetching ahead for entity e (its own, or its first: its id row).
    @inline(__always) func firstRow(_ e: Int) -> Int? { c == nil ? e : c!.firstRow(e) }

    /// Entity e's composed vector written to `out`, its bias returned (a plain side: its row).
    @inline(__always)
    func compose(_ e: Int, into out: UnsafeMutablePointer<Float>, skipIds: Bool) -> Float {
        guard let c else {
            out.update(from: factors + e &* k, count: k)
            return biases[e]
        }
        return SideRows(c: c, factors: factors, biases: biases, hot: nil, k: k).compose(e, into: out, skipIds: skipIds)
    }

    /// Lists, in batch order, the pairs of each rating's entity whose rows thread `t` owns;
    /// returns how many rows it touched.
    func gather(owner t: Int, of threads: Int, entities: UnsafePointer<Int32>, count: Int,
                skips: UnsafePointer<UInt8>, skipBit: UInt8) -> Int {
        let base = t &* capacity
        let ratingOf = pairRating.base + base, next = pairNext.base + base, weightOf = pairWeight.base + base
        let touched = touchedRows.base + base
        var pairs = 0, rows = 0
        @inline(__always) func add(_ r: Int, _ w: Float, _ j: Int) {
            ratingOf[pairs] = Int32(j)
            weightOf[pairs] = w
            next[pairs] = -1
            if head[r] < 0 {
                head[r] = Int32(pairs)
                touched[rows] = Int32(r)
                rows &+= 1
            } else {
                next[Int(tail[r])] = Int32(pairs)
            }
            tail[r] = Int32(pairs)
            pairs &+= 1
        }
        for j in 0..<count {
            let e = Int(entities[j])
            guard let c else {
                if Self.owner(e, of: threads) == t { add(e, 1, j) }
                continue
            }
            let skip = skips[j] & skipBit != 0
            for p in c.range(e) {
                let r = Int(c.rows[p])
                guard Self.owner(r, of: threads) == t else { continue }
                if skip && c.kinds[r] == RowKind.id.rawValue { continue }
                add(r, c.weights[p], j)
            }
        }
        return rows
    }

    /// Adam on the `touched` rows thread `t` gathered: each row's gradient Σ g_j w (v_j, 1) over
    /// its pairs, in batch order, and its L2 weight Σ |w|. A bias-only row steps its bias alone;
    /// `biases` false leaves every bias as it is.
    func step(owner t: Int, touched count: Int, gradients g: UnsafePointer<Float>, others: UnsafePointer<Float>,
              factors f: Adam.Factors, decay: Float, biases withBiases: Bool, nonNegative: Bool) {
        let base = t &* capacity
        let ratingOf = pairRating.base + base, next = pairNext.base + base, weightOf = pairWeight.base + base
        let touched = touchedRows.base + base
        withUnsafeTemporaryAllocation(of: Float.self, capacity: k + 1) { scratch in
            let grad = scratch.baseAddress!
            for s in 0..<count {
                if s &+ 3 < count {
                    let ahead = Int(touched[s &+ 3])
                    Kernels.prefetch(factors + ahead &* k, k)
                    Kernels.prefetchL2(moments.base + ahead &* stride, 2 &* (k &+ 1))
                }
                let r = Int(touched[s])
                let vector = c?.kinds[r] != RowKind.biasOnly.rawValue
                grad.update(repeating: 0, count: k + 1)
                var reach: Float = 0
                var p = Int(head[r])
                head[r] = -1
                while p >= 0 {
                    let j = Int(ratingOf[p]), w = weightOf[p], gw = g[j] * w
                    if vector { Kernels.axpy(grad, others + j &* k, k, gw) }
                    grad[k] += gw
                    reach += abs(w)
                    p = Int(next[p])
                }
                let l2 = decay * reach, m1 = moments.base + r &* stride, m2 = m1 + (k + 1)
                if vector {
                    Adam.stepRow(factors + r &* k, m1, m2, grad, k, f, decay: l2)
                    if nonNegative { Kernels.clampNonNegative(factors + r &* k, k) }
                }
                if withBiases { Adam.stepRow(biases + r, m1 + k, m2 + k, grad + k, 1, f, decay: l2) }
            }
        }
    }
}
