/// Weighted matrix factorisation for implicit feedback (Hu, Koren & Volinsky 2008), trained by
/// alternating least squares with a few conjugate-gradient steps per row (Takács, Pilászy &
/// Tikk 2011), as the `implicit` library does.
///
/// Every (user, item) cell takes part: preference 1 where there is an interaction of weight w,
/// with confidence c = 1 + alpha · w, and 0 with confidence 1 everywhere else. The objective is
///
///     Σ_{u,i} c_ui (p_ui − x_u · y_i)² + λ (Σ_u ‖x_u‖² + Σ_i ‖y_i‖²).
///
/// With the items fixed, each user's row solves (YᵀY + λI + Σ_{i∈u} (c_ui − 1) y_i y_iᵀ) x_u =
/// Σ_{i∈u} c_ui y_i. YᵀY is computed once per half-epoch, so a row costs O(|u| k + k²) per CG
/// step instead of the O(k³) of a direct solve; CG starts from the row's current value, so a
/// few steps an epoch keep it close to the exact solution. Rows of few interactions, where it
/// costs less, are solved exactly instead (`ShortRowSolves`). An epoch solves every user, then
/// every item. Rows are independent, so the result does not depend on the thread count except
/// for the order YᵀY's partial sums are added in (per chunk, in chunk order: identical runs
/// for the same thread count).
public final class ImplicitALSTrainer: Trainer {
    public let model: MFModel
    public let data: RatingSet
    public var nUsers: Int { model.config.nUsers }
    public let options: ImplicitOptions
    public let cancel = CancelFlag()
    public let progress = EpochProgress()
    public var epochsDone = 0
    let byUser: InteractionRows
    let byItem: InteractionRows
    /// Σ (c − 1) over the interactions: the objective's extra weight beyond one per cell.
    let extraWeight: Double
    /// YᵀY of the item rows as the last epoch left them (computed for its loss), reused by the
    /// next user step; nil when the item rows may have changed since.
    private var itemGram: [Double]?

    init(model: MFModel, data: RatingSet, options: ImplicitOptions) {
        self.model = model
        self.data = data
        self.options = options
        byUser = InteractionRows(rows: data.users.base, columns: data.items.base, weights: data.ratings.base,
                                 count: data.count, nRows: model.config.nUsers, nColumns: model.config.nItems)
        byItem = InteractionRows(rows: data.items.base, columns: data.users.base, weights: data.ratings.base,
                                 count: data.count, nRows: model.config.nItems, nColumns: model.config.nUsers)
        var extra = 0.0
        for j in 0..<byUser.count { extra += Double(options.alpha * byUser.weights[j]) }
        extraWeight = extra
    }

    public func runEpoch() throws -> EpochStats {
        try model.useGuard.withWriting {
            let start = monotonicSeconds()
            let nU = model.config.nUsers, nI = model.config.nItems
            progress.start(total: nU + nI)
            let itemsBefore = itemGram ?? gram(model.itemFactors.base, rows: nI)
            itemGram = nil  // an interrupted epoch leaves nothing cached
            _ = try solve(rows: byUser, target: model.userFactors.base, fixed: model.itemFactors.base, nFixed: nI,
                          gram: itemsBefore, withLoss: false)
            let itemTerms = try solve(rows: byItem, target: model.itemFactors.base, fixed: model.userFactors.base,
                                      nFixed: nU, gram: gram(model.userFactors.base, rows: nU), withLoss: true)
            // The objective Σ_{u,i} c (p − s)² + λ (‖X‖² + ‖Y‖²) divided by the total confidence
            // over all cells (nUsers · nItems + Σ (c − 1)), so that it reads as a weighted mean
            // squared error plus the penalty's share. The item half returns all of it but λ‖X‖².
            var userNorms = 0.0
            let X = model.userFactors.base
            for j in 0..<(nU * model.k) { userNorms += Double(X[j]) * Double(X[j]) }
            let loss = (itemTerms + Double(options.regularization) * userNorms) / (Double(nU) * Double(nI) + extraWeight)
            itemGram = gram(model.itemFactors.base, rows: nI)  // the next epoch's user step starts from these item rows
            progress.add(0, loss: loss)
            epochsDone += 1
            return EpochStats(loss: loss, mae: 0, seconds: monotonicSeconds() - start)
        }
    }

    private var threadCount: Int { resolveThreads(options.threads, work: data.count + nUsers, minPerThread: 20_000) }

    /// Fᵀ F over the n rows of `factors` (k × k, row-major): float rows added with SIMD per
    /// chunk (as a float BLAS would), the chunks' sums then added in Double in chunk order.
    private func gram(_ factors: UnsafePointer<Float>, rows n: Int) -> [Double] {
        let k = model.k
        let chunks = resolveThreads(options.threads, work: n * k, minPerThread: 200_000)
        let partial = Buffer<Float>(repeating: 0, count: chunks * k * k)
        let ptrs = UncheckedSendable((factors, partial.base))
        parallelChunks(count: n, chunks: chunks) { c, range in
            let (f, out) = ptrs.value
            let g = out + c * k * k
            var r = range.lowerBound
            while r < range.upperBound {
                let take = min(4, range.upperBound - r)
                ImplicitALSTrainer.addOuterProducts(f + r * k, rows: take, k: k, into: g)
                r += take
            }
        }
        var total = [Double](repeating: 0, count: k * k)
        for c in 0..<chunks {
            for j in 0..<(k * k) { total[j] += Double(partial[c * k * k + j]) }
        }
        for a in 0..<k { for b in 0..<a { total[a * k + b] = total[b * k + a] } }  // upper part computed
        return total
    }

    /// g += Σ_r row_r row_rᵀ over `rows` (1...4) consecutive rows, on the upper triangle (each
    /// row a of g from the vector holding column a on): four rows per pass over g, so g's
    /// rows are loaded and stored a quarter as often.
    @inline(__always)
    static func addOuterProducts(_ f: UnsafePointer<Float>, rows: Int, k: Int, into g: UnsafeMutablePointer<Float>) {
        let r0 = f, r1 = rows > 1 ? f + k : f, r2 = rows > 2 ? f + 2 * k : f, r3 = rows > 3 ? f + 3 * k : f
        let vectorEnd = k & ~7
        for a in 0..<k {
            let c0 = r0[a], c1 = rows > 1 ? r1[a] : 0, c2 = rows > 2 ? r2[a] : 0, c3 = rows > 3 ? r3[a] : 0
            let v0 = SIMD8<Float>(repeating: c0), v1 = SIMD8<Float>(repeating: c1)
            let v2 = SIMD8<Float>(repeating: c2), v3 = SIMD8<Float>(repeating: c3)
            let ga = g + a * k
            var j = a & ~7
            while j < vectorEnd {
                var acc = Kernels.load8(ga + j)
                acc += v0 * Kernels.load8(r0 + j)
                acc += v1 * Kernels.load8(r1 + j)
                acc += v2 * Kernels.load8(r2 + j)
                acc += v3 * Kernels.load8(r3 + j)
                Kernels.store8(acc, ga + j)
                j &+= 8
            }
            while j < k {
                ga[j] += c0 * r0[j] + c1 * r1[j] + c2 * r2[j] + c3 * r3[j]
                j &+= 1
            }
        }
    }

    /// a · b with fused multiply-adds (`Kernels.madd`) and two accumulators: ALS spends its
    /// time in these products and the `fusedAxpy` below, and no other path needs its bits.
    @inline(__always)
    static func fusedDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        var j = 0
        while j &+ 16 <= k {
            s0 = Kernels.madd(s0, Kernels.load8(a + j), Kernels.load8(b + j))
            s1 = Kernels.madd(s1, Kernels.load8(a + j + 8), Kernels.load8(b + j + 8))
            j &+= 16
        }
        if j &+ 8 <= k {
            s0 = Kernels.madd(s0, Kernels.load8(a + j), Kernels.load8(b + j))
            j &+= 8
        }
        var d = (s0 + s1).sum()
        while j < k {
            d = Kernels.madd(d, a[j], b[j])
            j &+= 1
        }
        return d
    }

    /// dst += s · src with fused multiply-adds.
    @inline(__always)
    static func fusedAxpy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ k: Int, _ s: Float) {
        let vs = SIMD8<Float>(repeating: s)
        var j = 0
        while j &+ 8 <= k {
            Kernels.store8(Kernels.madd(Kernels.load8(dst + j), vs, Kernels.load8(src + j)), dst + j)
            j &+= 8
        }
        while j < k {
            dst[j] = Kernels.madd(dst[j], s, src[j])
            j &+= 1
        }
    }

    /// Short rows are solved together: their conjugate-gradient steps run side by side, so each
    /// product with YᵀY + λI reads the k × k matrix once for up to `group` rows
    /// (`matrixVectors`). A row's arithmetic is the same as alone, so are its bits. Only while
    /// the group's fixed-side rows (the items of a user, the users of an item) total at most
    /// `groupFloats` floats, the L1 cache's 32 KB: a row's steps reread its items' rows, and
    /// long rows side by side pushed each other's out of the cache (the goodbooks shape, 69
    /// items per user and 369 users per item, took 20-30% longer an epoch grouped throughout;
    /// where most rows are short, the k² products are most of the work).
    static let group = 4
    static let groupFloats = 8192

    /// outs[g] = M vs[g] for `count` vectors: four at once read each pair of M's rows once for
    /// all four (the matrix, 40 KB at k = 100, streams from the L2 cache once per four rows'
    /// products instead of once per row). Each entry is summed as `matrixVector` sums it, so
    /// the results are its bits; fewer than four vectors go through it one by one.
    @inline(__always)
    static func matrixVectors(_ m: UnsafePointer<Float>, _ vs: [UnsafePointer<Float>], _ outs: [UnsafeMutablePointer<Float>],
                              count: Int, k: Int) {
        guard count == 4 else {
            for g in 0..<count { matrixVector(m, vs[g], outs[g], k: k) }
            return
        }
        let v0 = vs[0], v1 = vs[1], v2 = vs[2], v3 = vs[3]
        let o0 = outs[0], o1 = outs[1], o2 = outs[2], o3 = outs[3]
        let vectorEnd = k & ~7, blockEnd = k & ~3
        var a = 0
        while a < blockEnd {  // rows matrixVector takes four at a time, here two at a time
            let ma = m + a * k, mb = ma + k
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
            var j = 0
            while j < vectorEnd {
                let xa = Kernels.load8(ma + j), xb = Kernels.load8(mb + j)
                let w0 = Kernels.load8(v0 + j), w1 = Kernels.load8(v1 + j)
                let w2 = Kernels.load8(v2 + j), w3 = Kernels.load8(v3 + j)
                a0 = Kernels.madd(a0, xa, w0); b0 = Kernels.madd(b0, xb, w0)
                a1 = Kernels.madd(a1, xa, w1); b1 = Kernels.madd(b1, xb, w1)
                a2 = Kernels.madd(a2, xa, w2); b2 = Kernels.madd(b2, xb, w2)
                a3 = Kernels.madd(a3, xa, w3); b3 = Kernels.madd(b3, xb, w3)
                j &+= 8
            }
            var da0 = a0.sum(), da1 = a1.sum(), da2 = a2.sum(), da3 = a3.sum()
            var db0 = b0.sum(), db1 = b1.sum(), db2 = b2.sum(), db3 = b3.sum()
            while j < k {
                da0 = Kernels.madd(da0, ma[j], v0[j]); db0 = Kernels.madd(db0, mb[j], v0[j])
                da1 = Kernels.madd(da1, ma[j], v1[j]); db1 = Kernels.madd(db1, mb[j], v1[j])
                da2 = Kernels.madd(da2, ma[j], v2[j]); db2 = Kernels.madd(db2, mb[j], v2[j])
                da3 = Kernels.madd(da3, ma[j], v3[j]); db3 = Kernels.madd(db3, mb[j], v3[j])
                j &+= 1
            }
            o0[a] = da0; o0[a + 1] = db0; o1[a] = da1; o1[a + 1] = db1
            o2[a] = da2; o2[a + 1] = db2; o3[a] = da3; o3[a + 1] = db3
            a += 2
        }
        while a < k {
            o0[a] = fusedDot(m + a * k, v0, k); o1[a] = fusedDot(m + a * k, v1, k)
            o2[a] = fusedDot(m + a * k, v2, k); o3[a] = fusedDot(m + a * k, v3, k)
            a += 1
        }
    }

    /// out = M v for a k × k row-major M: four rows at a time, sharing each load of v.
    @inline(__always)
    static func matrixVector(_ m: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, k: Int) {
        let vectorEnd = k & ~7
        var a = 0
        while a + 4 <= k {
            let m0 = m + a * k, m1 = m0 + k, m2 = m1 + k, m3 = m2 + k
            var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
            var j = 0
            while j < vectorEnd {
                let x = Kernels.load8(v + j)
                s0 = Kernels.madd(s0, Kernels.load8(m0 + j), x)
                s1 = Kernels.madd(s1, Kernels.load8(m1 + j), x)
                s2 = Kernels.madd(s2, Kernels.load8(m2 + j), x)
                s3 = Kernels.madd(s3, Kernels.load8(m3 + j), x)
                j &+= 8
            }
            var d0 = s0.sum(), d1 = s1.sum(), d2 = s2.sum(), d3 = s3.sum()
            while j < k {
                d0 = Kernels.madd(d0, m0[j], v[j]); d1 = Kernels.madd(d1, m1[j], v[j])
                d2 = Kernels.madd(d2, m2[j], v[j]); d3 = Kernels.madd(d3, m3[j], v[j])
                j &+= 1
            }
            out[a] = d0; out[a + 1] = d1; out[a + 2] = d2; out[a + 3] = d3
            a += 4
        }
        while a < k {
            out[a] = fusedDot(m + a * k, v, k)
            a += 1
        }
    }

    /// One half-epoch: every row of `target` solved against the fixed side by `cgSteps` steps
    /// of conjugate gradients, starting from its current value.
    ///
    /// `withLoss` (the item half, the last of an epoch): also returns the objective less the
    /// fixed side's penalty, Σ_rows [yᵀ(FᵀF + λI)y + Σ_{j∈row} ((c − 1) s_j² − 2 c s_j + c)]
    /// with y the row's new value and s_j = f_j · y. Summed over the items, that is
    /// Σ_{u,i} c (p − s)² + λ‖Y‖², as Σ_{u,i} c (p − s)² = Σ_i [y_iᵀ XᵀX y_i +
    /// Σ_{u∈i} ((c − 1) s² − 2 c s + c)] (a cell without an interaction adds s² = its part of
    /// y_iᵀ XᵀX y_i). No pass of its own: CG moves y by steps a·p, so (FᵀF + λI) y and each s_j
    /// are kept up to date from the products each step computes anyway, (FᵀF + λI) p and f_j · p.
    /// A separate pass over the users cost about 8% of an epoch on the goodbooks shape.
    private func solve(rows: InteractionRows, target: UnsafeMutablePointer<Float>, fixed: UnsafePointer<Float>,
                       nFixed: Int, gram gramD: [Double], withLoss: Bool) throws -> Double {
        let k = model.k
        // A's constant part, YᵀY + λI, in float for the row loops.
        let base = Buffer<Float>(repeating: 0, count: k * k)
        for j in 0..<(k * k) { base[j] = Float(gramD[j]) }
        for a in 0..<k { base[a * k + a] += options.regularization }
        let alpha = options.alpha, steps = options.cgSteps
        let cancel = self.cancel, progress = self.progress
        let chunks = threadCount
        let lossParts = Buffer<Double>(repeating: 0, count: chunks)
        let longest = withLoss ? rows.longestRow : 0
        let group = ImplicitALSTrainer.group, groupFloats = ImplicitALSTrainer.groupFloats
        let exact = ShortRowSolves(rows: rows, fixed: fixed, nFixed: nFixed, gram: gramD,
                                   regularization: options.regularization, k: k, steps: steps, threads: options.threads,
                                   forcedLimit: options.shortRowLimit)
        let exactLimit = exact?.limit ?? -1
        let ptrs = UncheckedSendable((target, fixed, base.base, lossParts.base))
        parallelChunks(count: rows.nRows, chunks: chunks) { chunk, range in
            let (X, Y, A0, lossOut) = ptrs.value
            let exactScratch = exact.map { ShortRowSolves.Scratch(limit: $0.limit) }
            // Per row of a group: r, p, Ap; with the loss (FᵀF + λI) x and (FᵀF + λI) p, and per
            // item of the row f_j · x and f_j · p.
            let perRow = 5 * k + 2 * longest
            let scratch = Buffer<Float>(repeating: 0, count: group * perRow)
            func r(_ g: Int) -> UnsafeMutablePointer<Float> { scratch.base + g * perRow }
            func p(_ g: Int) -> UnsafeMutablePointer<Float> { scratch.base + g * perRow + k }
            func ap(_ g: Int) -> UnsafeMutablePointer<Float> { scratch.base + g * perRow + 2 * k }
            func a0x(_ g: Int) -> UnsafeMutablePointer<Float> { scratch.base + g * perRow + 3 * k }
            func a0p(_ g: Int) -> UnsafeMutablePointer<Float> { scratch.base + g * perRow + 4 * k }
            func sx(_ g: Int) -> UnsafeMutablePointer<Float> { scratch.base + g * perRow + 5 * k }
            func sp(_ g: Int) -> UnsafeMutablePointer<Float> { scratch.base + g * perRow + 5 * k + longest }
            var rs = [Float](repeating: 0, count: group)
            var active = [Bool](repeating: false, count: group)
            var inputs = [UnsafePointer<Float>](repeating: A0, count: group)
            var outputs = [UnsafeMutablePointer<Float>](repeating: scratch.base, count: group)
            var members = [Int](repeating: 0, count: group)
            var lossSum = 0.0
            var reported = range.lowerBound
            var start = range.lowerBound
            while start < range.upperBound {
                if start - reported >= 256 || start == range.lowerBound {
                    if cancel.isSet { break }
                    progress.add(start - reported, loss: 0)
                    reported = start
                }
                if let exact, let exactScratch, rows.length(of: start) <= exactLimit {
                    lossSum += exact.solve(row: start, rows: rows, fixed: Y, alpha: alpha, x: X + start * k,
                                           scratch: exactScratch, withLoss: withLoss)
                    start += 1
                    continue
                }
                // Short rows go together while their items' rows stay within groupFloats.
                var n = 1, pairs = rows.length(of: start)
                while n < group && start + n < range.upperBound && rows.length(of: start + n) > exactLimit
                        && (pairs + rows.length(of: start + n)) * k <= groupFloats {
                    pairs += rows.length(of: start + n)
                    n += 1
                }
                // r = b − A x = −(YᵀY + λI) x + Σ_i (c_i − (c_i − 1) y_i · x) y_i, one pass over the items
                for g in 0..<n {
                    inputs[g] = UnsafePointer(X + (start + g) * k)
                    outputs[g] = r(g)
                }
                ImplicitALSTrainer.matrixVectors(A0, inputs, outputs, count: n, k: k)
                for g in 0..<n {
                    let row = start + g, x = X + row * k, rg = r(g), sxg = sx(g)
                    let first = Int(rows.indptr[row]), end = Int(rows.indptr[row + 1])
                    if withLoss { a0x(g).update(from: rg, count: k) }
                    for a in 0..<k { rg[a] = -rg[a] }
                    for j in first..<end {
                        let y = Y + Int(rows.indices[j]) * k
                        let extra = alpha * rows.weights[j]
                        let s = ImplicitALSTrainer.fusedDot(y, x, k)
                        if withLoss { sxg[j - first] = s }
                        ImplicitALSTrainer.fusedAxpy(rg, y, k, 1 + extra - extra * s)
                    }
                    p(g).update(from: rg, count: k)
                    rs[g] = ImplicitALSTrainer.fusedDot(rg, rg, k)
                    active[g] = true
                }
                for _ in 0..<steps {
                    // The rows still iterating, in order: a row whose residual vanished or whose
                    // direction has no curvature stops, as it would alone.
                    var m = 0
                    for g in 0..<n where active[g] {
                        if rs[g] < 1e-20 { active[g] = false; continue }
                        members[m] = g
                        inputs[m] = UnsafePointer(p(g))
                        outputs[m] = ap(g)
                        m += 1
                    }
                    if m == 0 { break }
                    ImplicitALSTrainer.matrixVectors(A0, inputs, outputs, count: m, k: k)
                    for t in 0..<m {
                        let g = members[t], row = start + g, x = X + row * k
                        let pg = p(g), apg = ap(g), rg = r(g), spg = sp(g), sxg = sx(g)
                        let first = Int(rows.indptr[row]), end = Int(rows.indptr[row + 1])
                        // Ap = (YᵀY + λI) p + Σ_{i∈row} (c_i − 1)(y_i · p) y_i
                        if withLoss { a0p(g).update(from: apg, count: k) }
                        for j in first..<end {
                            let y = Y + Int(rows.indices[j]) * k
                            let extra = alpha * rows.weights[j]
                            if extra == 0 && !withLoss { continue }
                            let d = ImplicitALSTrainer.fusedDot(y, pg, k)
                            if withLoss { spg[j - first] = d }
                            if extra != 0 { ImplicitALSTrainer.fusedAxpy(apg, y, k, extra * d) }
                        }
                        let pap = ImplicitALSTrainer.fusedDot(pg, apg, k)
                        if !(pap > 0) { active[g] = false; continue }
                        let step = rs[g] / pap
                        ImplicitALSTrainer.fusedAxpy(x, pg, k, step)
                        if withLoss {  // x moved by step · p: so do (FᵀF + λI) x and each f_j · x
                            ImplicitALSTrainer.fusedAxpy(a0x(g), a0p(g), k, step)
                            for j in 0..<(end - first) { sxg[j] = Kernels.madd(sxg[j], step, spg[j]) }
                        }
                        ImplicitALSTrainer.fusedAxpy(rg, apg, k, -step)
                        let rsNew = ImplicitALSTrainer.fusedDot(rg, rg, k)
                        let beta = rsNew / rs[g]
                        for a in 0..<k { pg[a] = rg[a] + beta * pg[a] }
                        rs[g] = rsNew
                    }
                }
                if withLoss {
                    for g in 0..<n {
                        let row = start + g, x = X + row * k, sxg = sx(g)
                        let first = Int(rows.indptr[row]), end = Int(rows.indptr[row + 1])
                        var term = Double(Kernels.dot(x, a0x(g), k))
                        for j in first..<end {
                            let s = Double(sxg[j - first]), extra = Double(alpha * rows.weights[j])
                            term += extra * s * s - 2 * (1 + extra) * s + 1 + extra
                        }
                        lossSum += term
                    }
                }
                start += n
            }
            lossOut[chunk] = lossSum
            progress.add(range.upperBound - reported, loss: 0)
        }
        if cancel.isSet { throw CoreError(.cancelled, "training was interrupted") }
        var total = 0.0
        for c in 0..<chunks { total += lossParts[c] }
        return total
    }
}
