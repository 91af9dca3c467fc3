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
        let block = MFModel.scoringBlock
        parallelChunks(count: count, chunks: n) { _, range in
            let (us, oi, oa) = ptrs.value
            var heap = TopK(k: k)
            let blockScores = Buffer<Float>(repeating: 0, count: block * nItems)
            // 0: a candidate, 1: seen (not ranked), 2: relevant
            var kind = [UInt8](repeating: 0, count: nItems)
            var negatives = [Float](), positiveScores = [Float]()
            var dummy = [Float](repeating: 0, count: k)
            for q in range {
                let inBlock = (q - range.lowerBound) % block
                if inBlock == 0 {
                    self.scoreBlock(users: us + q, count: min(block, range.upperBound - q), into: blockScores.base)
                }
                let scores = blockScores.base + inBlock * nItems
                let u = Int(us[q])
                heap.reset()
                var nSeen = 0
                if let seen {
                    for j in Int(seen.indptr[u])..<Int(seen.indptr[u + 1]) where kind[Int(seen.indices[j])] == 0 {
                        kind[Int(seen.indices[j])] = 1
                        nSeen += 1
                    }
                }
                var positives = 0
                for j in Int(relevant.indptr[q])..<Int(relevant.indptr[q + 1]) where kind[Int(relevant.indices[j])] == 0 {
                    kind[Int(relevant.indices[j])] = 2
                    positives += 1
                }
                for i in 0..<nItems where kind[i] != 1 { heap.offer(scores[i], Int32(i)) }
                dummy.withUnsafeMutableBufferPointer { heap.write(items: oi + q * k, scores: $0.baseAddress!) }
                let nNegatives = nItems - nSeen - positives
                if positives == 0 || nNegatives == 0 {
                    oa[q] = .nan
                } else if positives <= 64 {
                    // Few relevant items: one pass over the other candidates, each compared
                    // with all relevant scores at once (eight lanes a step, no branches).
                    positiveScores.removeAll(keepingCapacity: true)
                    for i in 0..<nItems where kind[i] == 2 { positiveScores.append(scores[i]) }
                    while positiveScores.count % 8 != 0 { positiveScores.append(-.infinity) }  // never above, never equal
                    var above = SIMD8<Int32>(), equal = SIMD8<Int32>()
                    let one = SIMD8<Int32>(repeating: 1), none = SIMD8<Int32>()
                    positiveScores.withUnsafeBufferPointer { pos in
                        let lanes = pos.count
                        for i in 0..<nItems where kind[i] == 0 {
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
                    let ordered = Double(above.wrappedSum()) + 0.5 * Double(equal.wrappedSum())
                    oa[q] = ordered / (Double(positives) * Double(nNegatives))
                } else {
                    // Many: sort the other candidates' scores once, then binary searches.
                    negatives.removeAll(keepingCapacity: true)
                    for i in 0..<nItems where kind[i] == 0 { negatives.append(scores[i]) }
                    negatives.sort()
                    var ordered = 0.0
                    for i in 0..<nItems where kind[i] == 2 {
                        let sp = scores[i]
                        let below = lowerBound(negatives, sp), upTo = upperBound(negatives, sp)
                        ordered += Double(below) + 0.5 * Double(upTo - below)
                    }
                    oa[q] = ordered / (Double(positives) * Double(nNegatives))
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
    /// Users scored together against each item row, so that a row read from memory serves
    /// several users (the item table is read once per block instead of once per user).
    static let scoringBlock = 4

    /// Raw scores of up to `scoringBlock` users against every item, into `out` (user b's at
    /// b · nItems): the same bits as `rawScore`, whose operations and their order it repeats.
    func scoreBlock(users: UnsafePointer<Int32>, count: Int, into out: UnsafeMutablePointer<Float>) {
        let k = self.k, nItems = config.nItems, Q = itemFactors.base
        let B = MFModel.scoringBlock
        // Missing users of a short block repeat the first; their scores are not written.
        var rows = [Int](repeating: Int(users[0]), count: B)
        for b in 0..<count { rows[b] = Int(users[b]) }
        let p0 = userFactors.base + rows[0] * k, p1 = userFactors.base + rows[1] * k
        let p2 = userFactors.base + rows[2] * k, p3 = userFactors.base + rows[3] * k
        var base = [Float](repeating: 0, count: B)
        for b in 0..<B { base[b] = globalBias + userBias[rows[b]] }
        let vectorEnd = k & ~7
        for i in 0..<nItems {
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
            let dots = (d0, d1, d2, d3)
            out[i] = base[0] + bi + dots.0
            if count > 1 { out[nItems + i] = base[1] + bi + dots.1 }
            if count > 2 { out[2 * nItems + i] = base[2] + bi + dots.2 }
            if count > 3 { out[3 * nItems + i] = base[3] + bi + dots.3 }
        }
    }
}

/// The first position in the sorted `values` whose value is >= `x`.
private func lowerBound(_ values: [Float], _ x: Float) -> Int {
    var lo = 0, hi = values.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if values[mid] < x { lo = mid + 1 } else { hi = mid }
    }
    return lo
}

/// The first position in the sorted `values` whose value is > `x`.
private func upperBound(_ values: [Float], _ x: Float) -> Int {
    var lo = 0, hi = values.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if values[mid] <= x { lo = mid + 1 } else { hi = mid }
    }
    return lo
}
