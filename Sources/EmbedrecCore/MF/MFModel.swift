/// Shape and output options of a matrix-factorisation model.
public struct MFConfig {
    public var nUsers: Int
    public var nItems: Int
    public var nFactors: Int
    /// Per-user and per-item bias terms (off: the plain dot product plus the global bias).
    public var biases: Bool
    /// When set, the raw score goes through a sigmoid scaled to (lo, hi) (fastai's y_range).
    public var yRange: (lo: Float, hi: Float)?
    /// Project every factor entry to ≥ 0 after each update.
    public var nonNegative: Bool

    public init(nUsers: Int, nItems: Int, nFactors: Int, biases: Bool = true,
                yRange: (lo: Float, hi: Float)? = nil, nonNegative: Bool = false) {
        self.nUsers = nUsers; self.nItems = nItems; self.nFactors = nFactors
        self.biases = biases; self.yRange = yRange; self.nonNegative = nonNegative
    }

    public static let maxFactors = 1 << 16
    public static let maxRows = Int(Int32.max)

    public func validate() throws {
        guard nUsers >= 1, nUsers <= MFConfig.maxRows else {
            throw CoreError.invalid("n_users must be in 1...\(MFConfig.maxRows), got \(nUsers)")
        }
        guard nItems >= 1, nItems <= MFConfig.maxRows else {
            throw CoreError.invalid("n_items must be in 1...\(MFConfig.maxRows), got \(nItems)")
        }
        guard nFactors >= 1, nFactors <= MFConfig.maxFactors else {
            throw CoreError.invalid("n_factors must be in 1...\(MFConfig.maxFactors), got \(nFactors)")
        }
        if let (lo, hi) = yRange {
            guard lo.isFinite, hi.isFinite, lo < hi else {
                throw CoreError.invalid("y_range must be two finite numbers with lo < hi, got (\(lo), \(hi))")
            }
        }
    }
}

/// Biased matrix factorisation: score(u, i) = g + b_u + b_i + p_u · q_i, optionally squashed
/// into y_range. Row j of a factor table belongs to index j, which the Python layer maps to the
/// j-th raw id; nothing here reorders rows.
public final class MFModel {
    public let config: MFConfig
    public let userFactors: Buffer<Float>
    public let itemFactors: Buffer<Float>
    public let userBias: Buffer<Float>
    public let itemBias: Buffer<Float>
    /// Raw-score global bias (before the y_range sigmoid). Set from the training mean by the
    /// first trainer; kept fixed during training, as Surprise and LIBMF do.
    public var globalBias: Float = 0
    /// False until a trainer has set the global bias from data.
    public var initialisedFromData = false
    /// Serialises training against reading; see `UseGuard`. Shared with the model of
    /// parameter rows a composed model shares tables with (`composed(users:items:)`).
    public let useGuard: UseGuard

    public init(config: MFConfig, initStd: Float, seed: UInt64) throws {
        try config.validate()
        guard initStd.isFinite, initStd >= 0, initStd <= 10 else {
            throw CoreError.invalid("init_std must be a finite number in [0, 10], got \(initStd)")
        }
        let k = config.nFactors
        let userCells = try MemoryBudget.product([config.nUsers, k], what: "user embeddings")
        let itemCells = try MemoryBudget.product([config.nItems, k], what: "item embeddings")
        // Parameters plus up to two optimiser moments each: budget for 3 copies.
        let bytes = try MemoryBudget.product([userCells + itemCells + config.nUsers + config.nItems, 4 * 3],
                                             what: "model")
        try MemoryBudget.check(bytes: bytes, what: "a model with \(config.nUsers) users, \(config.nItems) items and \(k) factors")
        self.config = config
        useGuard = UseGuard()
        userFactors = Buffer(repeating: 0, count: userCells)
        itemFactors = Buffer(repeating: 0, count: itemCells)
        userBias = Buffer(repeating: 0, count: config.nUsers)
        itemBias = Buffer(repeating: 0, count: config.nItems)
        // At 0 the tables stay zero without a draw: a loaded model's are set next, and drawing
        // (then scaling by 0) took most of the time of loading a large one.
        guard initStd > 0 else { return }
        var rng = Xoshiro256(seed: seed)
        for t in [userFactors, itemFactors] {
            for j in 0..<t.count {
                var v = rng.nextNormal() * initStd
                if config.nonNegative { v = abs(v) }
                t[j] = v
            }
        }
    }

    /// A model over the given tables (no copy), guarded by `guard`.
    init(config: MFConfig, userFactors: Buffer<Float>, itemFactors: Buffer<Float>, userBias: Buffer<Float>,
         itemBias: Buffer<Float>, guard: UseGuard) {
        self.config = config
        self.userFactors = userFactors
        self.itemFactors = itemFactors
        self.userBias = userBias
        self.itemBias = itemBias
        useGuard = `guard`
    }

    @inline(__always) public var k: Int { config.nFactors }

    /// Score before the output transform; -1 for an unknown user or item drops its terms.
    @inline(__always)
    public func rawScore(user u: Int, item i: Int) -> Float {
        var s = globalBias
        if u >= 0 { s += userBias[u] }
        if i >= 0 { s += itemBias[i] }
        if u >= 0 && i >= 0 {
            s += Kernels.dot(userFactors.base + u &* k, itemFactors.base + i &* k, k)
        }
        return s
    }

    /// Maps a raw score to a prediction and gives d(prediction)/d(raw).
    @inline(__always)
    public func output(_ raw: Float) -> (prediction: Float, slope: Float) {
        guard let (lo, hi) = config.yRange else { return (raw, 1) }
        let s = sigmoid(raw)
        return (lo + (hi - lo) * s, (hi - lo) * s * (1 - s))
    }

    /// The prediction for a raw score and the derivative of ½ (ŷ - r)², half the squared error
    /// (`Loss.mse`), with respect to that raw score: (ŷ - r) · dŷ/draw. Half: SGD's classic
    /// update (Funk, Surprise, LIBMF), for which the learning rates are tuned; Adam doubles it
    /// back. Both trainers build their updates from this one function, and the tests check it
    /// against finite differences.
    @inline(__always)
    public func lossGradient(raw: Float, rating: Float) -> (prediction: Float, dRaw: Float) {
        let (pred, slope) = output(raw)
        return (pred, 0.5 * Loss.mse.evaluate(output: pred, target: rating).gradient * slope)
    }

    /// The raw global bias that makes an all-zero model predict `mean`.
    public func rawGlobalBias(forMean mean: Double) -> Float {
        guard let (lo, hi) = config.yRange else { return Float(mean) }
        var t = (mean - Double(lo)) / Double(hi - lo)
        t = min(max(t, 1e-3), 1 - 1e-3)
        return Float(_log(t / (1 - t)))
    }

    /// Predictions for index pairs already validated (ids in range or -1).
    public func predict(users: UnsafePointer<Int32>, items: UnsafePointer<Int32>, count: Int,
                        out: UnsafeMutablePointer<Float>, threads: Int) {
        let n = resolveThreads(threads, work: count, minPerThread: 50_000)
        let ptrs = UncheckedSendable((users, items, out))
        parallelChunks(count: count, chunks: n) { _, range in
            let (us, its, o) = ptrs.value
            for r in range {
                o[r] = self.output(self.rawScore(user: Int(us[r]), item: Int(its[r]))).prediction
            }
        }
    }

    /// Mean squared and mean absolute error over validated ratings. Partial sums are kept per
    /// chunk and added in chunk order, so the result does not depend on thread timing.
    public func evaluate(users: UnsafePointer<Int32>, items: UnsafePointer<Int32>, ratings: UnsafePointer<Float>,
                         count: Int, threads: Int) -> (mse: Double, mae: Double) {
        guard count > 0 else { return (0, 0) }
        let n = resolveThreads(threads, work: count, minPerThread: 50_000)
        let partial = Buffer<Double>(repeating: 0, count: 2 * n)
        let ptrs = UncheckedSendable((users, items, ratings, partial.base))
        parallelChunks(count: count, chunks: n) { c, range in
            let (us, its, rs, out) = ptrs.value
            var se = 0.0, ae = 0.0
            for r in range {
                let e = Double(rs[r] - self.output(self.rawScore(user: Int(us[r]), item: Int(its[r]))).prediction)
                se += e * e
                ae += abs(e)
            }
            out[2 * c] = se
            out[2 * c + 1] = ae
        }
        var se = 0.0, ae = 0.0
        for c in 0..<n { se += partial[2 * c]; ae += partial[2 * c + 1] }
        return (se / Double(count), ae / Double(count))
    }
}
