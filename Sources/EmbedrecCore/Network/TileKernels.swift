/// The one matrix product the batched network passes need, register-blocked.
///
/// Why blocked: one example at a time, a dense layer is a matrix-vector product that loads and
/// stores its accumulator for every eight multiply-adds. Over a tile of examples, a block of
/// 4 rows × 16 columns of the result stays in eight vector registers while the inner dimension
/// streams past, so each loaded vector of B feeds four rows and each broadcast entry of A two
/// vectors. Multiply and add stay separate, as in `Kernels`, so the baseline and AVX2 builds
/// give the same bits.
enum TileKernels {
    /// C[r, 0..<cols8] (+)= Σ_i A[r, i] · B[i, 0..<cols8] for r in 0..<rows, i in 0..<inner:
    /// added to C with `accumulate`, written over it without (C's old values are not read).
    /// With `rowStart`, every row of C starts from that row (a dense layer's bias) instead:
    /// the same sums as copying it into each row of C first and accumulating, without the copy.
    ///
    /// A's entry (r, i) is at `a + r * aRowStride + i * aColStride`, so the same kernel reads A
    /// or its transpose. `cols8` is a multiple of 8; B's and C's rows hold at least that many
    /// floats (the layouts pad every row to a multiple of 8 with zeros). Each entry of C sums
    /// its terms in order of i.
    @inline(__always)
    static func multiplyAccumulate(rows: Int, inner: Int, cols8: Int,
                                   a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
                                   b: UnsafePointer<Float>, bStride: Int,
                                   c: UnsafeMutablePointer<Float>, cStride: Int, accumulate: Bool = true,
                                   rowStart: UnsafePointer<Float>? = nil) {
        @inline(__always) func start(_ p: UnsafeMutablePointer<Float>, _ col: Int) -> SIMD8<Float> {
            if let rowStart { return Kernels.load8(rowStart + col) }
            return accumulate ? Kernels.load8(p) : SIMD8<Float>()
        }
        var r = 0
        while r &+ 4 <= rows {
            let a0 = a + r &* aRowStride, a1 = a0 + aRowStride, a2 = a1 + aRowStride, a3 = a2 + aRowStride
            let c0 = c + r &* cStride, c1 = c0 + cStride, c2 = c1 + cStride, c3 = c2 + cStride
            var col = 0
            while col &+ 16 <= cols8 {
                var x00 = start(c0 + col, col), x01 = start(c0 + col + 8, col + 8)
                var x10 = start(c1 + col, col), x11 = start(c1 + col + 8, col + 8)
                var x20 = start(c2 + col, col), x21 = start(c2 + col + 8, col + 8)
                var x30 = start(c3 + col, col), x31 = start(c3 + col + 8, col + 8)
                var bp = b + col, ai = 0
                for _ in 0..<inner {
                    let b0 = Kernels.load8(bp), b1 = Kernels.load8(bp + 8)
                    let s0 = SIMD8<Float>(repeating: a0[ai]), s1 = SIMD8<Float>(repeating: a1[ai])
                    let s2 = SIMD8<Float>(repeating: a2[ai]), s3 = SIMD8<Float>(repeating: a3[ai])
                    x00 += s0 * b0; x01 += s0 * b1
                    x10 += s1 * b0; x11 += s1 * b1
                    x20 += s2 * b0; x21 += s2 * b1
                    x30 += s3 * b0; x31 += s3 * b1
                    bp += bStride
                    ai &+= aColStride
                }
                Kernels.store8(x00, c0 + col); Kernels.store8(x01, c0 + col + 8)
                Kernels.store8(x10, c1 + col); Kernels.store8(x11, c1 + col + 8)
                Kernels.store8(x20, c2 + col); Kernels.store8(x21, c2 + col + 8)
                Kernels.store8(x30, c3 + col); Kernels.store8(x31, c3 + col + 8)
                col &+= 16
            }
            if col < cols8 {  // one vector of columns left
                var x0 = start(c0 + col, col), x1 = start(c1 + col, col)
                var x2 = start(c2 + col, col), x3 = start(c3 + col, col)
                var bp = b + col, ai = 0
                for _ in 0..<inner {
                    let b0 = Kernels.load8(bp)
                    x0 += SIMD8<Float>(repeating: a0[ai]) * b0
                    x1 += SIMD8<Float>(repeating: a1[ai]) * b0
                    x2 += SIMD8<Float>(repeating: a2[ai]) * b0
                    x3 += SIMD8<Float>(repeating: a3[ai]) * b0
                    bp += bStride
                    ai &+= aColStride
                }
                Kernels.store8(x0, c0 + col); Kernels.store8(x1, c1 + col)
                Kernels.store8(x2, c2 + col); Kernels.store8(x3, c3 + col)
            }
            r &+= 4
        }
        while r < rows {  // the last rows, one at a time
            let ar = a + r &* aRowStride, cr = c + r &* cStride
            var col = 0
            while col < cols8 {
                var x = start(cr + col, col)
                var bp = b + col, ai = 0
                for _ in 0..<inner {
                    x += SIMD8<Float>(repeating: ar[ai]) * Kernels.load8(bp)
                    bp += bStride
                    ai &+= aColStride
                }
                Kernels.store8(x, cr + col)
                col &+= 8
            }
            r &+= 1
        }
    }

    /// `n` rounded up to a multiple of 8: the padded row length of the tile layouts.
    @inline(__always)
    static func padded(_ n: Int) -> Int { (n + 7) & ~7 }
}
