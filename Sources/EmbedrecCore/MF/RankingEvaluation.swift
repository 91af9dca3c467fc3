/// Ranking evaluation over the whole catalogue in one pass per user: the same scores and top-k
/// selection as `recommend`, plus the AUC of the user's relevant items against every other
/// candidate, so that `ranking_metrics` scores each (user, item) once and never samples
/// negatives (Krichene & Rendle, KDD 2020: sampled metrics can disagree with exact ones).

/// Relevant items per query, as CSR over query positions.
public struct RelevantItems {
    public let indptr: UnsafePointer<Int64>
    public let indices: UnsafePointer<Int32>

    public init(indptr: UnsafePointer<Int64>, indices: UnsafePointer<Int32>, count: Int, queries: Int, nItems: Int) throws {
        guard indptr[0] == 0, indptr[queries] == Int64(count) else {
            throw CoreError.invalid("relevant_indptr must start at 0 and end at n_relevant (\(count)), got \(indptr[0]) and \(indptr[queries])")
        }
        for q in 0..<queries where indptr[q + 1] < indptr[q] {
            throw CoreError.invalid("relevant_indptr must be non-decreasing; it falls at position \(q + 1)")
        }
        for j in 0..<count where indices[j] < 0 || Int(indices[j]) >= nItems {
            throw CoreError.invalid("relevant item \(indices[j]) at position \(j) is outside 0..<\(nItems)")
        }
        self.indptr = indptr
        self.indices = indices
    }
}

extension MFModel {
    /// For each query user: the top-k items among the candidates (every item but the user's
    /// seen ones), best first, padded with -1; and the AUC of the user's relevant items (those
    /// not seen) against the other candidates: the share of (relevant, other) pairs whose
    /// scores are in order, ties counting a half; NaN when either side is empty.
    public func rankingEvaluation(users: UnsafePointer<Int32>, count: Int, k: Int, relevant: RelevantItems,
                                  seen: SeenItems?, threads: Int, outItems: UnsafeMutablePointer<Int32>,
                                  outAUC: UnsafeMutablePointer<Double>) {
        let nItems = config.nItems
        let n = resolveThreads(threads, work: count * nItems, minPerThread: 200_000)
        let ptrs = UncheckedSendable((users, outItems, outAUC))
        let block = scoringBlock
        parallelChunks(count: count, chunks: n) { _, range in
            let (us, oi, oa) = ptrs.value
            var heap = TopK(k: k)
            let blockScores = Buffer<Float>(repeating: 0, count: block * nItems)
            // 0: a candidate, 1: seen (not ranked), 2: relevant
            var kind = [UInt8](repeating: 0, count: nItems)
            var positiveScores = [Float]()
            var dummy = [Float](repeating: 0, count: k)
            for q in range {
                let inBlock = (q - range.lowerBound) % block
                if inBlock == 0 {
                    self.scoreBlock(users: us + q, count: min(block, range.upperBound - q), into: blockScores.base)
                }
                let scores = blockScores.base + inBlock * nItems
                let u = Int(us[q])
                heap.reset()
                // Seen items get a NaN score: it is neither above, below nor equal to anything,
                // so the scans below pass them over without looking at `kind`.
                var nSeen = 0
                if let seen {
                    for j in Int(seen.indptr[u])..<Int(seen.indptr[u + 1]) where kind[Int(seen.indices[j])] == 0 {
                        kind[Int(seen.indices[j])] = 1
                        scores[Int(seen.indices[j])] = .nan
                        nSeen += 1
                    }
                }
                var positives = 0
                positiveScores.removeAll(keepingCapacity: true)
                for j in Int(relevant.indptr[q])..<Int(relevant.indptr[q + 1]) where kind[Int(relevant.indices[j])] == 0 {
                    kind[Int(relevant.indices[j])] = 2
                    positiveScores.append(scores[Int(relevant.indices[j])])
                    positives += 1
                }
                heap.offerAll(scores, count: nItems)
                dummy.withUnsafeMutableBufferPointer { heap.write(items: oi + q * k, scores: $0.baseAddress!) }
                let nNegatives = nItems - nSeen - positives
                if positives == 0 || nNegatives == 0 {
                    oa[q] = .nan
                } else if positives <= 64 {
                    // Few relevant items: one pass over every item, each compared with all
                    // relevant scores at once (eight lanes a step, no branches). The pass also
                    // compares the relevant items with each other, which adds exactly P²/2
                    // (each pair once in order, or twice a half when tied; each with itself a
                    // half); seen items (NaN) add nothing.
                    while positiveScores.count % 8 != 0 { positiveScores.append(-.infinity) }  // never above, never equal
                    var above = SIMD8<Int32>(), equal = SIMD8<Int32>()
                    let one = SIMD8<Int32>(repeating: 1), none = SIMD8<Int32>()
                    positiveScores.withUnsafeBufferPointer { pos in
                        let lanes = pos.count
                        if lanes == 8 {
                            let p = Kernels.load8(pos.baseAddress!)
                            for i in 0..<nItems {
                                let v = SIMD8<Float>(repeating: scores[i])
                                above &+= none.replacing(with: one, where: p .> v)
                                equal &+= none.replacing(with: one, where: p .== v)
                            }
                        } else {
                            for i in 0..<nItems {
                                let v = SIMD8<Float>(repeating: scores[i])
                                var c = 0
                                while c < lanes {
                                    let p = Kernels.load8(pos.baseAddress! + c)
                                    above &+= none.replacing(with: one, where: p .> v)
                                    equal &+= none.replacing(with: one, where: p .== v)
                                    c &+= 8
                                }
                            }
                        }
                    }
                    let within = 0.5 * Double(positives) * Double(positives)
                    let ordered = Double(above.wrappedSum()) + 0.5 * Double(equal.wrappedSum()) - within
                    oa[q] = ordered / (Double(positives) * Double(nNegatives))
                } else {
                    // Many: the relevant scores sorted (P log P), then for each other candidate
                    // the relevant ones above it by a branch-free binary search (log P steps of
                    // a compare and a select). Sorting the N other candidates instead and
                    // searching them cost most of the AUC's time (N log N with a branch
                    // mispredicted about every other comparison).
                    positiveScores.sort()
                    var above = 0, equal = 0
                    positiveScores.withUnsafeBufferPointer { pos in
                        let p = pos.baseAddress!, count = pos.count
                        for i in 0..<nItems where kind[i] == 0 {
                            let s = scores[i]
                            let below = placed(among: p, count) { $0 < s }
                            // Ties (rare): a second search, for the first relevant score above s.
                            let notAbove = below < count && p[below] == s ? placed(among: p, count) { $0 <= s } : below
                            above &+= count &- notAbove
                            equal &+= notAbove &- below
                        }
                    }
                    oa[q] = (Double(above) + 0.5 * Double(equal)) / (Double(positives) * Double(nNegatives))
                }
                if let seen {
                    for j in Int(seen.indptr[u])..<Int(seen.indptr[u + 1]) { kind[Int(seen.indices[j])] = 0 }
                }
                for j in Int(relevant.indptr[q])..<Int(relevant.indptr[q + 1]) { kind[Int(relevant.indices[j])] = 0 }
            }
        }
    }
}

extension MFModel {
    /// Users scored together: as many as keep their score rows within `scoringBytes` (from 4 to
    /// 64), so that each tile of `scoringTile` item rows, read once from memory, stays in cache
    /// while every user of the block is scored against it. Scoring one user (or four) at a time
    /// streamed the whole item table per user: on the ml-20m-shaped set (26,744 items, k=100)
    /// 37 s for every user, bound by memory, against 23 s for `implicit`'s BLAS products.
    static let scoringBytes = 1 << 22
    static let scoringTile = 256

    /// How many users `scoreBlock` takes at once for this catalogue (a multiple of 4).
    var scoringBlock: Int {
        let fit = MFModel.scoringBytes / max(1, 4 * config.nItems)
        return max(4, min(64, fit & ~3))
    }

    /// Raw scores of `count` users (at most `scoringBlock`) against every item, into `out`
    /// (user b's at b · nItems): the same bits as `rawScore`, whose operations and their order
    /// it repeats. Tiles of items, and four users at a time within a tile.
    func scoreBlock(users: UnsafePointer<Int32>, count: Int, into out: UnsafeMutablePointer<Float>) {
        let nItems = config.nItems
        var start = 0
        while start < nItems {
            let end = min(start + MFModel.scoringTile, nItems)
            var g = 0
            while g < count {
                scoreFour(users: users + g, count: min(4, count - g), items: start..<end, into: out + g * nItems)
                g += 4
            }
            start = end
        }
    }

    /// Up to four users against the item rows `items`; user b's scores at b · nItems + i.
    @inline(__always)
    private func scoreFour(users: UnsafePointer<Int32>, count: Int, items: Range<Int>,
                           into out: UnsafeMutablePointer<Float>) {
        let k = self.k, nItems = config.nItems, Q = itemFactors.base
        // Missing users of a short group repeat the first; their scores are not written.
        let u0 = Int(users[0]), u1 = count > 1 ? Int(users[1]) : u0
        let u2 = count > 2 ? Int(users[2]) : u0, u3 = count > 3 ? Int(users[3]) : u0
        let p0 = userFactors.base + u0 * k, p1 = userFactors.base + u1 * k
        let p2 = userFactors.base + u2 * k, p3 = userFactors.base + u3 * k
        let b0 = globalBias + userBias[u0], b1 = globalBias + userBias[u1]
        let b2 = globalBias + userBias[u2], b3 = globalBias + userBias[u3]
        let vectorEnd = k & ~7
        for i in items {
            let q = Q + i * k
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var j = 0
            while j < vectorEnd {
                let qv = Kernels.load8(q + j)
                a0 += Kernels.load8(p0 + j) * qv
                a1 += Kernels.load8(p1 + j) * qv
                a2 += Kernels.load8(p2 + j) * qv
                a3 += Kernels.load8(p3 + j) * qv
                j &+= 8
            }
            var d0 = a0.sum(), d1 = a1.sum(), d2 = a2.sum(), d3 = a3.sum()
            while j < k {
                d0 += p0[j] * q[j]; d1 += p1[j] * q[j]; d2 += p2[j] * q[j]; d3 += p3[j] * q[j]
                j &+= 1
            }
            let bi = itemBias[i]
            out[i] = b0 + bi + d0
            if count > 1 { out[nItems + i] = b1 + bi + d1 }
            if count > 2 { out[2 * nItems + i] = b2 + bi + d2 }
            if count > 3 { out[3 * nItems + i] = b3 + bi + d3 }
        }
    }
}

/// How many of the ascending `sorted[0..<count]` (count >= 1) satisfy `before`, which holds for
/// a prefix of them: a binary search without branches (each step a compare and a select).
@inline(__always)
private func placed(among sorted: UnsafePointer<Float>, _ count: Int, _ before: (Float) -> Bool) -> Int {
    var base = 0, n = count
    while n > 1 {
        let half = n >> 1
        base = before(sorted[base &+ half]) ? base &+ half : base
        n &-= half
    }
    return base &+ (before(sorted[base]) ? 1 : 0)
}
