import CEmbedrecShims

/// Mini-batch Adam with sparse ("lazy") row updates, as TensorFlow's LazyAdam and PyTorch's
/// SparseAdam do: only the embedding rows a batch touches get their moments and values
/// updated, so an epoch costs O(ratings · k), never O(table size · batches).
///
/// The gradient of a batch is the mean over its ratings of the squared-error gradient plus the
/// per-rating L2 term, computed from the weights as they were before the batch. Gradients are
/// kept per rating in a scratch area of batch size × (k + 1) and summed per touched row there, not in
/// full-size tables. The rows train in the trainer's own records (`Records`: a row's factors,
/// bias and moments together), copied into the model after every epoch.
final class AdamTrainer: Trainer {
    let model: MFModel
    public let data: RatingSet
    public var nUsers: Int { model.config.nUsers }
    let options: TrainOptions
    let cancel = CancelFlag()
    let progress = EpochProgress()
    private(set) var epochsDone = 0
    private var step = 0
    private let totalSteps: Int
    private let batch: Int
    private var rng: Xoshiro256
    /// Threads of each batch's parallel phases (kept awake between batches).
    private let team: WorkerTeam

    /// Each user's and each item's whole training state, one record per row (see `Records`).
    let userRecords, itemRecords: Records
    /// The batch's distinct users and items, and each rating's slots among them.
    private let userRows, itemRows: BatchRows
    /// Per rating of the batch (batch × (k + 1)): its gradient on its user's row and on its
    /// item's row, factors then bias, as the records lay them out; a row's total gathers in its
    /// first rating's.
    private let gradU, gradI: Buffer<Float>
    /// Per rating of the batch: its error.
    private let ratingError: Buffer<Float>
    /// Per rating of the batch: the thread that computes its error (see `AdamBatchUpdate`).
    /// 16 bits: `n_threads` may be up to 1,024.
    private let ratingThread: Buffer<UInt16>

    /// Per-side embedding dropout (none by default); set before the first epoch.
    var dropout = EmbeddingDropout.none

    func useEmbeddingDropout(_ dropout: EmbeddingDropout) throws { self.dropout = dropout }

    init(model: MFModel, data: RatingSet, options: TrainOptions) throws {
        self.model = model
        self.data = data
        self.options = options
        let batch = min(options.batchSize, data.count)
        self.batch = batch
        let k = model.k
        let scratch = try MemoryBudget.product([batch, k + 1], what: "Adam scratch")
        let moments = try MemoryBudget.product([model.config.nUsers + model.config.nItems, Records.stride(k: k), 4], what: "Adam moments")
        try MemoryBudget.check(bytes: moments + scratch * 8, what: "Adam optimiser state")
        // One batch more than n / batch: each epoch's batches start at a random offset.
        totalSteps = options.epochs * (data.count / batch + 1)
        rng = Xoshiro256(seed: options.seed ^ 0xADA3_5EED)
        team = WorkerTeam(size: resolveThreads(options.threads, work: data.count * k, minPerThread: 2_000_000))
        // The trainer owns `data`: shuffled once, in place, then read in contiguous batches.
        data.shuffle(using: &rng)
        let nu = model.config.nUsers, ni = model.config.nItems
        userRecords = Records(rows: nu, k: k)
        itemRecords = Records(rows: ni, k: k)
        userRecords.load(factors: model.userFactors.base, biases: model.userBias.base)
        itemRecords.load(factors: model.itemFactors.base, biases: model.itemBias.base)
        userRows = BatchRows(rows: nu, capacity: batch)
        itemRows = BatchRows(rows: ni, capacity: batch)
        gradU = Buffer(repeating: 0, count: scratch); gradI = Buffer(repeating: 0, count: scratch)
        ratingError = Buffer(repeating: 0, count: batch)
        ratingThread = Buffer(repeating: 0, count: batch)
    }

    func runEpoch() throws -> EpochStats {
        try model.useGuard.withWriting { try runEpochLocked() }
    }

    deinit { team.shutdown() }

    /// The epoch's batches: contiguous ranges of the shuffled data whose boundaries start at a
    /// random offset (so a batch's members change from epoch to epoch without reshuffling the
    /// data, which would cost a cache miss per rating), visited in random order.
    private func epochBatches() -> [Range<Int>] { AdamTrainer.epochBatches(count: data.count, batch: batch, rng: &rng) }

    /// `epochBatches` of `n` ratings in batches of `batch` (shared with `FeatureAdamTrainer`).
    static func epochBatches(count n: Int, batch: Int, rng: inout Xoshiro256) -> [Range<Int>] {
        let offset = batch < n ? rng.nextIndex(below: batch) : 0
        var ranges: [Range<Int>] = offset > 0 ? [0..<offset] : []
        var lo = offset
        while lo < n {
            ranges.append(lo..<min(lo + batch, n))
            lo += batch
        }
        ranges.withUnsafeMutableBufferPointer { rng.shuffle($0) }
        return ranges
    }

    private func runEpochLocked() throws -> EpochStats {
        let start = monotonicSeconds()
        defer { storeRecords() }  // also after an interruption: the model holds every step taken
        let n = data.count
        let threads = team.size
        progress.start(total: n)
        var se = 0.0, ae = 0.0, seen = 0
        var sinceCheck = cancelPollInterval  // look at the flag before the first batch too
        let batches = epochBatches()
        for (b, range) in batches.enumerated() {
            if sinceCheck >= cancelPollInterval {
                if cancel.isSet { throw CoreError(.cancelled, "training was interrupted") }
                sinceCheck = 0
            }
            let (s, a) = runBatch(range, next: b + 1 < batches.count ? batches[b + 1] : 0..<0, threads: threads)
            se += s; ae += a; seen += range.count; sinceCheck += range.count
            progress.add(range.count, loss: s)
        }
        epochsDone += 1
        return EpochStats(loss: se / Double(max(seen, 1)), mae: ae / Double(max(seen, 1)), seconds: monotonicSeconds() - start)
    }

    /// Copies the trained factors and biases from the records into the model, each thread a
    /// share of the rows.
    private func storeRecords() {
        let m = model, users = userRecords, items = itemRecords, threads = team.size
        team.run { t in
            users.store(factors: m.userFactors.base, biases: m.userBias.base,
                        rows: (users.rows * t / threads)..<(users.rows * (t + 1) / threads))
            items.store(factors: m.itemFactors.base, biases: m.itemBias.base,
                        rows: (items.rows * t / threads)..<(items.rows * (t + 1) / threads))
        }
    }

    /// One Adam step on the ratings in `range`; returns (sum of squared errors, sum of |errors|).
    ///
    /// Two parallel steps. (1) Over ratings, each thread taking a contiguous part of the batch:
    /// each rating's error, its gradient on the raw score, and its gradients on its user's and
    /// its item's rows, written in the rating's own row of `gradU` / `gradI` while the rows are
    /// in cache; meanwhile one thread gives the batch's distinct users their slots and another
    /// its items. (2) Over rows, each owned by the thread of its first rating: the owner adds a
    /// row's later ratings' gradients to its first rating's, in batch order (most users have
    /// one rating in a batch and need nothing), then steps it with Adam. Step 2 reads only
    /// what step 1 wrote, so no weight moves before every gradient is known, and one thread
    /// never waits for another between summing and stepping. Every row's sum runs in the same
    /// order whatever the thread count, so results are identical for any number of threads.
    /// During step 2 each thread also fetches into its core's L2 the records of the ratings it
    /// will take in the next batch's step 1 (`NextBatchFetch`): step 1 mostly waits for user
    /// records, step 2 mostly for Adam's divider, so the waits move under the arithmetic.
    ///
    /// Owning rows by first rating (rather than by slot number) keeps most rows on the core that
    /// read them in step 1. Stepping the rows that only one rating touches (most users) right in
    /// step 1 instead, while they are in cache, was slower: step 2's loop over rows keeps more
    /// rows' lines in flight than step 1's loop over ratings, whose Adam arithmetic then sits
    /// between one rating's loads and the next. (Measurements: docs/performance.md.)
    private func runBatch(_ range: Range<Int>, next: Range<Int>, threads: Int) -> (Double, Double) {
        let m = model
        let us = data.users.base, its = data.items.base, rs = data.ratings.base
        let count = range.count, lo = range.lowerBound
        let scale = 1 / Float(count)
        let errOut = ratingError.base
        let gU = gradU.base, gI = gradI.base
        let users = userRows, items = itemRows
        let owners = ratingThread.base
        let userRecords = userRecords, itemRecords = itemRecords, k = m.k, g0 = m.globalBias
        let bias = k, gk = k + 1  // the bias follows the factors, in records and in gradients
        let drop = dropout.keyed(seed: options.seed, epoch: epochsDone)
        team.run { t in
            // The batch's distinct users and items get their slots on two threads at once
            // (serially, they were a tenth of the epoch); step 2 needs them.
            if t == 0 { users.assign(us + lo, count: count) }
            if t == 1 % threads { items.assign(its + lo, count: count) }
            let part = AdamTrainer.partStart(t, of: threads, count: count)..<AdamTrainer.partStart(t + 1, of: threads, count: count)
            (owners + part.lowerBound).update(repeating: UInt16(t), count: part.count)  // each thread marks its own part
            @inline(__always) func fetch(_ j: Int) {
                let u = userRecords.record(Int(us[lo + j])), i = itemRecords.record(Int(its[lo + j]))
                Kernels.prefetch(u, gk)
                Kernels.prefetch(i, gk)
                Kernels.prefetchL2(u + userRecords.firstMoments, 2 &* gk)
            }
            for j in part.prefix(8) { fetch(j) }  // the part's first ratings, which no rating before fetched
            if drop.isActive {
                // With embedding dropout: the rating's combined mask c on the dot product and
                // on both gradients (see `EmbeddingDropout`), in a loop of its own.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: EmbeddingDropout.scratchCount(k: k)) { scratch in
                    let c = scratch.baseAddress!
                    for j in part {
                        let p = userRecords.record(Int(us[lo + j])), q = itemRecords.record(Int(its[lo + j]))
                        drop.combinedMask(c, k: k, position: lo + j)
                        var dot: Float = 0
                        for e in 0..<k { dot += c[e] * p[e] * q[e] }
                        var raw = g0
                        raw += p[bias]
                        raw += q[bias]
                        raw += dot
                        let (pred, dRaw) = m.lossGradient(raw: raw, rating: rs[lo + j])
                        errOut[j] = pred - rs[lo + j]
                        let g = 2 * dRaw * scale
                        for e in 0..<k {
                            let gc = g * c[e]
                            gU[j &* gk &+ e] = gc * q[e]
                            gI[j &* gk &+ e] = gc * p[e]
                        }
                        gU[j &* gk &+ k] = g
                        gI[j &* gk &+ k] = g
                    }
                }
                return
            }
            for j in part {
                if j + 8 < part.upperBound {
                    // Records of a rating a few ahead, usually in L2 already (the batch before
                    // fetched them): the factors and biases this step reads into L1, and the
                    // user's moments into L2 for step 2 (the items' are fetched by step 2
                    // itself). Fetching whole records into L1 here was 2% slower: more lines
                    // than L1 has misses in flight.
                    fetch(j + 8)
                }
                let p = userRecords.record(Int(us[lo + j])), q = itemRecords.record(Int(its[lo + j]))
                // The model's rawScore, term by term in the same order, from the records.
                var raw = g0
                raw += p[bias]
                raw += q[bias]
                raw += Kernels.dot(p, q, k)
                let (pred, dRaw) = m.lossGradient(raw: raw, rating: rs[lo + j])
                errOut[j] = pred - rs[lo + j]
                let g = 2 * dRaw * scale  // gradient of the batch's mean squared error
                Kernels.scale(gU + j &* gk, q, k, g, accumulate: false)
                Kernels.scale(gI + j &* gk, p, k, g, accumulate: false)
                gU[j &* gk &+ k] = g  // on the biases
                gI[j &* gk &+ k] = g
            }
        }
        step += 1
        let update = AdamBatchUpdate(trainer: self, decay: 2 * options.weightDecay * scale,
                                     lr: options.learningRate(step: step - 1, totalSteps: totalSteps), step: step)
        var se = 0.0, ae = 0.0
        team.run { t in
            if t == threads - 1 {  // the batch's loss, in rating order, on the thread with the fewest rows
                for j in 0..<count {
                    let e = Double(errOut[j])
                    se += e * e
                    ae += abs(e)
                }
            }
            let nextPart = AdamTrainer.partStart(t, of: threads, count: next.count)..<AdamTrainer.partStart(t + 1, of: threads, count: next.count)
            var ahead = NextBatchFetch(users: userRecords, items: itemRecords, userIds: us + next.lowerBound,
                                       itemIds: its + next.lowerBound, part: nextPart)
            update.sum(owner: t)
            update.apply(owner: t, of: threads, ahead: &ahead)
            while ahead.fetchOne() {}
        }
        return (se, ae)
    }

    /// Where thread t's part of a batch of `count` ratings starts in step 1 (t = threads: the
    /// end). Thread 0's part is 8% shorter than an even share, the rest split evenly: step 2
    /// gives each row to the thread of its first rating, and the first rating of a row that
    /// several ratings share (a popular item) falls in the batch's first part more often than
    /// not, so thread 0 stepped the most rows. Shorter, it finishes step 1 early and step 2
    /// about with the others. Which thread steps a row does not change the result.
    @inline(__always)
    static func partStart(_ t: Int, of threads: Int, count: Int) -> Int {
        if t <= 0 { return 0 }
        if t >= threads { return count }
        let first = count * 46 / (50 * threads)
        return first + (count - first) * (t - 1) / (threads - 1)
    }

    /// The next batch's records that a thread reads in its part of step 1, fetched into its
    /// core's L2 cache during step 2 of the batch before: two ratings' records after each row
    /// the thread steps, the rest when its rows are done. A user's whole record (step 2 steps
    /// it too), an item's factors and bias. Only a hint to the cache: no value depends on it.
    struct NextBatchFetch {
        let users, items: Records
        let userIds, itemIds: UnsafeMutablePointer<Int32>
        var j: Int
        let end: Int

        init(users: Records, items: Records, userIds: UnsafeMutablePointer<Int32>, itemIds: UnsafeMutablePointer<Int32>, part: Range<Int>) {
            self.users = users; self.items = items
            self.userIds = userIds; self.itemIds = itemIds
            j = part.lowerBound; end = part.upperBound
        }

        /// Fetches one rating's user record and item factors and bias; false when none are left.
        @inline(__always)
        mutating func fetchOne() -> Bool {
            guard j < end else { return false }
            Kernels.prefetchL2(users.record(Int(userIds[j])), users.stride)
            Kernels.prefetchL2(items.record(Int(itemIds[j])), items.firstMoments)  // all before the moments
            j &+= 1
            return true
        }
    }

    /// Step 2 of a batch for the rows one thread owns: gradients of rows with several ratings
    /// summed, then Adam.
    private struct AdamBatchUpdate: @unchecked Sendable {
        let t: AdamTrainer
        let decay: Float
        let factors: Adam.Factors
        let ratingThread: UnsafeMutablePointer<UInt16>
        /// How many of its rows ahead a thread prefetches.
        static let ahead = 4

        init(trainer: AdamTrainer, decay: Float, lr: Float, step: Int) {
            t = trainer
            ratingThread = trainer.ratingThread.base
            self.decay = decay
            factors = Adam.Factors(lr: lr, step: step)
        }

        /// Adds each owned row's later ratings' gradients (factors and bias) to its first
        /// rating's, in batch order. Rows with one rating are left as they are. (The L2 term is
        /// added once per row in `apply`, times the row's count of ratings.)
        func sum(owner: Int) {
            sum(owner: owner, t.userRows, t.gradU.base)
            sum(owner: owner, t.itemRows, t.gradI.base)
        }

        private func sum(owner: Int, _ rows: BatchRows, _ grads: UnsafeMutablePointer<Float>) {
            let gk = t.model.k + 1, width = trained
            let slots = rows.slotOfExample.base, firsts = rows.firstExample.base
            let repeats = rows.repeats.base
            for r in 0..<rows.repeatCount {
                let j = Int(repeats[r]), first = Int(firsts[Int(slots[j])])
                guard thread(ofRating: first) == owner else { continue }
                Kernels.axpy(grads + first &* gk, grads + j &* gk, width, 1)
            }
        }

        /// Entries of a row that Adam steps: its k factors, and its bias when the model has
        /// biases (the record's entry after the factors).
        private var trained: Int { t.model.k + (t.model.config.biases ? 1 : 0) }

        func apply(owner: Int, of owners: Int, ahead: inout NextBatchFetch) {
            apply(owner: owner, of: owners, t.userRows, t.userRecords, t.gradU.base, ahead: &ahead)
            apply(owner: owner, of: owners, t.itemRows, t.itemRecords, t.gradI.base, ahead: &ahead)
        }

        /// Adam on the rows of one table that `owner` steps: each row's factors and bias at
        /// once (the bias is the row's entry k in the record, its moments' and its gradient's).
        private func apply(owner: Int, of owners: Int, _ rows: BatchRows, _ records: Records,
                           _ grads: UnsafeMutablePointer<Float>, ahead next: inout NextBatchFetch) {
            let m = t.model, k = m.k, gk = k + 1, width = trained, nonNegative = m.config.nonNegative
            let ahead = Self.ahead * owners
            let n = rows.count, touched = rows.touched.base, counts = rows.occurrences.base, firsts = rows.firstExample.base
            let m1 = records.firstMoments, m2 = records.secondMoments
            for s in 0..<n {
                if s + ahead < n, thread(ofRating: Int(firsts[s + ahead])) == owner {
                    Kernels.prefetch(records.record(Int(touched[s + ahead])), records.stride)
                }
                let first = Int(firsts[s])
                guard thread(ofRating: first) == owner else { continue }
                let r = records.record(Int(touched[s])), l2 = decay * Float(counts[s])
                Adam.stepRow(r, r + m1, r + m2, grads + first &* gk, width, factors, decay: l2)
                if nonNegative { Kernels.clampNonNegative(r, k) }
                _ = next.fetchOne(); _ = next.fetchOne()
            }
        }

        /// The thread that computed rating j's error. A row's gradient sum and Adam step run on
        /// the thread of its first rating: that thread has just read the row and written its
        /// gradient, so both are in its core's cache, and most users have one rating in a batch.
        @inline(__always)
        private func thread(ofRating j: Int) -> Int { Int(ratingThread[j]) }
    }
}
