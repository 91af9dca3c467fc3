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
/// few steps an epoch keep it close to the exact solution. An epoch solves every user, then
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
        let ptrs = UncheckedSendable((target, fixed, base.base, lossParts.base))
        parallelChunks(count: rows.nRows, chunks: chunks) { chunk, range in
            let (X, Y, A0, lossOut) = ptrs.value
            let scratch = Buffer<Float>(repeating: 0, count: 5 * k + 2 * longest)
            let r = scratch.base, p = scratch.base + k, ap = scratch.base + 2 * k
            // With the loss: (FᵀF + λI) x and (FᵀF + λI) p, and per item of the row f_j · x
            // and f_j · p.
            let a0x = scratch.base + 3 * k, a0p = scratch.base + 4 * k
            let sx = scratch.base + 5 * k, sp = sx + longest
            var lossSum = 0.0
            var reported = range.lowerBound
            /// out = (YᵀY + λI) v + Σ_{i∈row} (c_i − 1)(y_i · v) y_i
            func applyA(_ row: Int, _ v: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
                ImplicitALSTrainer.matrixVector(A0, v, out, k: k)
                if withLoss { a0p.update(from: out, count: k) }
                let first = Int(rows.indptr[row])
                for j in first..<Int(rows.indptr[row + 1]) {
                    let y = Y + Int(rows.indices[j]) * k
                    let extra = alpha * rows.weights[j]
                    if extra == 0 && !withLoss { continue }
                    let d = ImplicitALSTrainer.fusedDot(y, v, k)
                    if withLoss { sp[j - first] = d }
                    if extra != 0 { ImplicitALSTrainer.fusedAxpy(out, y, k, extra * d) }
                }
            }
            for row in range {
                if (row - range.lowerBound) % 256 == 0 {
                    if cancel.isSet { break }
                    progress.add(row - reported, loss: 0)
                    reported = row
                }
                let x = X + row * k
                let first = Int(rows.indptr[row]), end = Int(rows.indptr[row + 1])
                // r = b − A x = −(YᵀY + λI) x + Σ_i (c_i − (c_i − 1) y_i · x) y_i, one pass over the items
                ImplicitALSTrainer.matrixVector(A0, x, r, k: k)
                if withLoss { a0x.update(from: r, count: k) }
                for a in 0..<k { r[a] = -r[a] }
                for j in first..<end {
                    let y = Y + Int(rows.indices[j]) * k
                    let extra = alpha * rows.weights[j]
                    let s = ImplicitALSTrainer.fusedDot(y, x, k)
                    if withLoss { sx[j - first] = s }
                    ImplicitALSTrainer.fusedAxpy(r, y, k, 1 + extra - extra * s)
                }
                p.update(from: r, count: k)
                var rs = ImplicitALSTrainer.fusedDot(r, r, k)
                for _ in 0..<steps {
                    if rs < 1e-20 { break }
                    applyA(row, p, ap)
                    let pap = ImplicitALSTrainer.fusedDot(p, ap, k)
                    if !(pap > 0) { break }
                    let step = rs / pap
                    ImplicitALSTrainer.fusedAxpy(x, p, k, step)
                    if withLoss {  // x moved by step · p: so do (FᵀF + λI) x and each f_j · x
                        ImplicitALSTrainer.fusedAxpy(a0x, a0p, k, step)
                        for j in 0..<(end - first) { sx[j] = Kernels.madd(sx[j], step, sp[j]) }
                    }
                    ImplicitALSTrainer.fusedAxpy(r, ap, k, -step)
                    let rsNew = ImplicitALSTrainer.fusedDot(r, r, k)
                    let beta = rsNew / rs
                    for a in 0..<k { p[a] = r[a] + beta * p[a] }
                    rs = rsNew
                }
                if withLoss {
                    var term = Double(Kernels.dot(x, a0x, k))
                    for j in first..<end {
                        let s = Double(sx[j - first]), extra = Double(alpha * rows.weights[j])
                        term += extra * s * s - 2 * (1 + extra) * s + 1 + extra
                    }
                    lossSum += term
                }
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
