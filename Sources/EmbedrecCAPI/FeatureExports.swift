import EmbedrecCore

// The C ABI of user and item features (embedrec.h, "Features"). Bound in
// python/embedrec/_lib.py.

private let registry = HandleRegistry.shared

private func composition(_ h: UnsafeMutableRawPointer?) throws -> Composition? {
    guard let h else { return nil }
    return try registry.lookup(h, as: Composition.self, kind: "composition")
}

@_cdecl("embedrec_composition_create")
public func embedrecCompositionCreate(_ indptr: UnsafePointer<Int64>?, _ rows: UnsafePointer<Int32>?,
                                      _ weights: UnsafePointer<Float>?, _ kinds: UnsafePointer<UInt8>?,
                                      _ nEntities: Int64, _ nRows: Int64,
                                      _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let count = try Check.int(nEntities, "n_entities", in: 1...Int64(MFConfig.maxRows))
            let starts = try Check.pointer(indptr, "indptr", count: count + 1)
            let pairs = try Check.length(starts[count], "indptr[n_entities] (the number of pairs)")
            return try Composition(indptr: starts, rows: try Check.pointer(rows, "rows", count: pairs),
                                   weights: try Check.pointer(weights, "weights", count: pairs), count: count,
                                   nRows: try Check.int(nRows, "n_rows", in: 1...Int64(MFConfig.maxRows)),
                                   kinds: kinds)
        }
    }
}

@_cdecl("embedrec_composition_free")
public func embedrecCompositionFree(_ h: UnsafeMutableRawPointer?) -> Int32 {
    status { try registry.remove(h, as: Composition.self, kind: "composition") }
}

@_cdecl("embedrec_feature_trainer_create")
public func embedrecFeatureTrainerCreate(_ h: UnsafeMutableRawPointer?, _ ratings: UnsafeMutableRawPointer?,
                                         _ users: UnsafeMutableRawPointer?, _ items: UnsafeMutableRawPointer?,
                                         _ optimizer: Int32, _ schedule: Int32, _ epochs: Int32, _ batchSize: Int32,
                                         _ lr: Double, _ weightDecay: Double, _ idDropout: Double, _ threads: Int32,
                                         _ seed: UInt64, _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let m = try registry.lookup(h, as: MFModel.self, kind: "model")
            let userSide = try composition(users), itemSide = try composition(items)
            let options = try Check.trainOptions(optimizer: optimizer, schedule: schedule, epochs: epochs, batchSize: batchSize,
                                                 lr: lr, weightDecay: weightDecay, threads: threads, seed: seed)
            let l = try ratingsLoader(ratings, nUsers: userSide?.count ?? m.config.nUsers,
                                      nItems: itemSide?.count ?? m.config.nItems)
            return TrainerBox(try l.handOver {
                try makeFeatureTrainer(model: m, data: $0, options: options, users: userSide, items: itemSide,
                                       idDropout: try Check.finite(idDropout, "id_dropout"))
            })
        }
    }
}

@_cdecl("embedrec_model_compose")
public func embedrecModelCompose(_ h: UnsafeMutableRawPointer?, _ users: UnsafeMutableRawPointer?,
                                 _ items: UnsafeMutableRawPointer?,
                                 _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let m = try registry.lookup(h, as: MFModel.self, kind: "model")
            return try m.composed(users: try composition(users), items: try composition(items))
        }
    }
}

@_cdecl("embedrec_model_compose_into")
public func embedrecModelComposeInto(_ h: UnsafeMutableRawPointer?, _ users: UnsafeMutableRawPointer?,
                                     _ items: UnsafeMutableRawPointer?, _ target: UnsafeMutableRawPointer?) -> Int32 {
    status {
        let m = try registry.lookup(h, as: MFModel.self, kind: "model")
        let t = try registry.lookup(target, as: MFModel.self, kind: "model")
        try m.compose(into: t, users: try composition(users), items: try composition(items))
    }
}
