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
final class SGDTrainer: Trainer {
    let model: MFModel
    let data: RatingSet
    let options: TrainOptions
    let cancel = CancelFlag()
    let progress = EpochProgress()
    private(set) var epochsDone = 0
    private var rng: Xoshiro256
    static let blockSize = 1024
    /// The epoch's visiting order of blocks (block b = ratings b*blockSize ..< (b+1)*blockSize).
    private let blockOrder: Buffer<Int32>

    init(model: MFModel, data: RatingSet, options: TrainOptions) {
        self.model = model
        self.options = options
        rng = Xoshiro256(seed: options.seed ^ 0x5EED_5EED)
        let permutation = Buffer<Int32>(repeating: 0, count: data.count)
        for r in 0..<data.count { permutation[r] = Int32(truncatingIfNeeded: r) }
        rng.shuffle(permutation.buffer)
        self.data = RatingSet(permuting: data, by: permutation)
        let blocks = (data.count + SGDTrainer.blockSize - 1) / SGDTrainer.blockSize
        blockOrder = Buffer(repeating: 0, count: blocks)
        for b in 0..<blocks { blockOrder[b] = Int32(b) }
    }

    func runEpoch() throws -> EpochStats {
        try model.useGuard.withWriting { try runEpochLocked() }
    }

    private func runEpochLocked() throws -> EpochStats {
        let start = monotonicSeconds()
        rng.shuffle(blockOrder.buffer)
        let n = data.count, size = SGDTrainer.blockSize, blocks = blockOrder.count
        let threads = resolveThreads(options.threads, work: n, minPerThread: 200_000)
        let lr = options.learningRate(step: epochsDone, totalSteps: options.epochs)
        let reg = options.weightDecay
        let partial = Buffer<Double>(repeating: 0, count: 3 * threads)
        progress.start(total: n)
        let m = model, cancel = self.cancel, progress = self.progress
        let k = m.k, biases = m.config.biases, nonNegative = m.config.nonNegative
        let ptrs = UncheckedSendable((m.userFactors.base, m.itemFactors.base, m.userBias.base, m.itemBias.base,
                                     data.users.base, data.items.base, data.ratings.base, blockOrder.base, partial.base))
        parallelChunks(count: blocks, chunks: threads) { c, blockRange in
            let (P, Q, bu, bi, us, its, rs, order, out) = ptrs.value
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
                for idx in lo..<hi {
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
                done += hi - lo
            }
            progress.add(done - reportedDone, loss: se - reportedLoss)
            out[3 * c] = se
            out[3 * c + 1] = ae
            out[3 * c + 2] = Double(done)
        }
        if cancel.isSet {
            throw CoreError(.cancelled, "training was interrupted")
        }
        var se = 0.0, ae = 0.0, count = 0.0
        for c in 0..<threads { se += partial[3 * c]; ae += partial[3 * c + 1]; count += partial[3 * c + 2] }
        epochsDone += 1
        return EpochStats(loss: se / max(count, 1), mae: ae / max(count, 1), seconds: monotonicSeconds() - start)
    }
}
