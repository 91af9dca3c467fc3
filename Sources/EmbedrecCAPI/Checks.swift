import EmbedrecCore

/// Boundary checks for values that come from C. Each turns a bad value into a CoreError whose
/// message names the argument, the value, and what is accepted.
enum Check {
    static func pointer<T>(_ p: UnsafePointer<T>?, _ name: String, count: Int) throws -> UnsafePointer<T> {
        if let p { return p }
        if count == 0 { return UnsafePointer(bitPattern: MemoryLayout<T>.alignment)! }
        throw CoreError.invalid("\(name) is NULL but \(count) values were announced")
    }

    static func mutablePointer<T>(_ p: UnsafeMutablePointer<T>?, _ name: String, count: Int) throws -> UnsafeMutablePointer<T> {
        if let p { return p }
        if count == 0 { return UnsafeMutablePointer(bitPattern: MemoryLayout<T>.alignment)! }
        throw CoreError.invalid("\(name) is NULL but \(count) values were announced")
    }

    static func length(_ n: Int64, _ name: String, max: Int = Int(Int32.max)) throws -> Int {
        guard n >= 0 else { throw CoreError.invalid("\(name) must be >= 0, got \(n)") }
        guard n <= Int64(max) else { throw CoreError.invalid("\(name) is \(n); at most \(max) is supported") }
        return Int(n)
    }

    static func finite(_ x: Double, _ name: String) throws -> Float {
        guard x.isFinite, abs(x) <= Double(Float.greatestFiniteMagnitude) else {
            throw CoreError.invalid("\(name) must be a finite number, got \(x)")
        }
        return Float(x)
    }

    static func int(_ x: Int64, _ name: String, in range: ClosedRange<Int64>) throws -> Int {
        guard range.contains(x) else {
            throw CoreError.invalid("\(name) must be in \(range.lowerBound)...\(range.upperBound), got \(x)")
        }
        return Int(x)
    }
}

extension Check {
    /// The training options both trainer constructors take, decoded and range-checked.
    static func trainOptions(optimizer: Int32, schedule: Int32, epochs: Int32, batchSize: Int32, lr: Double,
                             weightDecay: Double, threads: Int32, seed: UInt64) throws -> TrainOptions {
        guard let opt = Optimizer(rawValue: optimizer) else {
            throw CoreError.invalid("optimizer must be 0 (sgd) or 1 (adam), got \(optimizer)")
        }
        guard let sched = Schedule(rawValue: schedule) else {
            throw CoreError.invalid("schedule must be 0 (constant) or 1 (one-cycle), got \(schedule)")
        }
        var options = TrainOptions()
        options.optimizer = opt
        options.schedule = sched
        options.epochs = Int(epochs)
        options.batchSize = Int(batchSize)
        options.learningRate = try finite(lr, "lr")
        options.weightDecay = try finite(weightDecay, "weight_decay")
        options.threads = Int(threads)
        options.seed = seed
        try options.validate()
        return options
    }
}

/// A validated query of (user, item) index pairs: -1 allowed as "unknown" when asked.
struct PairQuery {
    let users: UnsafePointer<Int32>
    let items: UnsafePointer<Int32>
    let count: Int
    let threads: Int
}

extension Check {
    /// Checks the arguments every pairwise call shares: the count, both id pointers, every id
    /// against the table sizes, and the thread count.
    static func pairs(_ users: UnsafePointer<Int32>?, _ items: UnsafePointer<Int32>?, _ n: Int64, threads: Int32,
                      nUsers: Int, nItems: Int, ratings: UnsafePointer<Float>? = nil, allowUnknown: Bool,
                      what: String) throws -> PairQuery {
        let count = try length(n, "n", max: Int.max / 8)
        let us = try pointer(users, "users", count: count)
        let its = try pointer(items, "items", count: count)
        let t = try int(Int64(threads), "n_threads", in: 0...1024)
        try RatingSet.validate(users: us, items: its, ratings: ratings, count: count, nUsers: nUsers, nItems: nItems,
                               allowUnknown: allowUnknown, what: what)
        return PairQuery(users: us, items: its, count: count, threads: t)
    }
}
