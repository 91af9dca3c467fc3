import EmbedrecCore

// The C ABI for training data given in chunks (embedrec.h, "Training data"), and the trainer
// constructors that take it over. Bound in python/embedrec/_lib.py.

private let registry = HandleRegistry.shared

private func loader(_ h: UnsafeMutableRawPointer?) throws -> RatingLoader {
    try registry.lookup(h, as: RatingLoader.self, kind: "ratings")
}

@_cdecl("embedrec_ratings_create")
public func embedrecRatingsCreate(_ n: Int64, _ nUsers: Int64, _ nItems: Int64,
                                  _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let count = try Check.length(n, "n")
            let users = try Check.length(nUsers, "n_users", max: Int(Int32.max))
            let items = try Check.length(nItems, "n_items", max: Int(Int32.max))
            return try RatingLoader(count: count, nUsers: users, nItems: items)
        }
    }
}

@_cdecl("embedrec_ratings_append")
public func embedrecRatingsAppend(_ h: UnsafeMutableRawPointer?, _ users: UnsafePointer<Int32>?,
                                  _ items: UnsafePointer<Int32>?, _ ratings: UnsafePointer<Float>?, _ n: Int64) -> Int32 {
    status {
        let l = try loader(h)
        let count = try Check.length(n, "n")
        try l.append(users: try Check.pointer(users, "users", count: count),
                     items: try Check.pointer(items, "items", count: count),
                     ratings: try Check.pointer(ratings, "ratings", count: count), count: count)
    }
}

@_cdecl("embedrec_ratings_free")
public func embedrecRatingsFree(_ h: UnsafeMutableRawPointer?) -> Int32 {
    status { try registry.remove(h, as: RatingLoader.self, kind: "ratings") }
}

/// A loader holding `n` ratings copied from caller arrays: the one-call trainer constructors
/// (embedrec_trainer_create, embedrec_net_trainer_create) validate and copy through the same
/// path as chunked data.
func loaderCopying(_ users: UnsafePointer<Int32>?, _ items: UnsafePointer<Int32>?, _ values: UnsafePointer<Float>?,
                   _ n: Int64, valuesName: String, nUsers: Int, nItems: Int) throws -> RatingLoader {
    let count = try Check.length(n, "n")
    let l = try RatingLoader(count: count, nUsers: nUsers, nItems: nItems)
    try l.append(users: try Check.pointer(users, "users", count: count), items: try Check.pointer(items, "items", count: count),
                 ratings: try Check.pointer(values, valuesName, count: count), count: count)
    return l
}

/// The loader behind `h`, checked to match a model's table sizes (every trainer constructor
/// that takes chunked data goes through here).
func ratingsLoader(_ h: UnsafeMutableRawPointer?, nUsers: Int, nItems: Int) throws -> RatingLoader {
    let l = try loader(h)
    guard l.nUsers == nUsers, l.nItems == nItems else {
        throw CoreError.invalid("the ratings were made for \(l.nUsers) users and \(l.nItems) items, "
                                + "but the model has \(nUsers) and \(nItems)")
    }
    return l
}

@_cdecl("embedrec_trainer_create_from")
public func embedrecTrainerCreateFrom(_ h: UnsafeMutableRawPointer?, _ ratings: UnsafeMutableRawPointer?,
                                      _ optimizer: Int32, _ schedule: Int32, _ epochs: Int32, _ batchSize: Int32,
                                      _ lr: Double, _ weightDecay: Double, _ threads: Int32, _ seed: UInt64,
                                      _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let m = try registry.lookup(h, as: MFModel.self, kind: "model")
            let options = try Check.trainOptions(optimizer: optimizer, schedule: schedule, epochs: epochs, batchSize: batchSize,
                                                 lr: lr, weightDecay: weightDecay, threads: threads, seed: seed)
            let l = try ratingsLoader(ratings, nUsers: m.config.nUsers, nItems: m.config.nItems)
            let t = try l.handOver { try makeTrainer(model: m, data: $0, options: options) }
            return TrainerBox(t)
        }
    }
}

@_cdecl("embedrec_net_trainer_create_from")
public func embedrecNetTrainerCreateFrom(_ h: UnsafeMutableRawPointer?, _ ratings: UnsafeMutableRawPointer?,
                                         _ loss: Int32, _ negatives: Int32, _ optimizer: Int32, _ schedule: Int32,
                                         _ epochs: Int32, _ batchSize: Int32, _ lr: Double, _ weightDecay: Double,
                                         _ threads: Int32, _ seed: UInt64,
                                         _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let net = try registry.lookup(h, as: Network.self, kind: "network")
            let lossKind = try Loss.numbered(loss)
            let options = try Check.trainOptions(optimizer: optimizer, schedule: schedule, epochs: epochs, batchSize: batchSize,
                                                 lr: lr, weightDecay: weightDecay, threads: threads, seed: seed)
            let l = try ratingsLoader(ratings, nUsers: net.nUsers, nItems: net.nItems)
            let t = try l.handOver {
                try NetworkTrainer(network: net, data: $0, loss: lossKind, negatives: Int(negatives), options: options)
            }
            return TrainerBox(t)
        }
    }
}

@_cdecl("embedrec_trainer_seen")
public func embedrecTrainerSeen(_ h: UnsafeMutableRawPointer?, _ indptr: UnsafeMutablePointer<Int64>?, _ indptrLength: Int64,
                                _ items: UnsafeMutablePointer<Int32>?, _ itemsLength: Int64) -> Int32 {
    status {
        let t = try registry.lookup(h, as: TrainerBox.self, kind: "trainer").trainer
        let nUsers = t.nUsers, data = t.data
        guard indptrLength == Int64(nUsers + 1), itemsLength == Int64(data.count) else {
            throw CoreError.invalid("indptr must have n_users + 1 = \(nUsers + 1) entries and items \(data.count); "
                                    + "got \(indptrLength) and \(itemsLength)")
        }
        data.seen(nUsers: nUsers, indptr: try Check.mutablePointer(indptr, "indptr", count: nUsers + 1),
                  items: try Check.mutablePointer(items, "items", count: data.count))
    }
}
