import CEmbedrecShims

/// Adam (Kingma & Ba), the kernel both matrix factorisation's and the networks' trainers step
/// their parameters with: one row of parameters at a time, with bias-corrected moments and an
/// optional L2 term, the same operations in the same order for every caller (so results do not
/// depend on who steps a row).
enum Adam {
    static let beta1: Float = 0.9, beta2: Float = 0.99, epsilon: Float = 1e-5

    /// The factors of one batch's Adam steps, with bias correction: worked out once per batch.
    /// Worked out in each row's step, they were four scalar divisions per row (factors and
    /// bias), on the divider that the rows' square roots and divisions keep busy.
    struct Factors {
        /// lr / (1 - β1^t) and 1 / (1 - β2^t) at step t (from 1).
        let step, ic2: Float

        init(lr: Float, bc1: Float, bc2: Float) {
            step = lr / bc1
            ic2 = 1 / bc2
        }

        init(lr: Float, step t: Int) {
            self.init(lr: lr, bc1: 1 - Float(_pow(Double(beta1), Double(t))), bc2: 1 - Float(_pow(Double(beta2), Double(t))))
        }
    }

    /// Adam update of k parameters from their gradient plus `decay` times their own values (an
    /// L2 term, added here once per row rather than once per rating), with bias-corrected
    /// moments.
    ///
    /// The last k % 8 entries of a row of k ≥ 8 are done as the row's last eight, computed
    /// from the old values before any of the row is stored and stored last: the entries it
    /// shares with the last full vector get the same bits twice, since every entry's update
    /// reads only that entry. (Built lane by lane, the padded tail cost a fifth of a 30-wide
    /// row's step.) Rows of fewer than 8 (the networks' bias rows) are stepped entry by entry
    /// with scalar arithmetic: the same IEEE operations as one lane of the vector code, so the
    /// same bits.
    @inline(__always)
    static func stepRow(_ w: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                        _ g: UnsafePointer<Float>, _ k: Int, _ factors: Factors, decay: Float = 0) {
        let step = factors.step, ic2 = factors.ic2
        if k < 8 {
            for j in 0..<k {
                let wj = w[j]
                let gj = decay != 0 ? g[j] + decay * wj : g[j]
                let mj = beta1 * m[j] + (1 - beta1) * gj
                let vj = beta2 * v[j] + (1 - beta2) * gj * gj
                m[j] = mj
                v[j] = vj
                w[j] = wj - step * mj / ((vj * ic2).squareRoot() + epsilon)
            }
            return
        }
        // Two copies of the vector loop, with and without the L2 term: with the choice made
        // per vector inside one loop, the compiler split each row vector into lanes and put
        // it back together around the division.
        if decay != 0 {
            stepVectors(w, m, v, g, k, step: step, ic2: ic2, decay: decay, decayed: true)
        } else {
            stepVectors(w, m, v, g, k, step: step, ic2: ic2, decay: 0, decayed: false)
        }
    }

    /// `stepRow` for k ≥ 8, eight entries at a time, the last k % 8 as described there.
    @inline(__always)
    private static func stepVectors(_ w: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                                    _ v: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ k: Int,
                                    step: Float, ic2: Float, decay: Float, decayed: Bool) {
        let vb1 = SIMD8<Float>(repeating: beta1), vb2 = SIMD8<Float>(repeating: beta2)
        let one = SIMD8<Float>(repeating: 1)
        let vstep = SIMD8<Float>(repeating: step), vic2 = SIMD8<Float>(repeating: ic2)
        let eps = SIMD8<Float>(repeating: epsilon), vd = SIMD8<Float>(repeating: decay)
        @inline(__always) func update(_ j: Int) -> (w: SIMD8<Float>, m: SIMD8<Float>, v: SIMD8<Float>) {
            let wj = Kernels.load8(w + j)
            let gj = decayed ? Kernels.load8(g + j) + vd * wj : Kernels.load8(g + j)
            let mj = vb1 * Kernels.load8(m + j) + (one - vb1) * gj
            let vj = vb2 * Kernels.load8(v + j) + (one - vb2) * gj * gj
            return (wj - vstep * mj / (embedrec_sqrt8(vj * vic2) + eps), mj, vj)
        }
        let full = k & ~7
        // The tail in plain vector variables: held as an optional tuple across the loop, it
        // went through general-purpose registers lane by lane.
        let hasTail = full < k
        var tailW = SIMD8<Float>(), tailM = SIMD8<Float>(), tailV = SIMD8<Float>()
        if hasTail { (tailW, tailM, tailV) = update(k &- 8) }
        var j = 0
        while j < full {
            let (wj, mj, vj) = update(j)
            Kernels.store8(mj, m + j)
            Kernels.store8(vj, v + j)
            Kernels.store8(wj, w + j)
            j &+= 8
        }
        if hasTail {
            Kernels.store8(tailM, m + (k &- 8))
            Kernels.store8(tailV, v + (k &- 8))
            Kernels.store8(tailW, w + (k &- 8))
        }
    }
}
