/// Classic per-rating SGD (Funk / Surprise / LIBMF).
///
/// Order: the ratings are shuffled once, physically, when the trainer is made; each epoch then
/// visits blocks of `blockSize` consecutive ratings in a fresh random block order. The rating
/// arrays are so read sequentially (a random permutation per epoch cost a cache miss per array
/// per rating, and made an epoch 2-4x slower) while the visiting order still changes every
/// epoch; accuracy on the benchmarks did not change.
///
/// Threads: with more than one thread the shuffled block list is cut into contiguous runs
/// processed at once without locks (Hogwild): two threads rarely touch the same row at the same
/// moment, and when they do the lost update is harmless noise. Results then vary slightly
/// between runs; one thread (or data too small to split) gives identical results for a seed.
public final class SGDTrainer: Trainer {
    public let model: MFModel
    public let data: RatingSet
    /// Users of the training data: the model's user rows, or the entities of a user composition.
    public var nUsers: Int { features?.users?.count ?? model.config.nUsers }
    /// Learning rate and weight decay may change between epochs (`setRates`).
    public internal(set) var options: TrainOptions
    public let cancel = CancelFlag()
    /// Set by `useBlockSchedule`: the deterministic multi-threaded schedule.
    public var grid: BlockGrid?
    /// Per-side embedding dropout (none by default); set before the first epoch.
    public var dropout = EmbeddingDropout.none
    /// Set by `useFeatures`: the model's rows are parameter rows, and each rating's user and
    /// item are composed from them (`FeatureSGDStep`).
    public internal(set) var features: (users: Composition?, items: Composition?)?
    /// With features: the probability that a rating leaves a side's id rows out (`FeatureSGDStep`).
    public internal(set) var idDropout: Float = 0
    /// With features: each composed side's hot rows (`FeatureSGDStep`).
    var hotRows: (users: HotRows?, items: HotRows?) = (nil, nil)
    /// With features: whether ratings whose sides are a few rows of weight 1 take the two-pass
    /// step (`UnitRows`). Off in tests only, which check it changes no bit.
    var fusesUnitRows = true

    public func useEmbeddingDropout(_ dropout: EmbeddingDropout) throws {
        if features != nil && dropout.isActive {
            throw CoreError.invalid("embedding dropout is not supported with user or item features")
        }
        self.dropout = dropout
    }
    public let progress = EpochProgress()
    public var epochsDone = 0
    var rng: Xoshiro256
    static let blockSize = 1024
    /// The epoch's visiting order of blocks (block b = ratings b*blockSize ..< (b+1)*blockSize)
    /// of the training part (all but the held-out tail, `holdOut`).
    var blockOrder: Buffer<Int32>
    /// The last `heldOut` ratings of the shuffled data are not trained on (`holdOut`).
    public internal(set) var heldOut = 0
    /// The ratings epochs train on: the first `trainingCount` of `data`.
    public var trainingCount: Int { data.count - heldOut }

    init(model: MFModel, data: RatingSet, options: TrainOptions) {
        self.model = model
        self.options = options
        rng = Xoshiro256(seed: options.seed ^ 0x5EED_5EED)
        // The trainer owns `data` (the C layer copied it for this run): shuffle it in place.
        data.shuffle(using: &rng)
        self.data = data
        blockOrder = SGDTrainer.blocks(covering: data.count)
    }

    /// Block indices 0, 1, ... of `count` ratings cut into `blockSize` runs.
    static func blocks(covering count: Int) -> Buffer<Int32> {
        let blocks = (count + blockSize - 1) / blockSize
        let order = Buffer<Int32>(repeating: 0, count: blocks)
        for b in 0..<blocks { order[b] = Int32(b) }
        return order
    }

    public func runEpoch() throws -> EpochStats {
        try model.useGuard.withWriting { try runEpochLocked() }
    }

    private func runEpochLocked() throws -> EpochStats {
        let start = monotonicSeconds()
        rng.shuffle(blockOrder.buffer)
        let n = trainingCount
        let threads = resolveThreads(options.threads, work: n, minPerThread: 200_000)
        let lr = options.learningRate(step: epochsDone, totalSteps: options.epochs)
        let reg = options.weightDecay
        let partial = Buffer<Double>(repeating: 0, count: 3 * threads)
        progress.start(total: n)
        if let grid {
            return try runGridEpoch(grid, start: start, lr: lr)
        }
        if let features {
            let step = FeatureSGDStep(model: model, data: data, users: features.users, items: features.items,
                                      lr: lr, reg: reg, hot: hotRows, exclusive: threads == 1,
                                      idDropout: idDropout, seed: options.seed, epoch: epochsDone,
                                      fusesUnitRows: fusesUnitRows)
            runBlocks(step, threads: threads, partial: partial)
        } else {
            let step = SGDStep(model: model, data: data, lr: lr, reg: reg,
                               dropout: dropout.keyed(seed: options.seed, epoch: epochsDone))
            runBlocks(step, threads: threads, partial: partial)
        }
        if cancel.isSet {
            throw CoreError(.cancelled, "training was interrupted")
        }
        var se = 0.0, ae = 0.0, count = 0.0
        for c in 0..<threads { se += partial[3 * c]; ae += partial[3 * c + 1]; count += partial[3 * c + 2] }
        epochsDone += 1
        return EpochStats(loss: se / max(count, 1), mae: ae / max(count, 1), seconds: monotonicSeconds() - start)
    }

    /// One epoch's visit of the shuffled blocks by `threads` threads (Hogwild), each block run
    /// by `step`; per-thread sums of squared error, absolute error and count go to `partial`.
    private func runBlocks<Step: RatingStep>(_ step: Step, threads: Int, partial: Buffer<Double>) {
        let n = trainingCount, size = SGDTrainer.blockSize, blocks = blockOrder.count
        let cancel = self.cancel, progress = self.progress
        let ptrs = UncheckedSendable((blockOrder.base, partial.base))
        parallelChunks(count: blocks, chunks: threads) { c, blockRange in
            let (order, out) = ptrs.value
            var se = 0.0, ae = 0.0, done = 0
            var reportedLoss = 0.0, reportedDone = 0
            for position in blockRange {
                // Look at the cancel flag and publish progress every few blocks.
                if (position - blockRange.lowerBound) % 8 == 0 {
                    if cancel.isSet { break }
                    progress.add(done - reportedDone, loss: se - reportedLoss)
                    reportedLoss = se
                    reportedDone = done
                }
                let lo = Int(order[position]) * size, hi = min(lo + size, n)
                let (blockSE, blockAE) = step.run(lo..<hi)
                se += blockSE
                ae += blockAE
                done += hi - lo
            }
            progress.add(done - reportedDone, loss: se - reportedLoss)
            out[3 * c] = se
            out[3 * c + 1] = ae
            out[3 * c + 2] = Double(done)
        }
    }
}

/// One pass of an SGD update over a range of the trainer's (already ordered) ratings; returns
/// the range's sums of squared and absolute errors.
protocol RatingStep: Sendable {
    func run(_ range: Range<Int>) -> (Double, Double)
}

/// The update both schedules apply to a plain model (each entity its own row).
struct SGDStep: RatingStep, @unchecked Sendable {
    let m: MFModel
    let P, Q, bu, bi: UnsafeMutablePointer<Float>
    let us, its: UnsafeMutablePointer<Int32>
    let rs: UnsafeMutablePointer<Float>
    let lr, reg: Float
    let k: Int
    let biases, nonNegative: Bool
    let dropout: EmbeddingDropout

    init(model: MFModel, data: RatingSet, lr: Float, reg: Float, dropout: EmbeddingDropout = .none) {
        m = model
        P = model.userFactors.base; Q = model.itemFactors.base
        bu = model.userBias.base; bi = model.itemBias.base
        us = data.users.base; its = data.items.base; rs = data.ratings.base
        self.lr = lr; self.reg = reg
        k = model.k
        biases = model.config.biases; nonNegative = model.config.nonNegative
        self.dropout = dropout
    }

    @inline(__always)
    func run(_ range: Range<Int>) -> (Double, Double) {
        if dropout.isActive { return runDropped(range) }
        var se = 0.0, ae = 0.0
        for idx in range {
            if idx &+ 8 < range.upperBound {  // the rows of a rating a few ahead: random reads
                Kernels.prefetch(P + Int(us[idx &+ 8]) &* k, k)
                Kernels.prefetch(Q + Int(its[idx &+ 8]) &* k, k)
            }
            let u = Int(us[idx]), i = Int(its[idx])
            let p = P + u &* k, q = Q + i &* k
            var raw = m.globalBias + Kernels.dot(p, q, k)
            if biases { raw += bu[u] + bi[i] }
            let (pred, dRaw) = m.lossGradient(raw: raw, rating: rs[idx])
            let e = rs[idx] - pred
            se += Double(e * e)
            ae += Double(abs(e))
            let g = -dRaw  // descent direction on the raw score
            if biases {
                bu[u] += lr * (g - reg * bu[u])
                bi[i] += lr * (g - reg * bi[i])
            }
            Kernels.sgdPairUpdate(p, q, k, g: g, lr: lr, reg: reg)
            if nonNegative {
                Kernels.clampNonNegative(p, k)
                Kernels.clampNonNegative(q, k)
            }
        }
        return (se, ae)
    }
}

extension SGDStep {
    /// `run` with embedding dropout: the same update, with the rating's combined mask c on the
    /// dot product (Σ c_j p_j q_j) and on both rows' gradients; the L2 term acts on the rows
    /// themselves. A separate loop, so that training without dropout is untouched.
    func runDropped(_ range: Range<Int>) -> (Double, Double) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: EmbeddingDropout.scratchCount(k: k)) { scratch in
            let c = scratch.baseAddress!
            var se = 0.0, ae = 0.0
            for idx in range {
                let u = Int(us[idx]), i = Int(its[idx])
                let p = P + u &* k, q = Q + i &* k
                dropout.combinedMask(c, k: k, position: idx)
                var dot: Float = 0
                for j in 0..<k { dot += c[j] * p[j] * q[j] }
                var raw = m.globalBias + dot
                if biases { raw += bu[u] + bi[i] }
                let (pred, dRaw) = m.lossGradient(raw: raw, rating: rs[idx])
                let e = rs[idx] - pred
                se += Double(e * e)
                ae += Double(abs(e))
                let g = -dRaw
                if biases {
                    bu[u] += lr * (g - reg * bu[u])
                    bi[i] += lr * (g - reg * bi[i])
                }
                for j in 0..<k {
                    let pu = p[j], qi = q[j], gc = g * c[j]
                    p[j] = pu + lr * (gc * qi - reg * pu)
                    q[j] = qi + lr * (gc * pu - reg * qi)
                }
                if nonNegative {
                    Kernels.clampNonNegative(p, k)
                    Kernels.clampNonNegative(q, k)
                }
            }
            return (se, ae)
        }
    }
}

/// The deterministic schedule: users and items cut into T bands each, the ratings sorted into
/// the T × T blocks they fall in. In round s of an epoch, thread t runs block
/// (t, (t + s) mod T): the blocks of one round share no user and no item, so no update can
/// race and the result depends only on the seed and T, never on thread timing.
public final class BlockGrid {
    let bands: Int
    /// Ratings of block b are starts[b] ..< starts[b + 1] (in the trainer's data order).
    let starts: [Int]

    init(bands: Int, starts: [Int]) {
        self.bands = bands
        self.starts = starts
    }
}

extension SGDTrainer {
    /// Switches to the deterministic block schedule for `threads` threads (no-op for one), over
    /// the training part of the data (the held-out tail stays where it is).
    public func useBlockSchedule(threads requested: Int) {
        let t = resolveThreads(requested, work: trainingCount, minPerThread: 200_000)
        guard t > 1 else { grid = nil; return }
        let nu = model.config.nUsers, ni = model.config.nItems, n = trainingCount
        func block(_ r: Int) -> Int {
            (Int(data.users[r]) * t / nu) * t + Int(data.items[r]) * t / ni
        }
        var counts = [Int](repeating: 0, count: t * t + 1)
        for r in 0..<n { counts[block(r) + 1] += 1 }
        for b in 0..<(t * t) { counts[b + 1] += counts[b] }
        // Sorted into the blocks in place (American flag sort): cursor[b] is the next unplaced
        // position of block b; whatever sits there is swapped to the cursor of its own block.
        // No second copy of the ratings is made (a permuted copy would double the data's memory).
        var cursor = Array(counts.prefix(t * t))
        let us = data.users, its = data.items, rs = data.ratings
        for b in 0..<(t * t) {
            while cursor[b] < counts[b + 1] {
                let r = cursor[b], c = block(r)
                if c != b {
                    let j = cursor[c]
                    (us[r], us[j]) = (us[j], us[r])
                    (its[r], its[j]) = (its[j], its[r])
                    (rs[r], rs[j]) = (rs[j], rs[r])
                }
                cursor[c] += 1
            }
        }
        grid = BlockGrid(bands: t, starts: counts)
    }

    func runGridEpoch(_ grid: BlockGrid, start: Double, lr: Float) throws -> EpochStats {
        let t = grid.bands, size = SGDTrainer.blockSize
        var rounds = (0..<t).map { Int32($0) }
        rounds.withUnsafeMutableBufferPointer { rng.shuffle($0) }
        // Each block's chunks of `size` ratings, in an order drawn here, before any thread runs.
        var chunkOrders: [[Int32]] = []
        for b in 0..<(t * t) {
            let chunks = (grid.starts[b + 1] - grid.starts[b] + size - 1) / size
            var order = (0..<chunks).map { Int32($0) }
            order.withUnsafeMutableBufferPointer { rng.shuffle($0) }
            chunkOrders.append(order)
        }
        progress.start(total: trainingCount)
        let step = SGDStep(model: model, data: data, lr: lr, reg: options.weightDecay,
                           dropout: dropout.keyed(seed: options.seed, epoch: epochsDone))
        var sums = [Double](repeating: 0, count: 3 * t)
        let cancel = self.cancel, progress = self.progress
        for s in rounds {
            sums.withUnsafeMutableBufferPointer { out in
                let box = UncheckedSendable((out.baseAddress!, chunkOrders))
                parallelChunks(count: t, chunks: t) { thread, _ in
                    let (sumsOut, orders) = box.value
                    let b = thread * t + (thread + Int(s)) % t
                    let lo = grid.starts[b], hi = grid.starts[b + 1]
                    var se = 0.0, ae = 0.0, done = 0
                    for chunk in orders[b] {
                        if cancel.isSet { break }
                        let a = lo + Int(chunk) * size
                        let (cse, cae) = step.run(a..<min(a + size, hi))
                        se += cse; ae += cae
                        done += min(a + size, hi) - a
                        progress.add(min(a + size, hi) - a, loss: cse)
                    }
                    sumsOut[3 * thread] += se
                    sumsOut[3 * thread + 1] += ae
                    sumsOut[3 * thread + 2] += Double(done)
                }
            }
            if cancel.isSet { throw CoreError(.cancelled, "training was interrupted") }
        }
        var se = 0.0, ae = 0.0, count = 0.0
        for c in 0..<t { se += sums[3 * c]; ae += sums[3 * c + 1]; count += sums[3 * c + 2] }
        epochsDone += 1
        return EpochStats(loss: se / max(count, 1), mae: ae / max(count, 1), seconds: monotonicSeconds() - start)
    }
}
