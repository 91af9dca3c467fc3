/// Mini-batch Adam with sparse ("lazy") row updates, as TensorFlow's LazyAdam and PyTorch's
/// SparseAdam do: only the embedding rows a batch touches get their moments and values
/// updated, so an epoch costs O(ratings · k), never O(table size · batches).
///
/// The gradient of a batch is the mean over its ratings of the squared-error gradient plus the
/// per-rating L2 term, computed from the weights as they were before the batch. Gradients are
/// gathered per touched row in a scratch area of batch size × k, not in full-size tables.
final class AdamTrainer: Trainer {
    let model: MFModel
    let data: RatingSet
    let options: TrainOptions
    let cancel = CancelFlag()
    let progress = EpochProgress()
    private(set) var epochsDone = 0
    private var step = 0
    /// Stamp of the current batch. It runs on across epochs: a per-epoch number would make a row
    /// touched by the same-numbered batch of an earlier epoch look touched already.
    private var batchStamp: Int32 = -1
    private let totalSteps: Int
    private let order: Buffer<Int32>
    private var rng: Xoshiro256

    // Optimiser moments, one per parameter.
    private let mU, vU, mI, vI, mBU, vBU, mBI, vBI: Buffer<Float>
    // Per-batch scratch: which slot a row occupies (valid when its stamp is the batch number).
    private let stampU, slotU, stampI, slotI: Buffer<Int32>
    private let touchedU, touchedI: Buffer<Int32>
    private let gradU, gradI, gradBU, gradBI: Buffer<Float>

    static let beta1: Float = 0.9, beta2: Float = 0.99, epsilon: Float = 1e-5

    init(model: MFModel, data: RatingSet, options: TrainOptions) throws {
        self.model = model
        self.data = data
        self.options = options
        let batch = min(options.batchSize, data.count)
        let k = model.k
        let scratch = try MemoryBudget.product([batch, k], what: "Adam scratch")
        let moments = try MemoryBudget.product([model.userFactors.count + model.itemFactors.count, 2 * 4], what: "Adam moments")
        try MemoryBudget.check(bytes: moments + scratch * 8, what: "Adam optimiser state")
        totalSteps = options.epochs * ((data.count + batch - 1) / batch)
        order = Buffer(repeating: 0, count: data.count)
        for r in 0..<data.count { order[r] = Int32(truncatingIfNeeded: r) }
        rng = Xoshiro256(seed: options.seed ^ 0xADA3_5EED)
        let nu = model.config.nUsers, ni = model.config.nItems
        mU = Buffer(repeating: 0, count: model.userFactors.count); vU = Buffer(repeating: 0, count: model.userFactors.count)
        mI = Buffer(repeating: 0, count: model.itemFactors.count); vI = Buffer(repeating: 0, count: model.itemFactors.count)
        mBU = Buffer(repeating: 0, count: nu); vBU = Buffer(repeating: 0, count: nu)
        mBI = Buffer(repeating: 0, count: ni); vBI = Buffer(repeating: 0, count: ni)
        stampU = Buffer(repeating: -1, count: nu); slotU = Buffer(repeating: 0, count: nu)
        stampI = Buffer(repeating: -1, count: ni); slotI = Buffer(repeating: 0, count: ni)
        touchedU = Buffer(repeating: 0, count: batch); touchedI = Buffer(repeating: 0, count: batch)
        gradU = Buffer(repeating: 0, count: scratch); gradI = Buffer(repeating: 0, count: scratch)
        gradBU = Buffer(repeating: 0, count: batch); gradBI = Buffer(repeating: 0, count: batch)
    }

    func runEpoch() throws -> EpochStats {
        try model.useGuard.withWriting { try runEpochLocked() }
    }

    private func runEpochLocked() throws -> EpochStats {
        let start = monotonicSeconds()
        rng.shuffle(order.buffer)
        let n = data.count, batch = min(options.batchSize, n)
        progress.start(total: n)
        var se = 0.0, ae = 0.0, seen = 0
        var lo = 0
        var sinceCheck = cancelPollInterval  // look at the flag before the first batch too
        while lo < n {
            if sinceCheck >= cancelPollInterval {
                if cancel.isSet { throw CoreError(.cancelled, "training was interrupted") }
                sinceCheck = 0
            }
            let hi = min(lo + batch, n)
            let (s, a) = runBatch(lo..<hi, stamp: nextBatchStamp())
            se += s; ae += a; seen += hi - lo; sinceCheck += hi - lo
            progress.add(hi - lo, loss: s)
            lo = hi
        }
        epochsDone += 1
        return EpochStats(loss: se / Double(max(seen, 1)), mae: ae / Double(max(seen, 1)), seconds: monotonicSeconds() - start)
    }

    private func nextBatchStamp() -> Int32 {
        if batchStamp == Int32.max {  // after 2^31 batches: forget every stamp and start over
            stampU.base.update(repeating: -1, count: stampU.count)
            stampI.base.update(repeating: -1, count: stampI.count)
            batchStamp = -1
        }
        batchStamp += 1
        return batchStamp
    }

    /// One Adam step on ratings order[range]; returns (sum of squared errors, sum of |errors|).
    private func runBatch(_ range: Range<Int>, stamp: Int32) -> (Double, Double) {
        let m = model, k = m.k, biases = m.config.biases
        let P = m.userFactors.base, Q = m.itemFactors.base
        let us = data.users.base, its = data.items.base, rs = data.ratings.base
        let scale = 1 / Float(range.count)
        let decay = 2 * options.weightDecay * scale
        var nU = 0, nI = 0
        var se = 0.0, ae = 0.0
        for r in range {
            let idx = Int(order[r])
            let u = Int(us[idx]), i = Int(its[idx])
            if stampU[u] != stamp {
                stampU[u] = stamp; slotU[u] = Int32(nU); touchedU[nU] = Int32(u)
                (gradU.base + nU &* k).update(repeating: 0, count: k); gradBU[nU] = 0
                nU += 1
            }
            if stampI[i] != stamp {
                stampI[i] = stamp; slotI[i] = Int32(nI); touchedI[nI] = Int32(i)
                (gradI.base + nI &* k).update(repeating: 0, count: k); gradBI[nI] = 0
                nI += 1
            }
            let p = P + u &* k, q = Q + i &* k
            let (pred, dRaw) = m.lossGradient(raw: m.rawScore(user: u, item: i), rating: rs[idx])
            let e = pred - rs[idx]
            se += Double(e * e)
            ae += Double(abs(e))
            let g = 2 * dRaw * scale  // gradient of the batch's mean squared error
            let su = Int(slotU[u]), si = Int(slotI[i])
            Kernels.axpy(gradU.base + su &* k, q, k, g)
            Kernels.axpy(gradU.base + su &* k, p, k, decay)
            Kernels.axpy(gradI.base + si &* k, p, k, g)
            Kernels.axpy(gradI.base + si &* k, q, k, decay)
            if biases {
                gradBU[su] += g + decay * m.userBias[u]
                gradBI[si] += g + decay * m.itemBias[i]
            }
        }
        step += 1
        let lr = options.learningRate(step: step - 1, totalSteps: totalSteps)
        let b1 = AdamTrainer.beta1, b2 = AdamTrainer.beta2
        let bc1 = 1 - Float(_pow(Double(b1), Double(step)))
        let bc2 = 1 - Float(_pow(Double(b2), Double(step)))
        let nonNegative = m.config.nonNegative
        for s in 0..<nU {
            let u = Int(touchedU[s])
            AdamTrainer.adamRow(P + u &* k, mU.base + u &* k, vU.base + u &* k, gradU.base + s &* k, k, lr, bc1, bc2)
            if nonNegative { Kernels.clampNonNegative(P + u &* k, k) }
            if biases { AdamTrainer.adamRow(m.userBias.base + u, mBU.base + u, vBU.base + u, gradBU.base + s, 1, lr, bc1, bc2) }
        }
        for s in 0..<nI {
            let i = Int(touchedI[s])
            AdamTrainer.adamRow(Q + i &* k, mI.base + i &* k, vI.base + i &* k, gradI.base + s &* k, k, lr, bc1, bc2)
            if nonNegative { Kernels.clampNonNegative(Q + i &* k, k) }
            if biases { AdamTrainer.adamRow(m.itemBias.base + i, mBI.base + i, vBI.base + i, gradBI.base + s, 1, lr, bc1, bc2) }
        }
        return (se, ae)
    }

    /// Adam update of k parameters from their gradient, with bias-corrected moments.
    @inline(__always)
    static func adamRow(_ w: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                        _ g: UnsafePointer<Float>, _ k: Int, _ lr: Float, _ bc1: Float, _ bc2: Float) {
        let vb1 = SIMD8<Float>(repeating: beta1), vb2 = SIMD8<Float>(repeating: beta2)
        let one = SIMD8<Float>(repeating: 1)
        let step = SIMD8<Float>(repeating: lr / bc1), ic2 = SIMD8<Float>(repeating: 1 / bc2)
        let eps = SIMD8<Float>(repeating: epsilon)
        var j = 0
        while j &+ 8 <= k {
            let gj = Kernels.load8(g + j)
            let mj = vb1 * Kernels.load8(m + j) + (one - vb1) * gj
            let vj = vb2 * Kernels.load8(v + j) + (one - vb2) * gj * gj
            Kernels.store8(mj, m + j)
            Kernels.store8(vj, v + j)
            Kernels.store8(Kernels.load8(w + j) - step * mj / ((vj * ic2).squareRoot() + eps), w + j)
            j &+= 8
        }
        while j < k {
            let gj = g[j]
            m[j] = beta1 * m[j] + (1 - beta1) * gj
            v[j] = beta2 * v[j] + (1 - beta2) * gj * gj
            w[j] -= (lr / bc1) * m[j] / ((v[j] / bc2).squareRoot() + epsilon)
            j &+= 1
        }
    }
}
