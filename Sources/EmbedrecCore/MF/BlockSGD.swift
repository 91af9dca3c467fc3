/// One block of distributed SGD (DSGD: Gemulla, Nijkamp, Haas & Sismanis, KDD 2011): one pass
/// of `MatrixFactorization`'s SGD over one block's ratings, against a block of user rows and a
/// block of item rows given by the caller, which are updated in place.
///
/// The ratings' user and item indices are local to the two blocks. An engine runs a grid of
/// such blocks: in each sub-epoch, blocks that share no user and no item train at once, with
/// no communication; only the factor blocks move between sub-epochs. Engine-neutral: Spark's
/// tasks call it through the C ABI, and a Dask or Ray backend could do the same.
///
/// The update is the one of `SGDTrainer` (same rule, weight decay, biases, y_range,
/// non-negativity and embedding dropout; the block's ratings visited in the trainer's shuffled
/// order), with the global term given, never learned. With more than one thread the block
/// uses the deterministic schedule, so a block's result depends only on its inputs, the seed
/// and the thread count.
public enum BlockSGD {
    public struct Tables {
        public let factors: UnsafeMutablePointer<Float>
        public let biases: UnsafeMutablePointer<Float>
        public let rows: Int

        public init(factors: UnsafeMutablePointer<Float>, biases: UnsafeMutablePointer<Float>, rows: Int) {
            self.factors = factors
            self.biases = biases
            self.rows = rows
        }
    }

    /// Trains `ratings` (indices into `users` and `items`) for one pass; returns the pass's
    /// running loss and MAE.
    public static func run(ratings: RatingSet, users: Tables, items: Tables, nFactors k: Int, biases: Bool,
                           nonNegative: Bool, yRange: (lo: Float, hi: Float)?, globalBias: Float,
                           options: TrainOptions, dropout: EmbeddingDropout) throws -> EpochStats {
        let config = MFConfig(nUsers: users.rows, nItems: items.rows, nFactors: k, biases: biases, yRange: yRange,
                              nonNegative: nonNegative)
        let model = try MFModel(config: config, initStd: 0, seed: 0)
        model.userFactors.base.update(from: users.factors, count: users.rows * k)
        model.itemFactors.base.update(from: items.factors, count: items.rows * k)
        model.userBias.base.update(from: users.biases, count: users.rows)
        model.itemBias.base.update(from: items.biases, count: items.rows)
        model.globalBias = globalBias
        model.initialisedFromData = true
        var sgd = options
        sgd.optimizer = .sgd
        sgd.schedule = .constant
        let trainer = try makeTrainer(model: model, data: ratings, options: sgd)
        try trainer.useEmbeddingDropout(dropout)
        (trainer as? SGDTrainer)?.useBlockSchedule(threads: sgd.threads)
        let stats = try trainer.runEpoch()
        users.factors.update(from: model.userFactors.base, count: users.rows * k)
        items.factors.update(from: model.itemFactors.base, count: items.rows * k)
        users.biases.update(from: model.userBias.base, count: users.rows)
        items.biases.update(from: model.itemBias.base, count: items.rows)
        return stats
    }
}
