/// What every trainer reports after an epoch.
public struct EpochStats {
    /// Mean squared error of the training ratings seen this epoch, each measured just before
    /// its own update (the running loss Keras and fastai print).
    public var loss: Double
    public var mae: Double
    public var seconds: Double
}

public enum Optimizer: Int32 {
    case sgd = 0
    case adam = 1
}

public enum Schedule: Int32 {
    case constant = 0
    /// fastai's fit_one_cycle shape: cosine warm-up from lr/25 to lr over the first 25% of the
    /// steps, then cosine annealing to lr/1e5.
    case oneCycle = 1
}

/// Hyper-parameters of one training run.
public struct TrainOptions {
    public var optimizer: Optimizer = .sgd
    public var epochs: Int = 1
    public var batchSize: Int = 1024
    public var learningRate: Float = 0.01
    /// L2 penalty per rating on the rows (and biases) the rating touches: the objective is
    /// Σ (r - ŷ)² + λ (‖p_u‖² + ‖q_i‖² + b_u² + b_i²), for every optimiser.
    public var weightDecay: Float = 0
    public var schedule: Schedule = .constant
    public var threads: Int = 0
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        guard epochs >= 1, epochs <= 1_000_000 else { throw CoreError.invalid("epochs must be in 1...1000000, got \(epochs)") }
        guard batchSize >= 1, batchSize <= 1 << 24 else {
            throw CoreError.invalid("batch_size must be in 1...\(1 << 24), got \(batchSize)")
        }
        guard learningRate.isFinite, learningRate > 0, learningRate <= 10 else {
            throw CoreError.invalid("lr must be a finite number in (0, 10], got \(learningRate)")
        }
        guard weightDecay.isFinite, weightDecay >= 0, weightDecay <= 100 else {
            throw CoreError.invalid("weight_decay must be a finite number in [0, 100], got \(weightDecay)")
        }
        guard threads >= 0, threads <= 1024 else { throw CoreError.invalid("n_threads must be in 0...1024 (0 = all cores), got \(threads)") }
    }

    /// Learning rate at `step` of `totalSteps` (0-based).
    public func learningRate(step: Int, totalSteps: Int) -> Float {
        switch schedule {
        case .constant:
            return learningRate
        case .oneCycle:
            let pct = 0.25
            let t = Double(step) / Double(max(totalSteps, 1))
            let hi = Double(learningRate), start = hi / 25, end = hi / 1e5
            func cosine(_ a: Double, _ b: Double, _ p: Double) -> Double {
                a + (b - a) * (1 - _cos(Double.pi * min(max(p, 0), 1))) / 2
            }
            return Float(t < pct ? cosine(start, hi, t / pct) : cosine(hi, end, (t - pct) / (1 - pct)))
        }
    }
}

/// A training run in progress: owns the training data copy and the optimiser state, and
/// advances the model one epoch per call so the caller can report, validate, stop early or
/// be interrupted between epochs.
public protocol Trainer: AnyObject {
    var cancel: CancelFlag { get }
    var progress: EpochProgress { get }
    var epochsDone: Int { get }
    /// The training ratings (in the trainer's own order; positives only for implicit data).
    var data: RatingSet { get }
    /// Rows of the user table being trained.
    var nUsers: Int { get }
    func runEpoch() throws -> EpochStats
    /// Turns on per-side embedding dropout for later epochs (matrix factorisation's trainers;
    /// the others refuse it: a network's dropout is a layer of the network).
    func useEmbeddingDropout(_ dropout: EmbeddingDropout) throws
}

extension Trainer {
    public func useEmbeddingDropout(_ dropout: EmbeddingDropout) throws {
        throw CoreError.invalid("embedding dropout is an option of matrix factorisation; a network's dropout is one of its layers")
    }
}

/// A trainer for `model` on `data`. The trainer takes `data` over and may reorder it in place
/// (SGD shuffles it once), so pass a set made for this run.
public func makeTrainer(model: MFModel, data: RatingSet, options: TrainOptions) throws -> Trainer {
    try options.validate()
    guard data.count > 0 else { throw CoreError.invalid("there are no training ratings") }
    guard data.users.buffer.allSatisfy({ Int($0) < model.config.nUsers }),
          data.items.buffer.allSatisfy({ Int($0) < model.config.nItems }) else {
        throw CoreError.invalid("training ratings refer to rows beyond the model's tables")
    }
    try model.initialiseGlobalBias(from: data)
    switch options.optimizer {
    case .sgd: return SGDTrainer(model: model, data: data, options: options)
    case .adam: return try AdamTrainer(model: model, data: data, options: options)
    }
}

extension MFModel {
    /// Sets the global term from the training mean, once: the first trainer of a model does.
    func initialiseGlobalBias(from data: RatingSet) throws {
        guard !initialisedFromData else { return }
        try useGuard.withWriting {
            globalBias = rawGlobalBias(forMean: data.mean)
            initialisedFromData = true
        }
    }
}

/// How many updates run between two looks at the cancel flag.
let cancelPollInterval = 8192
