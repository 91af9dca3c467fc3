import EmbedrecCore

// The C ABI of the implicit-feedback trainers (embedrec.h, "Implicit feedback"). Bound in
// python/embedrec/_lib.py.

private let registry = HandleRegistry.shared

@_cdecl("embedrec_implicit_trainer_create")
public func embedrecImplicitTrainerCreate(_ h: UnsafeMutableRawPointer?, _ ratings: UnsafeMutableRawPointer?,
                                          _ method: Int32, _ epochs: Int32, _ lr: Double, _ regularization: Double,
                                          _ alpha: Double, _ cgSteps: Int32, _ threads: Int32, _ seed: UInt64,
                                          _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let m = try registry.lookup(h, as: MFModel.self, kind: "model")
            guard let kind = ImplicitOptions.Method(rawValue: method) else {
                throw CoreError.invalid("method must be 0 (ALS) or 1 (BPR), got \(method)")
            }
            var options = ImplicitOptions()
            options.method = kind
            options.epochs = Int(epochs)
            options.learningRate = try Check.finite(lr, "lr")
            options.regularization = try Check.finite(regularization, "regularization")
            options.alpha = try Check.finite(alpha, "alpha")
            options.cgSteps = Int(cgSteps)
            options.threads = Int(threads)
            options.seed = seed
            let l = try ratingsLoader(ratings, nUsers: m.config.nUsers, nItems: m.config.nItems)
            // Both views of the interactions (by user and, for ALS, by item) beside the copy.
            let views = kind == .als ? 2 : 1
            try MemoryBudget.check(bytes: try MemoryBudget.product([l.capacity, 16 * views], what: "interactions"),
                                   what: "the interactions' row views")
            return TrainerBox(try l.handOver { try makeImplicitTrainer(model: m, data: $0, options: options) })
        }
    }
}
