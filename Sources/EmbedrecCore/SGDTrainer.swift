/// Classic per-rating SGD (Funk / Surprise / LIBMF), on a fresh shuffle every epoch.
///
/// With more than one thread the shuffled order is cut into contiguous chunks run at once
/// without locks (Hogwild): two threads rarely touch the same row at the same moment, and
/// when they do the lost update is harmless noise. Results then vary slightly between runs;
/// one thread (or data too small to split) gives identical results for a seed.
final class SGDTrainer: Trainer {
    let model: MFModel
    let data: RatingSet
    let options: TrainOptions
    let cancel = CancelFlag()
    let progress = EpochProgress()
    private(set) var epochsDone = 0
    private let order: Buffer<Int32>
    private var rng: Xoshiro256

    init(model: MFModel, data: RatingSet, options: TrainOptions) {
        self.model = model
        self.data = data
        self.options = options
        order = Buffer(repeating: 0, count: data.count)
        for r in 0..<data.count { order[r] = Int32(truncatingIfNeeded: r) }
        rng = Xoshiro256(seed: options.seed ^ 0x5EED_5EED)
    }

    func runEpoch() throws -> EpochStats {
        try model.useGuard.withWriting { try runEpochLocked() }
    }

    private func runEpochLocked() throws -> EpochStats {
        let start = monotonicSeconds()
        rng.shuffle(order.buffer)
        let n = data.count
        let threads = resolveThreads(options.threads, work: n, minPerThread: 200_000)
        let lr = options.learningRate(step: epochsDone, totalSteps: options.epochs)
        let reg = options.weightDecay
        let partial = Buffer<Double>(repeating: 0, count: 3 * threads)
        progress.start(total: n)
        let m = model, d = data, ord = order, cancel = self.cancel, progress = self.progress
        let k = m.k, biases = m.config.biases, nonNegative = m.config.nonNegative
        let ptrs = UncheckedSendable((m.userFactors.base, m.itemFactors.base, m.userBias.base, m.itemBias.base,
                                     d.users.base, d.items.base, d.ratings.base, ord.base, partial.base))
        parallelChunks(count: n, chunks: threads) { c, range in
            let (P, Q, bu, bi, us, its, rs, o, out) = ptrs.value
            var se = 0.0, ae = 0.0
            var r = range.lowerBound
            var reportedLoss = 0.0, reportedAt = range.lowerBound
            while r < range.upperBound {
                let stop = min(r + cancelPollInterval, range.upperBound)
                if cancel.isSet { break }
                progress.add(r - reportedAt, loss: se - reportedLoss)
                reportedLoss = se
                reportedAt = r
                while r < stop {
                    let idx = Int(o[r])
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
                    r &+= 1
                }
            }
            progress.add(r - reportedAt, loss: se - reportedLoss)
            out[3 * c] = se
            out[3 * c + 1] = ae
            out[3 * c + 2] = Double(r - range.lowerBound)
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
