/// Top-k queries against a trained model: recommendations (users × items) and nearest
/// neighbours within one table. Scoring and selection run here, multi-threaded over the query
/// rows, because doing them in Python means either a loop of `predict` calls or a full
/// users × items score matrix in memory.

/// The k best (score, index) pairs seen so far: a min-heap on score, so the worst kept entry is
/// at the root and a better candidate replaces it in O(log k). Ties keep the lower index.
struct TopK {
    let k: Int
    private(set) var scores: [Float]
    private(set) var indices: [Int32]
    private(set) var count = 0

    init(k: Int) {
        self.k = k
        scores = [Float](repeating: 0, count: k)
        indices = [Int32](repeating: 0, count: k)
    }

    mutating func reset() { count = 0 }

    /// A score that cannot enter once the heap is full: anything at or below it is rejected by
    /// `offer` when offered in ascending index order (ties keep the lower index). -inf while
    /// the heap still has room.
    var entryBar: Float { count == k ? scores[0] : -.infinity }

    /// Offers scores[0 ..< count] with their indices, in ascending order: once the heap is
    /// full, a score at or below its worst kept one can never enter, so most items cost one
    /// comparison. NaN scores (seen items) are neither above nor below anything: never kept.
    @inline(__always)
    mutating func offerAll(_ scores: UnsafePointer<Float>, count: Int) {
        var bar = entryBar
        for i in 0..<count where scores[i] > bar {
            offer(scores[i], Int32(i))
            bar = entryBar
        }
    }

    @inline(__always)
    private func worse(_ a: Int, than b: Int) -> Bool {
        scores[a] < scores[b] || (scores[a] == scores[b] && indices[a] > indices[b])
    }

    @inline(__always)
    mutating func offer(_ score: Float, _ index: Int32) {
        if count < k {
            scores[count] = score
            indices[count] = index
            count += 1
            var c = count - 1
            while c > 0 {
                let p = (c - 1) / 2
                if worse(c, than: p) { scores.swapAt(c, p); indices.swapAt(c, p); c = p } else { break }
            }
            return
        }
        if score < scores[0] || (score == scores[0] && index > indices[0]) { return }
        scores[0] = score
        indices[0] = index
        var p = 0
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < count && worse(l, than: m) { m = l }
            if r < count && worse(r, than: m) { m = r }
            if m == p { break }
            scores.swapAt(p, m); indices.swapAt(p, m); p = m
        }
    }

    /// Writes the kept entries best first, padding to k with index -1 and score -inf.
    func write(items: UnsafeMutablePointer<Int32>, scores out: UnsafeMutablePointer<Float>) {
        var order = Array(0..<count)
        order.sort { a, b in scores[a] > scores[b] || (scores[a] == scores[b] && indices[a] < indices[b]) }
        for (j, o) in order.enumerated() {
            items[j] = indices[o]
            out[j] = scores[o]
        }
        for j in count..<k {
            items[j] = -1
            out[j] = -.infinity
        }
    }
}

/// Training pairs to skip, as CSR over the model's user rows: the items of user u are
/// indices[indptr[u] ..< indptr[u + 1]].
public struct SeenItems {
    public let indptr: UnsafePointer<Int64>
    public let indices: UnsafePointer<Int32>

    /// Validates the whole structure once so the query loops can trust it.
    public init(indptr: UnsafePointer<Int64>, indices: UnsafePointer<Int32>, count: Int, nUsers: Int, nItems: Int) throws {
        guard indptr[0] == 0, indptr[nUsers] == Int64(count) else {
            throw CoreError.invalid("seen_indptr must start at 0 and end at n_seen (\(count)), got \(indptr[0]) and \(indptr[nUsers])")
        }
        for u in 0..<nUsers where indptr[u + 1] < indptr[u] {
            throw CoreError.invalid("seen_indptr must be non-decreasing; it falls at position \(u + 1)")
        }
        for j in 0..<count where indices[j] < 0 || Int(indices[j]) >= nItems {
            throw CoreError.invalid("seen item \(indices[j]) at position \(j) is outside 0..<\(nItems)")
        }
        self.indptr = indptr
        self.indices = indices
    }
}

public enum SimilarityMetric: Int32 {
    case cosine = 0
    case dot = 1
}

extension MFModel {
    /// For each query user, the k items with the highest predicted rating among the candidates
    /// (all items when `candidates` is nil), skipping that user's seen items. Outputs are
    /// `users.count × k`, best first, padded with -1 / -inf.
    public func recommend(users: UnsafePointer<Int32>, count: Int, k: Int, candidates: UnsafePointer<Int32>?,
                          candidateCount: Int, seen: SeenItems?, threads: Int,
                          outItems: UnsafeMutablePointer<Int32>, outScores: UnsafeMutablePointer<Float>) {
        let nItems = config.nItems
        let work = count * (candidates == nil ? nItems : candidateCount)
        let n = resolveThreads(threads, work: work, minPerThread: 200_000)
        if candidates == nil {
            recommendFromAllItems(users: users, count: count, k: k, seen: seen, threads: n, outItems: outItems,
                                  outScores: outScores)
            return
        }
        let ptrs = UncheckedSendable((users, candidates, outItems, outScores))
        parallelChunks(count: count, chunks: n) { _, range in
            let (us, cands, oi, os) = ptrs.value
            var heap = TopK(k: k)
            var skip = [Bool](repeating: false, count: seen == nil ? 0 : nItems)
            for q in range {
                let u = Int(us[q])
                heap.reset()
                if let seen {
                    for j in Int(seen.indptr[u])..<Int(seen.indptr[u + 1]) { skip[Int(seen.indices[j])] = true }
                }
                let total = cands == nil ? nItems : candidateCount
                for c in 0..<total {
                    let i = cands == nil ? c : Int(cands![c])
                    if seen != nil && skip[i] { continue }
                    heap.offer(self.rawScore(user: u, item: i), Int32(i))
                }
                if let seen {
                    for j in Int(seen.indptr[u])..<Int(seen.indptr[u + 1]) { skip[Int(seen.indices[j])] = false }
                }
                heap.write(items: oi + q * k, scores: os + q * k)
                for j in 0..<heap.count { os[q * k + j] = self.output(os[q * k + j]).prediction }
            }
        }
    }

    /// `recommend` with every item a candidate: users scored in blocks against tiles of items
    /// (`scoreBlock`, the bits of `rawScore`), the seen items' scores set to NaN so that the
    /// scan for the top k passes them over, as `rankingEvaluation` does.
    private func recommendFromAllItems(users: UnsafePointer<Int32>, count: Int, k: Int, seen: SeenItems?, threads: Int,
                                       outItems: UnsafeMutablePointer<Int32>, outScores: UnsafeMutablePointer<Float>) {
        let nItems = config.nItems
        let block = scoringBlock
        let ptrs = UncheckedSendable((users, outItems, outScores))
        parallelChunks(count: count, chunks: threads) { _, range in
            let (us, oi, os) = ptrs.value
            var heap = TopK(k: k)
            let blockScores = Buffer<Float>(repeating: 0, count: block * nItems)
            for q in range {
                let inBlock = (q - range.lowerBound) % block
                if inBlock == 0 {
                    self.scoreBlock(users: us + q, count: min(block, range.upperBound - q), into: blockScores.base)
                }
                let scores = blockScores.base + inBlock * nItems
                let u = Int(us[q])
                if let seen {
                    for j in Int(seen.indptr[u])..<Int(seen.indptr[u + 1]) { scores[Int(seen.indices[j])] = .nan }
                }
                heap.reset()
                heap.offerAll(scores, count: nItems)
                heap.write(items: oi + q * k, scores: os + q * k)
                for j in 0..<heap.count { os[q * k + j] = self.output(os[q * k + j]).prediction }
            }
        }
    }

    /// For each query row of the user table (`ofItems == false`) or the item table, the k most
    /// similar other rows of the same table, best first, never the row itself. Cosine treats a
    /// zero vector as similar to nothing (score 0).
    public func similar(ofItems: Bool, rows: UnsafePointer<Int32>, count: Int, k: Int, metric: SimilarityMetric,
                        threads: Int, outRows: UnsafeMutablePointer<Int32>, outScores: UnsafeMutablePointer<Float>) {
        let table = ofItems ? itemFactors : userFactors
        let n = ofItems ? config.nItems : config.nUsers
        let dim = self.k
        var inverseNorms = [Float](repeating: 1, count: metric == .cosine ? n : 0)
        if metric == .cosine {
            for r in 0..<n {
                let norm = Kernels.dot(table.base + r * dim, table.base + r * dim, dim).squareRoot()
                inverseNorms[r] = norm > 0 ? 1 / norm : 0
            }
        }
        let threadsUsed = resolveThreads(threads, work: count * n, minPerThread: 200_000)
        let ptrs = UncheckedSendable((rows, outRows, outScores, table.base))
        inverseNorms.withUnsafeBufferPointer { norms in
            let normsBox = UncheckedSendable(norms)
            parallelChunks(count: count, chunks: threadsUsed) { _, range in
                let (qs, orows, oscores, base) = ptrs.value
                let inv = normsBox.value
                var heap = TopK(k: k)
                for q in range {
                    let a = Int(qs[q])
                    heap.reset()
                    let va = base + a * dim
                    for b in 0..<n where b != a {
                        var s = Kernels.dot(va, base + b * dim, dim)
                        if metric == .cosine { s *= inv[a] * inv[b] }
                        heap.offer(s, Int32(b))
                    }
                    heap.write(items: orows + q * k, scores: oscores + q * k)
                }
            }
        }
    }
}
