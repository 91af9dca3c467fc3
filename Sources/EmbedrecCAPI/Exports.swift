#if canImport(Glibc)
import Glibc
#endif
import EmbedrecCore

// The C ABI of embedrec. Each function here is declared, with its contract, in
// Sources/CEmbedrec/include/embedrec.h, and bound for Python in python/embedrec/_lib.py.
// Keep the three in step (a test compares them).

private let versionString: UnsafeMutablePointer<CChar> = strdup("0.1.0")!
private let registry = HandleRegistry.shared

private func model(_ h: UnsafeMutableRawPointer?) throws -> MFModel {
    try registry.lookup(h, as: MFModel.self, kind: "model")
}

private func trainer(_ h: UnsafeMutableRawPointer?) throws -> Trainer {
    try registry.lookup(h, as: TrainerBox.self, kind: "trainer").trainer
}

/// The parameter array selected by an EMBEDREC_* array constant.
private func array(_ m: MFModel, _ which: Int32) throws -> Buffer<Float>? {
    switch which {
    case 0: return m.userFactors
    case 1: return m.itemFactors
    case 2: return m.userBias
    case 3: return m.itemBias
    case 4: return nil
    default: throw CoreError.invalid("array selector must be 0 (user factors), 1 (item factors), 2 (user bias), 3 (item bias) or 4 (global bias), got \(which)")
    }
}

@_cdecl("embedrec_version")
public func embedrecVersion() -> UnsafePointer<CChar> { UnsafePointer(versionString) }

@_cdecl("embedrec_last_error")
public func embedrecLastError() -> UnsafePointer<CChar> { lastErrorPointer() }

@_cdecl("embedrec_live_handles")
public func embedrecLiveHandles(_ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    status {
        guard let out else { throw CoreError.invalid("out is NULL") }
        out.pointee = Int64(registry.liveCount)
    }
}

@_cdecl("embedrec_mf_create")
public func embedrecMFCreate(_ nUsers: Int64, _ nItems: Int64, _ nFactors: Int32, _ biases: Int32,
                             _ nonNegative: Int32, _ hasYRange: Int32, _ yLo: Double, _ yHi: Double,
                             _ initStd: Double, _ seed: UInt64,
                             _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let yRange: (lo: Float, hi: Float)? =
                hasYRange != 0 ? (try Check.finite(yLo, "y_range low"), try Check.finite(yHi, "y_range high")) : nil
            let config = MFConfig(nUsers: try Check.int(nUsers, "n_users", in: 1...Int64(Int32.max)),
                                  nItems: try Check.int(nItems, "n_items", in: 1...Int64(Int32.max)),
                                  nFactors: Int(nFactors), biases: biases != 0, yRange: yRange,
                                  nonNegative: nonNegative != 0)
            let m = try MFModel(config: config, initStd: try Check.finite(initStd, "init_std"), seed: seed)
            return m
        }
    }
}

@_cdecl("embedrec_model_free")
public func embedrecModelFree(_ h: UnsafeMutableRawPointer?) -> Int32 {
    status { try registry.remove(h, kind: "model") { $0 is MFModel || $0 is Network } }
}

@_cdecl("embedrec_model_shape")
public func embedrecModelShape(_ h: UnsafeMutableRawPointer?, _ nUsers: UnsafeMutablePointer<Int64>?,
                               _ nItems: UnsafeMutablePointer<Int64>?, _ nFactors: UnsafeMutablePointer<Int32>?) -> Int32 {
    status {
        let m = try model(h)
        nUsers?.pointee = Int64(m.config.nUsers)
        nItems?.pointee = Int64(m.config.nItems)
        nFactors?.pointee = Int32(m.config.nFactors)
    }
}

@_cdecl("embedrec_model_get_array")
public func embedrecModelGetArray(_ h: UnsafeMutableRawPointer?, _ which: Int32, _ out: UnsafeMutablePointer<Float>?,
                                  _ length: Int64) -> Int32 {
    status {
        let m = try model(h)
        let buffer = try array(m, which)
        let expected = buffer?.count ?? 1
        let n = try Check.length(length, "length", max: Int.max)
        guard n == expected else { throw CoreError.invalid("length must be \(expected) for array \(which), got \(n)") }
        let dst = try Check.mutablePointer(out, "out", count: n)
        try m.useGuard.withReading {
            if let buffer { dst.update(from: buffer.base, count: n) } else { dst.pointee = m.globalBias }
        }
    }
}

@_cdecl("embedrec_model_set_array")
public func embedrecModelSetArray(_ h: UnsafeMutableRawPointer?, _ which: Int32, _ values: UnsafePointer<Float>?,
                                  _ length: Int64) -> Int32 {
    status {
        let m = try model(h)
        let buffer = try array(m, which)
        let expected = buffer?.count ?? 1
        let n = try Check.length(length, "length", max: Int.max)
        guard n == expected else { throw CoreError.invalid("length must be \(expected) for array \(which), got \(n)") }
        let src = try Check.pointer(values, "values", count: n)
        for j in 0..<n where !src[j].isFinite {
            throw CoreError.invalid("values[\(j)] is \(src[j]); parameters must be finite")
        }
        if m.config.nonNegative, which <= 1 {
            for j in 0..<n where src[j] < 0 {
                throw CoreError.invalid("values[\(j)] is \(src[j]); a non-negative model's factors must be >= 0")
            }
        }
        try m.useGuard.withWriting {
            if let buffer { buffer.base.update(from: src, count: n) } else { m.globalBias = src.pointee }
            m.initialisedFromData = true
        }
    }
}

@_cdecl("embedrec_model_predict")
public func embedrecModelPredict(_ h: UnsafeMutableRawPointer?, _ users: UnsafePointer<Int32>?, _ items: UnsafePointer<Int32>?,
                                 _ n: Int64, _ threads: Int32, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    status {
        let m = try model(h)
        let q = try Check.pairs(users, items, n, threads: threads, nUsers: m.config.nUsers, nItems: m.config.nItems,
                                allowUnknown: true, what: "predict")
        let dst = try Check.mutablePointer(out, "out", count: q.count)
        try m.useGuard.withReading { m.predict(users: q.users, items: q.items, count: q.count, out: dst, threads: q.threads) }
    }
}

@_cdecl("embedrec_model_evaluate")
public func embedrecModelEvaluate(_ h: UnsafeMutableRawPointer?, _ users: UnsafePointer<Int32>?, _ items: UnsafePointer<Int32>?,
                                  _ ratings: UnsafePointer<Float>?, _ n: Int64, _ threads: Int32,
                                  _ mse: UnsafeMutablePointer<Double>?, _ mae: UnsafeMutablePointer<Double>?) -> Int32 {
    status {
        let m = try model(h)
        let rs = try Check.pointer(ratings, "ratings", count: try Check.length(n, "n", max: Int.max / 8))
        let q = try Check.pairs(users, items, n, threads: threads, nUsers: m.config.nUsers, nItems: m.config.nItems,
                                ratings: rs, allowUnknown: false, what: "evaluate")
        let result = try m.useGuard.withReading {
            m.evaluate(users: q.users, items: q.items, ratings: rs, count: q.count, threads: q.threads)
        }
        mse?.pointee = result.mse
        mae?.pointee = result.mae
    }
}

@_cdecl("embedrec_model_recommend")
public func embedrecModelRecommend(_ h: UnsafeMutableRawPointer?, _ users: UnsafePointer<Int32>?, _ nUsers: Int64, _ k: Int32,
                                   _ candidates: UnsafePointer<Int32>?, _ nCandidates: Int64,
                                   _ seenIndptr: UnsafePointer<Int64>?, _ seenItems: UnsafePointer<Int32>?, _ nSeen: Int64,
                                   _ threads: Int32, _ outItems: UnsafeMutablePointer<Int32>?,
                                   _ outScores: UnsafeMutablePointer<Float>?) -> Int32 {
    status {
        let m = try model(h)
        let count = try Check.length(nUsers, "n_users")
        let topK = try Check.int(Int64(k), "k", in: 1...Int64(Int32.max))
        let outCount = try MemoryBudget.product([count, topK], what: "recommendations")
        try MemoryBudget.check(bytes: outCount * 8, what: "recommendations")
        let us = try Check.pointer(users, "users", count: count)
        for j in 0..<count where us[j] < 0 || Int(us[j]) >= m.config.nUsers {
            throw CoreError.invalid("user row \(us[j]) at position \(j) is outside 0..<\(m.config.nUsers)")
        }
        let nCand = try Check.length(nCandidates, "n_candidates")
        var cands: UnsafePointer<Int32>? = nil
        if candidates != nil || nCand > 0 {
            let c = try Check.pointer(candidates, "candidates", count: nCand)
            for j in 0..<nCand where c[j] < 0 || Int(c[j]) >= m.config.nItems {
                throw CoreError.invalid("candidate item \(c[j]) at position \(j) is outside 0..<\(m.config.nItems)")
            }
            cands = c
        }
        var seen: SeenItems? = nil
        if let seenIndptr {
            let n = try Check.length(nSeen, "n_seen")
            seen = try SeenItems(indptr: seenIndptr, indices: try Check.pointer(seenItems, "seen_items", count: n),
                                 count: n, nUsers: m.config.nUsers, nItems: m.config.nItems)
        }
        let oi = try Check.mutablePointer(outItems, "out_items", count: outCount)
        let os = try Check.mutablePointer(outScores, "out_scores", count: outCount)
        let t = try Check.int(Int64(threads), "n_threads", in: 0...1024)
        try m.useGuard.withReading {
            m.recommend(users: us, count: count, k: topK, candidates: cands, candidateCount: nCand, seen: seen,
                        threads: t, outItems: oi, outScores: os)
        }
    }
}

@_cdecl("embedrec_model_rank")
public func embedrecModelRank(_ h: UnsafeMutableRawPointer?, _ users: UnsafePointer<Int32>?, _ nUsers: Int64, _ k: Int32,
                              _ relevantIndptr: UnsafePointer<Int64>?, _ relevantItems: UnsafePointer<Int32>?,
                              _ nRelevant: Int64, _ seenIndptr: UnsafePointer<Int64>?, _ seenItems: UnsafePointer<Int32>?,
                              _ nSeen: Int64, _ threads: Int32, _ outItems: UnsafeMutablePointer<Int32>?,
                              _ outAUC: UnsafeMutablePointer<Double>?) -> Int32 {
    status {
        let m = try model(h)
        let count = try Check.length(nUsers, "n_users")
        let topK = try Check.int(Int64(k), "k", in: 1...Int64(Int32.max))
        let outCount = try MemoryBudget.product([count, topK], what: "top-k lists")
        try MemoryBudget.check(bytes: outCount * 4, what: "top-k lists")
        let us = try Check.pointer(users, "users", count: count)
        for j in 0..<count where us[j] < 0 || Int(us[j]) >= m.config.nUsers {
            throw CoreError.invalid("user row \(us[j]) at position \(j) is outside 0..<\(m.config.nUsers)")
        }
        let nRel = try Check.length(nRelevant, "n_relevant")
        let relevant = try RelevantItems(indptr: try Check.pointer(relevantIndptr, "relevant_indptr", count: count + 1),
                                         indices: try Check.pointer(relevantItems, "relevant_items", count: nRel),
                                         count: nRel, queries: count, nItems: m.config.nItems)
        var seen: SeenItems? = nil
        if let seenIndptr {
            let n = try Check.length(nSeen, "n_seen")
            seen = try SeenItems(indptr: seenIndptr, indices: try Check.pointer(seenItems, "seen_items", count: n),
                                 count: n, nUsers: m.config.nUsers, nItems: m.config.nItems)
        }
        let oi = try Check.mutablePointer(outItems, "out_items", count: outCount)
        let oa = try Check.mutablePointer(outAUC, "out_auc", count: count)
        let t = try Check.int(Int64(threads), "n_threads", in: 0...1024)
        try m.useGuard.withReading {
            m.rankingEvaluation(users: us, count: count, k: topK, relevant: relevant, seen: seen, threads: t,
                                outItems: oi, outAUC: oa)
        }
    }
}

@_cdecl("embedrec_model_similar")
public func embedrecModelSimilar(_ h: UnsafeMutableRawPointer?, _ ofItems: Int32, _ rows: UnsafePointer<Int32>?, _ nRows: Int64,
                                 _ k: Int32, _ metric: Int32, _ threads: Int32, _ outRows: UnsafeMutablePointer<Int32>?,
                                 _ outScores: UnsafeMutablePointer<Float>?) -> Int32 {
    status {
        let m = try model(h)
        let count = try Check.length(nRows, "n_rows")
        let topK = try Check.int(Int64(k), "k", in: 1...Int64(Int32.max))
        guard let metricValue = SimilarityMetric(rawValue: metric) else {
            throw CoreError.invalid("metric must be 0 (cosine) or 1 (dot), got \(metric)")
        }
        let tableSize = ofItems != 0 ? m.config.nItems : m.config.nUsers
        let rs = try Check.pointer(rows, "rows", count: count)
        for j in 0..<count where rs[j] < 0 || Int(rs[j]) >= tableSize {
            throw CoreError.invalid("row \(rs[j]) at position \(j) is outside 0..<\(tableSize)")
        }
        let outCount = try MemoryBudget.product([count, topK], what: "neighbours")
        try MemoryBudget.check(bytes: outCount * 8, what: "neighbours")
        let orows = try Check.mutablePointer(outRows, "out_rows", count: outCount)
        let os = try Check.mutablePointer(outScores, "out_scores", count: outCount)
        let t = try Check.int(Int64(threads), "n_threads", in: 0...1024)
        try m.useGuard.withReading {
            m.similar(ofItems: ofItems != 0, rows: rs, count: count, k: topK, metric: metricValue, threads: t,
                      outRows: orows, outScores: os)
        }
    }
}

@_cdecl("embedrec_trainer_create")
public func embedrecTrainerCreate(_ h: UnsafeMutableRawPointer?, _ users: UnsafePointer<Int32>?, _ items: UnsafePointer<Int32>?,
                                  _ ratings: UnsafePointer<Float>?, _ n: Int64, _ optimizer: Int32, _ schedule: Int32,
                                  _ epochs: Int32, _ batchSize: Int32, _ lr: Double, _ weightDecay: Double,
                                  _ threads: Int32, _ seed: UInt64,
                                  _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    status {
        try registry.create(out) {
            let m = try model(h)
            let l = try loaderCopying(users, items, ratings, n, valuesName: "ratings", nUsers: m.config.nUsers,
                                      nItems: m.config.nItems)
            let options = try Check.trainOptions(optimizer: optimizer, schedule: schedule, epochs: epochs, batchSize: batchSize,
                                                 lr: lr, weightDecay: weightDecay, threads: threads, seed: seed)
            return TrainerBox(try l.handOver { try makeTrainer(model: m, data: $0, options: options) })
        }
    }
}

@_cdecl("embedrec_trainer_run_epoch")
public func embedrecTrainerRunEpoch(_ h: UnsafeMutableRawPointer?, _ loss: UnsafeMutablePointer<Double>?,
                                    _ mae: UnsafeMutablePointer<Double>?, _ seconds: UnsafeMutablePointer<Double>?) -> Int32 {
    status {
        let stats = try trainer(h).runEpoch()
        loss?.pointee = stats.loss
        mae?.pointee = stats.mae
        seconds?.pointee = stats.seconds
    }
}

@_cdecl("embedrec_trainer_cancel")
public func embedrecTrainerCancel(_ h: UnsafeMutableRawPointer?) -> Int32 {
    status { try trainer(h).cancel.set() }
}

@_cdecl("embedrec_trainer_set_deterministic")
public func embedrecTrainerSetDeterministic(_ h: UnsafeMutableRawPointer?, _ on: Int32) -> Int32 {
    status {
        guard let sgd = try trainer(h) as? SGDTrainer else { return }
        if on != 0 {
            guard sgd.features == nil else {
                throw CoreError.invalid("the deterministic schedule does not support user or item features; use n_threads=1 for identical runs")
            }
            try sgd.model.useGuard.withWriting { sgd.useBlockSchedule(threads: sgd.options.threads) }
        } else {
            sgd.grid = nil
        }
    }
}

@_cdecl("embedrec_trainer_set_dropout")
public func embedrecTrainerSetDropout(_ h: UnsafeMutableRawPointer?, _ userRate: Double, _ itemRate: Double) -> Int32 {
    status {
        let t = try trainer(h)
        try EmbeddingDropout.validate(user: userRate, item: itemRate)
        try t.useEmbeddingDropout(EmbeddingDropout(userRate: Float(userRate), itemRate: Float(itemRate)))
    }
}

/// The SGD trainer of a plain matrix factorisation, for the hold-out calls.
private func holdOutTrainer(_ h: UnsafeMutableRawPointer?) throws -> SGDTrainer {
    guard let sgd = try trainer(h) as? SGDTrainer else {
        throw CoreError.invalid("a hold-out needs an SGD trainer of a matrix factorisation")
    }
    return sgd
}

@_cdecl("embedrec_trainer_hold_out")
public func embedrecTrainerHoldOut(_ h: UnsafeMutableRawPointer?, _ count: Int64) -> Int32 {
    status { try holdOutTrainer(h).holdOut(Int(count)) }
}

@_cdecl("embedrec_trainer_held_out_loss")
public func embedrecTrainerHeldOutLoss(_ h: UnsafeMutableRawPointer?, _ mse: UnsafeMutablePointer<Double>?,
                                       _ mae: UnsafeMutablePointer<Double>?) -> Int32 {
    status {
        let loss = try holdOutTrainer(h).heldOutLoss()
        mse?.pointee = loss.mse
        mae?.pointee = loss.mae
    }
}

@_cdecl("embedrec_trainer_set_rates")
public func embedrecTrainerSetRates(_ h: UnsafeMutableRawPointer?, _ lr: Double, _ weightDecay: Double) -> Int32 {
    status { try holdOutTrainer(h).setRates(learningRate: lr, weightDecay: weightDecay) }
}

@_cdecl("embedrec_trainer_progress")
public func embedrecTrainerProgress(_ h: UnsafeMutableRawPointer?, _ done: UnsafeMutablePointer<Int64>?,
                                    _ total: UnsafeMutablePointer<Int64>?, _ lossSum: UnsafeMutablePointer<Double>?) -> Int32 {
    status {
        let p = try trainer(h).progress.snapshot
        done?.pointee = Int64(p.done)
        total?.pointee = Int64(p.total)
        lossSum?.pointee = p.lossSum
    }
}

@_cdecl("embedrec_trainer_reset_cancel")
public func embedrecTrainerResetCancel(_ h: UnsafeMutableRawPointer?) -> Int32 {
    status { try trainer(h).cancel.clear() }
}

@_cdecl("embedrec_trainer_free")
public func embedrecTrainerFree(_ h: UnsafeMutableRawPointer?) -> Int32 {
    status { try registry.remove(h, as: TrainerBox.self, kind: "trainer") }
}

@_cdecl("embedrec_mf_sgd_block")
public func embedrecMFSGDBlock(_ users: UnsafePointer<Int32>?, _ items: UnsafePointer<Int32>?, _ ratings: UnsafePointer<Float>?,
                               _ n: Int64, _ userFactors: UnsafeMutablePointer<Float>?, _ userBias: UnsafeMutablePointer<Float>?,
                               _ nUsers: Int64, _ itemFactors: UnsafeMutablePointer<Float>?,
                               _ itemBias: UnsafeMutablePointer<Float>?, _ nItems: Int64, _ nFactors: Int32,
                               _ biases: Int32, _ nonNegative: Int32, _ hasYRange: Int32, _ yLo: Double, _ yHi: Double,
                               _ globalBias: Double, _ lr: Double, _ weightDecay: Double, _ userDropout: Double,
                               _ itemDropout: Double, _ threads: Int32, _ seed: UInt64,
                               _ lossSum: UnsafeMutablePointer<Double>?, _ absSum: UnsafeMutablePointer<Double>?) -> Int32 {
    status {
        let count = try Check.length(n, "n")
        guard count >= 1 else { throw CoreError.invalid("a block needs at least one rating, got \(count)") }
        let nu = try Check.int(nUsers, "n_users", in: 1...Int64(Int32.max))
        let ni = try Check.int(nItems, "n_items", in: 1...Int64(Int32.max))
        let k = try Check.int(Int64(nFactors), "n_factors", in: 1...Int64(MFConfig.maxFactors))
        let userCells = try MemoryBudget.product([nu, k], what: "user factors")
        let itemCells = try MemoryBudget.product([ni, k], what: "item factors")
        let data = try RatingSet(users: try Check.pointer(users, "users", count: count),
                                 items: try Check.pointer(items, "items", count: count),
                                 ratings: try Check.pointer(ratings, "ratings", count: count),
                                 count: count, nUsers: nu, nItems: ni, what: "block ratings")
        let uf = try Check.mutablePointer(userFactors, "user_factors", count: userCells)
        let ub = try Check.mutablePointer(userBias, "user_bias", count: nu)
        let itf = try Check.mutablePointer(itemFactors, "item_factors", count: itemCells)
        let ib = try Check.mutablePointer(itemBias, "item_bias", count: ni)
        for (name, p, c) in [("user_factors", UnsafePointer(uf), userCells), ("item_factors", UnsafePointer(itf), itemCells),
                             ("user_bias", UnsafePointer(ub), nu), ("item_bias", UnsafePointer(ib), ni)] {
            for j in 0..<c where !p[j].isFinite {
                throw CoreError.invalid("\(name)[\(j)] is \(p[j]); parameters must be finite")
            }
        }
        let yRange: (lo: Float, hi: Float)? =
            hasYRange != 0 ? (try Check.finite(yLo, "y_range low"), try Check.finite(yHi, "y_range high")) : nil
        try EmbeddingDropout.validate(user: userDropout, item: itemDropout)
        var options = TrainOptions()
        options.epochs = 1
        options.learningRate = try Check.finite(lr, "lr")
        options.weightDecay = try Check.finite(weightDecay, "weight_decay")
        options.threads = try Check.int(Int64(threads), "n_threads", in: 0...1024)
        options.seed = seed
        let stats = try BlockSGD.run(ratings: data, users: BlockSGD.Tables(factors: uf, biases: ub, rows: nu),
                                     items: BlockSGD.Tables(factors: itf, biases: ib, rows: ni), nFactors: k,
                                     biases: biases != 0, nonNegative: nonNegative != 0, yRange: yRange,
                                     globalBias: try Check.finite(globalBias, "global_bias"), options: options,
                                     dropout: EmbeddingDropout(userRate: Float(userDropout), itemRate: Float(itemDropout)))
        lossSum?.pointee = stats.loss * Double(count)
        absSum?.pointee = stats.mae * Double(count)
    }
}
