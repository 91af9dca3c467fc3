/// A hold-out inside the trainer, so that a caller can choose settings (weight decay, length)
/// on ratings the trainer does not train on without making a second copy of them: the trainer
/// shuffled its ratings when it was made, so its last `count` ratings are a uniformly random
/// subset. Epochs then train on the others, `heldOutLoss` scores the model on them, and
/// `holdOut(0)` trains on all again.
extension SGDTrainer {
    public func holdOut(_ count: Int) throws {
        guard features == nil else {
            throw CoreError.invalid("a hold-out is not supported with user or item features")
        }
        guard count >= 0, count < data.count else {
            throw CoreError.invalid("the hold-out must leave ratings to train on: 0 <= count < \(data.count), got \(count)")
        }
        try model.useGuard.withWriting {
            if count > 0 && grid != nil {
                // The deterministic schedule sorted the data into blocks, so its tail is not a
                // random subset any more: shuffle again (the grid is rebuilt below).
                data.shuffle(using: &rng)
            }
            heldOut = count
            blockOrder = SGDTrainer.blocks(covering: trainingCount)
            if grid != nil { useBlockSchedule(threads: options.threads) }
        }
    }

    /// The model's mean squared and absolute error on the held-out ratings ((0, 0) without any).
    public func heldOutLoss() throws -> (mse: Double, mae: Double) {
        try model.useGuard.withReading {
            let start = trainingCount
            return model.evaluate(users: data.users.base + start, items: data.items.base + start,
                                  ratings: data.ratings.base + start, count: heldOut, threads: options.threads)
        }
    }

    /// The learning rate and weight decay of later epochs (SGD's constant schedule: the rate
    /// is used as it is; a one-cycle schedule takes it as its peak).
    public func setRates(learningRate: Double, weightDecay: Double) throws {
        var changed = options
        changed.learningRate = Float(learningRate)
        changed.weightDecay = Float(weightDecay)
        try changed.validate()
        options = changed
    }
}
