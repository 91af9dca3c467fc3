/// Exact ALS solves for rows with few interactions, cheaper than the conjugate-gradient steps.
///
/// A row with fixed-side rows u_1 … u_n (the columns of U), extra confidences e_j = alpha · w_j
/// and confidences c_j = 1 + e_j solves (B + U E Uᵀ) x = U c, with B = FᵀF + λI the same for
/// every row of the half-epoch. With V = B⁻¹U and G = UᵀV (n × n),
///
///     x = V z,   z = (I + E G)⁻¹ c,
///
/// since (B + U E Uᵀ) V z = U z + U E G z = U (I + E G) z = U c. z is computed from the
/// symmetric positive definite M = I + D G D (D = √E, eigenvalues at least 1) as
/// z = c − D M⁻¹ D G c. Each row of V is B⁻¹ times one fixed-side row, computed once per
/// half-epoch for all of them; a row's solve then costs n(n + 1)/2 dot products of length k and an
/// n × n Cholesky factorisation, and no product with the k × k matrix. Each CG step costs one
/// such product (k² multiply-adds, 10,000 at k = 100) whatever the row's length: where most
/// rows are short (most items of the MovieLens sets have a handful of positives), the products
/// were nearly all of an epoch. Rows solved here get the exact least-squares solution the CG
/// steps approach; longer rows, and every row when precomputing V would not pay, keep CG.
struct ShortRowSolves {
    let k: Int
    /// Rows of at most this many interactions are solved exactly (0: none).
    let limit: Int
    /// V = F B⁻¹ (nFixed × k, row-major): row j is B⁻¹ f_j, B symmetric.
    let solved: Buffer<Float>

    /// Estimated instructions of `steps` CG steps on a row of n interactions: the starting
    /// residual and each step take one product with the k × k matrix and a dot and an axpy per
    /// interaction, eight-wide multiply-adds with their loads (about k² / 3 and k / 3).
    static func cgCost(n: Int, k: Int, steps: Int) -> Int { (steps + 1) * (k * k + 2 * n * k) / 3 }

    /// Estimated instructions of the exact solve: G's upper triangle (dot products four at a
    /// time, about k / 5 + 12 each with their reduction), V z (and G z for the loss), and the
    /// scalar Double work on n × n: filling M, the Cholesky factorisation (n³ / 6 multiply-adds
    /// at about four instructions each) and the triangular solves. Fitted against instruction
    /// counts (`valgrind --tool=callgrind`) of MovieLens epochs: at k = 100 and three steps rows
    /// up to 18 long are cheaper solved exactly (measured: 16 did best of 8, 16, 24 and 31).
    static func exactCost(n: Int, k: Int) -> Int {
        n * (n + 1) / 2 * (k / 5 + 12) + 2 * n * k / 3 + 4 * n * n * n / 6 + 20 * n * n
    }

    /// Estimated instructions of preparing the exact path: B⁻¹ (about 2 k³, scalar Double) and
    /// V (a product with B⁻¹ per fixed-side row, four rows at a time: about k² / 4 each).
    static func setupCost(nFixed: Int, k: Int) -> Int { 2 * k * k * k + nFixed * k * k / 4 }

    /// The longest row for which the exact solve costs less than the CG steps.
    static func longestCheaper(k: Int, steps: Int) -> Int {
        var n = 0
        while exactCost(n: n + 1, k: k) < cgCost(n: n + 1, k: k, steps: steps) { n += 1 }
        return n
    }

    /// The exact path for this half-epoch, or nil when what it saves on the short rows does not
    /// pay for B⁻¹ and V. `forcedLimit` (tests): solve rows up to that long exactly regardless
    /// of cost, 0 for none.
    init?(rows: InteractionRows, fixed: UnsafePointer<Float>, nFixed: Int, gram: [Double], regularization: Float,
          k: Int, steps: Int, threads: Int, forcedLimit: Int? = nil) {
        let limit = forcedLimit ?? ShortRowSolves.longestCheaper(k: k, steps: steps)
        guard limit > 0 else { return nil }
        if forcedLimit == nil {
            var saved = 0
            for row in 0..<rows.nRows {
                let n = rows.length(of: row)
                if n <= limit { saved += ShortRowSolves.cgCost(n: n, k: k, steps: steps) - ShortRowSolves.exactCost(n: n, k: k) }
            }
            guard saved > ShortRowSolves.setupCost(nFixed: nFixed, k: k) else { return nil }
        }
        guard let inverse = ShortRowSolves.inverse(gram: gram, regularization: Double(regularization), k: k) else { return nil }
        self.k = k
        self.limit = limit
        solved = Buffer<Float>(repeating: 0, count: nFixed * k)
        let chunks = resolveThreads(threads, work: nFixed * k * k, minPerThread: 2_000_000)
        let ptrs = UncheckedSendable((fixed, UnsafePointer(inverse.base), solved.base))
        withExtendedLifetime(inverse) {
          parallelChunks(count: nFixed, chunks: chunks) { _, range in
            let (F, Binv, V) = ptrs.value
            var inputs = [UnsafePointer<Float>](repeating: F, count: ImplicitALSTrainer.group)
            var outputs = [UnsafeMutablePointer<Float>](repeating: V, count: ImplicitALSTrainer.group)
            var j = range.lowerBound
            while j < range.upperBound {
                let n = min(ImplicitALSTrainer.group, range.upperBound - j)
                for g in 0..<n {
                    inputs[g] = F + (j + g) * k
                    outputs[g] = V + (j + g) * k
                }
                ImplicitALSTrainer.matrixVectors(Binv, inputs, outputs, count: n, k: k)
                j += n
            }
          }
        }
    }

    /// (G + λI)⁻¹ in float from the Double gram, by Cholesky; nil if it is not positive definite
    /// (λ = 0 with fewer independent fixed rows than factors), where CG is left to cope.
    static func inverse(gram: [Double], regularization: Double, k: Int) -> Buffer<Float>? {
        var l = gram
        for a in 0..<k { l[a * k + a] += regularization }
        guard l.withUnsafeMutableBufferPointer({ choleskyInPlace($0.baseAddress!, n: k) }) else { return nil }
        // Columns of L⁻¹ by forward substitution, then B⁻¹ = L⁻ᵀ L⁻¹.
        var linv = [Double](repeating: 0, count: k * k)
        for c in 0..<k {
            linv[c * k + c] = 1 / l[c * k + c]
            for r in (c + 1)..<max(c + 1, k) {
                var s = 0.0
                for t in c..<r { s += l[r * k + t] * linv[t * k + c] }
                linv[r * k + c] = -s / l[r * k + r]
            }
        }
        let out = Buffer<Float>(repeating: 0, count: k * k)
        for a in 0..<k {
            for b in a..<k {
                var s = 0.0
                for t in b..<k { s += linv[t * k + a] * linv[t * k + b] }
                out[a * k + b] = Float(s)
                out[b * k + a] = Float(s)
            }
        }
        return out
    }

    /// The lower Cholesky factor of the n × n row-major `m` in its lower triangle; false if `m`
    /// is not positive definite.
    static func choleskyInPlace(_ m: UnsafeMutablePointer<Double>, n: Int) -> Bool {
        for j in 0..<n {
            var d = m[j * n + j]
            for t in 0..<j { d -= m[j * n + t] * m[j * n + t] }
            guard d > 0 else { return false }
            let root = d.squareRoot()
            m[j * n + j] = root
            for i in (j + 1)..<max(j + 1, n) {
                var s = m[i * n + j]
                for t in 0..<j { s -= m[i * n + t] * m[j * n + t] }
                m[i * n + j] = s / root
            }
        }
        return true
    }

    /// Scratch for one thread's solves: G, M and the vectors, for rows up to `limit` long, as
    /// pointers into one buffer (arrays in a class would check exclusive access per element).
    struct Scratch {
        let storage: Buffer<Double>
        let g: UnsafeMutablePointer<Double>, m: UnsafeMutablePointer<Double>, c: UnsafeMutablePointer<Double>
        let d: UnsafeMutablePointer<Double>, z: UnsafeMutablePointer<Double>, t: UnsafeMutablePointer<Double>
        init(limit: Int) {
            storage = Buffer<Double>(repeating: 0, count: 2 * limit * limit + 4 * limit)
            g = storage.base
            m = g + limit * limit
            c = m + limit * limit
            d = c + limit; z = d + limit; t = z + limit
        }
    }

    /// (u · v0, u · v1, u · v2, u · v3): u loaded once for four products, and the four sums
    /// reduced together (a transposing tree of adds rather than four chains of seven).
    @inline(__always)
    static func dots4(_ u: UnsafePointer<Float>, _ v0: UnsafePointer<Float>, _ v1: UnsafePointer<Float>,
                      _ v2: UnsafePointer<Float>, _ v3: UnsafePointer<Float>, _ k: Int) -> SIMD4<Float> {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var j = 0
        while j &+ 8 <= k {
            let x = Kernels.load8(u + j)
            a0 = Kernels.madd(a0, x, Kernels.load8(v0 + j))
            a1 = Kernels.madd(a1, x, Kernels.load8(v1 + j))
            a2 = Kernels.madd(a2, x, Kernels.load8(v2 + j))
            a3 = Kernels.madd(a3, x, Kernels.load8(v3 + j))
            j &+= 8
        }
        let h0 = a0.lowHalf + a0.highHalf, h1 = a1.lowHalf + a1.highHalf
        let h2 = a2.lowHalf + a2.highHalf, h3 = a3.lowHalf + a3.highHalf
        let q0 = SIMD4(lowHalf: h0.lowHalf, highHalf: h1.lowHalf) + SIMD4(lowHalf: h0.highHalf, highHalf: h1.highHalf)
        let q1 = SIMD4(lowHalf: h2.lowHalf, highHalf: h3.lowHalf) + SIMD4(lowHalf: h2.highHalf, highHalf: h3.highHalf)
        var sums = SIMD4(lowHalf: q0.evenHalf, highHalf: q1.evenHalf) + SIMD4(lowHalf: q0.oddHalf, highHalf: q1.oddHalf)
        while j < k {
            sums += SIMD4(repeating: u[j]) * SIMD4(v0[j], v1[j], v2[j], v3[j])
            j &+= 1
        }
        return sums
    }

    /// Writes the row's exact solution into x; returns the row's loss term (as the CG path's,
    /// xᵀBx + Σ_j (e_j s_j² − 2 c_j s_j + c_j) with s_j = u_j · x) when `withLoss`, else 0.
    func solve(row: Int, rows: InteractionRows, fixed F: UnsafePointer<Float>, alpha: Float,
               x: UnsafeMutablePointer<Float>, scratch s: Scratch, withLoss: Bool) -> Double {
        let first = Int(rows.indptr[row]), n = rows.length(of: row)
        let V = UnsafePointer(solved.base)
        x.update(repeating: 0, count: k)
        if n == 0 { return 0 }
        for a in 0..<n {
            let e = Double(alpha * rows.weights[first + a])
            s.c[a] = 1 + e
            s.d[a] = e.squareRoot()
            let ua = F + Int(rows.indices[first + a]) * k
            var b = a
            while b + 4 <= n {
                let four = ShortRowSolves.dots4(ua, V + Int(rows.indices[first + b]) * k, V + Int(rows.indices[first + b + 1]) * k,
                                                V + Int(rows.indices[first + b + 2]) * k, V + Int(rows.indices[first + b + 3]) * k, k)
                for t in 0..<4 {
                    s.g[a * n + b + t] = Double(four[t])
                    s.g[(b + t) * n + a] = Double(four[t])
                }
                b += 4
            }
            while b < n {
                let gab = Double(ImplicitALSTrainer.fusedDot(ua, V + Int(rows.indices[first + b]) * k, k))
                s.g[a * n + b] = gab
                s.g[b * n + a] = gab
                b += 1
            }
        }
        // M = I + D G D and rhs t = D G c.
        for a in 0..<n {
            var gc = 0.0
            for b in 0..<n {
                gc += s.g[a * n + b] * s.c[b]
                s.m[a * n + b] = s.d[a] * s.g[a * n + b] * s.d[b]
            }
            s.m[a * n + a] += 1
            s.t[a] = s.d[a] * gc
        }
        _ = ShortRowSolves.choleskyInPlace(s.m, n: n)  // eigenvalues ≥ 1: always positive definite
        for a in 0..<n {  // L y = t
            var v = s.t[a]
            for b in 0..<a { v -= s.m[a * n + b] * s.t[b] }
            s.t[a] = v / s.m[a * n + a]
        }
        for a in stride(from: n - 1, through: 0, by: -1) {  // Lᵀ w = y
            var v = s.t[a]
            for b in (a + 1)..<max(a + 1, n) { v -= s.m[b * n + a] * s.t[b] }
            s.t[a] = v / s.m[a * n + a]
        }
        for a in 0..<n {
            s.z[a] = s.c[a] - s.d[a] * s.t[a]
            ImplicitALSTrainer.fusedAxpy(x, V + Int(rows.indices[first + a]) * k, k, Float(s.z[a]))
        }
        guard withLoss else { return 0 }
        // s = Uᵀx = G z and xᵀ B x = xᵀ U z = sᵀ z.
        var term = 0.0
        for a in 0..<n {
            var sa = 0.0
            for b in 0..<n { sa += s.g[a * n + b] * s.z[b] }
            let e = s.c[a] - 1
            term += sa * s.z[a] + e * sa * sa - 2 * s.c[a] * sa + s.c[a]
        }
        return term
    }
}
