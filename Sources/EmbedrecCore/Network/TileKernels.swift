/// The matrix products the batched network passes need, register-blocked, and the row sums
/// of a dense layer's bias gradient.
///
/// Why blocked: one example at a time, a dense layer is a matrix-vector product that loads and
/// stores its accumulator for every eight multiply-adds. Over a tile of examples, a block of
/// 4 rows × 16 columns of the result stays in eight vector registers while the inner dimension
/// streams past, so each loaded vector of B feeds four rows and each broadcast entry of A two
/// vectors (the 24 columns of an odd number of vectors go in blocks of 3 rows instead, and a
/// one-unit layer has a product of its own). Each multiply-add is `Kernels.madd`: fused in the
/// AVX2 + FMA build, where the MF network's layers took clearly less time per tile than with a
/// separate multiply and add: half the vector arithmetic instructions, on a core whose vector
/// units were the limit (docs/performance.md has the measurements). So
/// the two builds give the networks slightly different bits; within a build every entry's
/// terms are still summed in order of i, whatever the path, and the tests' plain loops use
/// `madd` too.
enum TileKernels {
    /// C[r, 0..<cols8] (+)= Σ_i A[r, i] · B[i, 0..<cols8] for r in 0..<rows, i in 0..<inner:
    /// added to C with `accumulate`, written over it without (C's old values are not read).
    /// With `rowStart`, every row of C starts from that row (a dense layer's bias) instead:
    /// the same sums as copying it into each row of C first and accumulating, without the copy.
    /// With `relu`, C's entries are stored through a ReLU (`store`): the same bits as applying
    /// `Kernels.relu` to C afterwards, without a second pass over it.
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
                                   rowStart: UnsafePointer<Float>? = nil, relu: Bool = false) {
        @inline(__always) func put(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { store(v, p, relu: relu) }
        @inline(__always) func start(_ p: UnsafeMutablePointer<Float>, _ col: Int) -> SIMD8<Float> {
            if let rowStart { return Kernels.load8(rowStart + col) }
            return accumulate ? Kernels.load8(p) : SIMD8<Float>()
        }
        @inline(__always) func row(_ r: Int) -> UnsafePointer<Float> { a + r &* aRowStride }
        @inline(__always) func out(_ r: Int) -> UnsafeMutablePointer<Float> { c + r &* cStride }

        // With an odd number of vectors (3 or more), the first three go in blocks of 3 rows ×
        // 24 columns (nine sums, all in registers; four rows spilled them), and the rest in
        // pairs: no last single vector. A 20-unit layer's forward product took 11% less time.
        let panel = cols8 % 16 == 8 && cols8 >= 24
        if panel {
            multiplyPanel24(rows: rows, inner: inner, a: a, aRowStride: aRowStride, aColStride: aColStride, b: b, bStride: bStride,
                            c: c, cStride: cStride, accumulate: accumulate, rowStart: rowStart, relu: relu)
        }
        let firstPaired = panel ? 24 : 0
        // Columns in pairs of vectors (16), with blocks of 4 rows: a loaded vector of B feeds
        // four rows, a broadcast entry of A two vectors.
        let paired = panel ? cols8 : cols8 & ~15
        var r = 0
        while r &+ 4 <= rows {
            let a0 = row(r), a1 = row(r &+ 1), a2 = row(r &+ 2), a3 = row(r &+ 3)
            let c0 = out(r), c1 = out(r &+ 1), c2 = out(r &+ 2), c3 = out(r &+ 3)
            var col = firstPaired
            while col < paired {
                var x00 = start(c0 + col, col), x01 = start(c0 + col + 8, col + 8)
                var x10 = start(c1 + col, col), x11 = start(c1 + col + 8, col + 8)
                var x20 = start(c2 + col, col), x21 = start(c2 + col + 8, col + 8)
                var x30 = start(c3 + col, col), x31 = start(c3 + col + 8, col + 8)
                var bp = b + col, ai = 0
                for _ in 0..<inner {
                    let b0 = Kernels.load8(bp), b1 = Kernels.load8(bp + 8)
                    let s0 = SIMD8<Float>(repeating: a0[ai]), s1 = SIMD8<Float>(repeating: a1[ai])
                    let s2 = SIMD8<Float>(repeating: a2[ai]), s3 = SIMD8<Float>(repeating: a3[ai])
                    x00 = Kernels.madd(x00, s0, b0); x01 = Kernels.madd(x01, s0, b1)
                    x10 = Kernels.madd(x10, s1, b0); x11 = Kernels.madd(x11, s1, b1)
                    x20 = Kernels.madd(x20, s2, b0); x21 = Kernels.madd(x21, s2, b1)
                    x30 = Kernels.madd(x30, s3, b0); x31 = Kernels.madd(x31, s3, b1)
                    bp += bStride
                    ai &+= aColStride
                }
                put(x00, c0 + col); put(x01, c0 + col + 8)
                put(x10, c1 + col); put(x11, c1 + col + 8)
                put(x20, c2 + col); put(x21, c2 + col + 8)
                put(x30, c3 + col); put(x31, c3 + col + 8)
                col &+= 16
            }
            r &+= 4
        }
        // The last rows (fewer than 4) of the paired columns, one row at a time, four vectors
        // at once where there are: with one vector, each step waited for the previous add
        // (the 50-unit layer's kernel gradient spent a fifth of its time on its last 2 rows).
        while r < rows {
            let ar = row(r), cr = out(r)
            var col = firstPaired
            while col &+ 32 <= paired {
                var x0 = start(cr + col, col), x1 = start(cr + col + 8, col + 8)
                var x2 = start(cr + col + 16, col + 16), x3 = start(cr + col + 24, col + 24)
                var bp = b + col, ai = 0
                for _ in 0..<inner {
                    let s = SIMD8<Float>(repeating: ar[ai])
                    x0 = Kernels.madd(x0, s, Kernels.load8(bp)); x1 = Kernels.madd(x1, s, Kernels.load8(bp + 8))
                    x2 = Kernels.madd(x2, s, Kernels.load8(bp + 16)); x3 = Kernels.madd(x3, s, Kernels.load8(bp + 24))
                    bp += bStride
                    ai &+= aColStride
                }
                put(x0, cr + col); put(x1, cr + col + 8)
                put(x2, cr + col + 16); put(x3, cr + col + 24)
                col &+= 32
            }
            if col < paired {
                var x0 = start(cr + col, col), x1 = start(cr + col + 8, col + 8)
                var bp = b + col, ai = 0
                for _ in 0..<inner {
                    let s = SIMD8<Float>(repeating: ar[ai])
                    x0 = Kernels.madd(x0, s, Kernels.load8(bp)); x1 = Kernels.madd(x1, s, Kernels.load8(bp + 8))
                    bp += bStride
                    ai &+= aColStride
                }
                put(x0, cr + col); put(x1, cr + col + 8)
            }
            r &+= 1
        }
        guard !panel && paired < cols8 else { return }
        // A last single vector of columns, in blocks of 8 rows: eight independent sums per
        // step instead of four, whose adds each waited for the one before.
        let col = paired
        r = 0
        while r &+ 8 <= rows {
            let a0 = row(r), a1 = row(r &+ 1), a2 = row(r &+ 2), a3 = row(r &+ 3)
            let a4 = row(r &+ 4), a5 = row(r &+ 5), a6 = row(r &+ 6), a7 = row(r &+ 7)
            let c0 = out(r) + col, c1 = out(r &+ 1) + col, c2 = out(r &+ 2) + col, c3 = out(r &+ 3) + col
            let c4 = out(r &+ 4) + col, c5 = out(r &+ 5) + col, c6 = out(r &+ 6) + col, c7 = out(r &+ 7) + col
            var x0 = start(c0, col), x1 = start(c1, col), x2 = start(c2, col), x3 = start(c3, col)
            var x4 = start(c4, col), x5 = start(c5, col), x6 = start(c6, col), x7 = start(c7, col)
            var bp = b + col, ai = 0
            for _ in 0..<inner {
                let b0 = Kernels.load8(bp)
                x0 = Kernels.madd(x0, SIMD8<Float>(repeating: a0[ai]), b0); x1 = Kernels.madd(x1, SIMD8<Float>(repeating: a1[ai]), b0)
                x2 = Kernels.madd(x2, SIMD8<Float>(repeating: a2[ai]), b0); x3 = Kernels.madd(x3, SIMD8<Float>(repeating: a3[ai]), b0)
                x4 = Kernels.madd(x4, SIMD8<Float>(repeating: a4[ai]), b0); x5 = Kernels.madd(x5, SIMD8<Float>(repeating: a5[ai]), b0)
                x6 = Kernels.madd(x6, SIMD8<Float>(repeating: a6[ai]), b0); x7 = Kernels.madd(x7, SIMD8<Float>(repeating: a7[ai]), b0)
                bp += bStride
                ai &+= aColStride
            }
            put(x0, c0); put(x1, c1); put(x2, c2); put(x3, c3)
            put(x4, c4); put(x5, c5); put(x6, c6); put(x7, c7)
            r &+= 8
        }
        while r < rows {  // the last rows of that vector, one at a time
            let ar = row(r), cr = out(r) + col
            var x = start(cr, col)
            var bp = b + col, ai = 0
            for _ in 0..<inner {
                x = Kernels.madd(x, SIMD8<Float>(repeating: ar[ai]), Kernels.load8(bp))
                bp += bStride
                ai &+= aColStride
            }
            put(x, cr)
            r &+= 1
        }
    }

    /// C[r, 0] = start + Σ_i A[r, i] · w[i · wStride] for r in 0..<rows (A's rows `aRowStride`
    /// apart, entries adjacent), summed in order of i: a dense layer of one unit (the networks'
    /// output), for which `multiplyAccumulate` would compute eight columns to keep one. Eight
    /// rows at a time, a row to a lane; the same operations per entry, so the same bits.
    /// C's other columns are not written.
    @inline(__always)
    static func multiplyOneUnit(rows: Int, inner: Int, a: UnsafePointer<Float>, aRowStride sa: Int,
                                w: UnsafePointer<Float>, wStride: Int, c: UnsafeMutablePointer<Float>, cStride: Int, start: Float) {
        var r = 0
        while r &+ 8 <= rows {
            var acc = SIMD8<Float>(repeating: start)
            let p = a + r &* sa
            for i in 0..<inner {
                let column = SIMD8<Float>(p[i], p[sa &+ i], p[2 &* sa &+ i], p[3 &* sa &+ i],
                                          p[4 &* sa &+ i], p[5 &* sa &+ i], p[6 &* sa &+ i], p[7 &* sa &+ i])
                acc = Kernels.madd(acc, column, SIMD8<Float>(repeating: w[i &* wStride]))
            }
            for l in 0..<8 { c[(r &+ l) &* cStride] = acc[l] }
            r &+= 8
        }
        while r < rows {
            var x = start
            let p = a + r &* sa
            for i in 0..<inner { x = Kernels.madd(x, p[i], w[i &* wStride]) }
            c[r &* cStride] = x
            r &+= 1
        }
    }

    /// `multiplyAccumulate` for columns 0..<24 only, in blocks of 3 rows × 3 vectors.
    @inline(__always)
    private static func multiplyPanel24(rows: Int, inner: Int, a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
                                        b: UnsafePointer<Float>, bStride: Int, c: UnsafeMutablePointer<Float>, cStride: Int,
                                        accumulate: Bool, rowStart: UnsafePointer<Float>?, relu: Bool) {
        @inline(__always) func put(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { store(v, p, relu: relu) }
        @inline(__always) func start(_ p: UnsafeMutablePointer<Float>, _ col: Int) -> SIMD8<Float> {
            if let rowStart { return Kernels.load8(rowStart + col) }
            return accumulate ? Kernels.load8(p) : SIMD8<Float>()
        }
        @inline(__always) func row(_ r: Int) -> UnsafePointer<Float> { a + r &* aRowStride }
        @inline(__always) func out(_ r: Int) -> UnsafeMutablePointer<Float> { c + r &* cStride }
        var r = 0
        while r &+ 3 <= rows {
            let a0 = row(r), a1 = row(r &+ 1), a2 = row(r &+ 2)
            let c0 = out(r), c1 = out(r &+ 1), c2 = out(r &+ 2)
            var x00 = start(c0, 0), x01 = start(c0 + 8, 8), x02 = start(c0 + 16, 16)
            var x10 = start(c1, 0), x11 = start(c1 + 8, 8), x12 = start(c1 + 16, 16)
            var x20 = start(c2, 0), x21 = start(c2 + 8, 8), x22 = start(c2 + 16, 16)
            var bp = b, ai = 0
            for _ in 0..<inner {
                let b0 = Kernels.load8(bp), b1 = Kernels.load8(bp + 8), b2 = Kernels.load8(bp + 16)
                let s0 = SIMD8<Float>(repeating: a0[ai])
                x00 = Kernels.madd(x00, s0, b0); x01 = Kernels.madd(x01, s0, b1); x02 = Kernels.madd(x02, s0, b2)
                let s1 = SIMD8<Float>(repeating: a1[ai])
                x10 = Kernels.madd(x10, s1, b0); x11 = Kernels.madd(x11, s1, b1); x12 = Kernels.madd(x12, s1, b2)
                let s2 = SIMD8<Float>(repeating: a2[ai])
                x20 = Kernels.madd(x20, s2, b0); x21 = Kernels.madd(x21, s2, b1); x22 = Kernels.madd(x22, s2, b2)
                bp += bStride
                ai &+= aColStride
            }
            put(x00, c0); put(x01, c0 + 8); put(x02, c0 + 16)
            put(x10, c1); put(x11, c1 + 8); put(x12, c1 + 16)
            put(x20, c2); put(x21, c2 + 8); put(x22, c2 + 16)
            r &+= 3
        }
        while r < rows {  // the last rows, one at a time
            let ar = row(r), cr = out(r)
            var x0 = start(cr, 0), x1 = start(cr + 8, 8), x2 = start(cr + 16, 16)
            var bp = b, ai = 0
            for _ in 0..<inner {
                let s = SIMD8<Float>(repeating: ar[ai])
                x0 = Kernels.madd(x0, s, Kernels.load8(bp)); x1 = Kernels.madd(x1, s, Kernels.load8(bp + 8)); x2 = Kernels.madd(x2, s, Kernels.load8(bp + 16))
                bp += bStride
                ai &+= aColStride
            }
            put(x0, cr); put(x1, cr + 8); put(x2, cr + 16)
            r &+= 1
        }
    }

    /// dst[0..<cols8] = (accumulate ? dst : row 0) + the rows after it, for rows
    /// `rows + b · stride` (b in 0..<n), each entry summed in order of b: a dense layer's bias
    /// gradient over a tile. `cols8` is a multiple of 8; with n = 0 and no `accumulate`, dst
    /// becomes zero.
    ///
    /// Why not `Kernels.axpy` row by row: the sums went through memory, and every row's add
    /// waited for the previous row's store of the same vector (the MF network's backward pass
    /// spent a fifth of its own time there). Here up to four vectors of sums stay in registers
    /// while the rows stream past; the same adds in the same order, so the same bits.
    @inline(__always)
    static func sumRows(into dst: UnsafeMutablePointer<Float>, rows: UnsafePointer<Float>, count n: Int, stride: Int,
                        cols8: Int, accumulate: Bool) {
        guard accumulate || n > 0 else {
            dst.update(repeating: 0, count: cols8)
            return
        }
        let from = accumulate ? 0 : 1
        var col = 0
        while col &+ 32 <= cols8 {
            let d = dst + col, from0 = accumulate ? UnsafePointer(d) : rows + col
            var x0 = Kernels.load8(from0), x1 = Kernels.load8(from0 + 8)
            var x2 = Kernels.load8(from0 + 16), x3 = Kernels.load8(from0 + 24)
            var p = rows + col + from &* stride
            for _ in from..<n {
                x0 += Kernels.load8(p); x1 += Kernels.load8(p + 8); x2 += Kernels.load8(p + 16); x3 += Kernels.load8(p + 24)
                p += stride
            }
            Kernels.store8(x0, d); Kernels.store8(x1, d + 8); Kernels.store8(x2, d + 16); Kernels.store8(x3, d + 24)
            col &+= 32
        }
        while col < cols8 {
            let d = dst + col
            var x = Kernels.load8(accumulate ? UnsafePointer(d) : rows + col)
            var p = rows + col + from &* stride
            for _ in from..<n {
                x += Kernels.load8(p)
                p += stride
            }
            Kernels.store8(x, d)
            col &+= 8
        }
    }

    /// Stores v at p, through a ReLU when `relu`: zero where v ≤ 0, as `Kernels.relu` (so the
    /// same bits as storing and then applying it).
    @inline(__always)
    private static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, relu: Bool) {
        Kernels.store8(relu ? v.replacing(with: 0, where: v .<= 0) : v, p)
    }

    /// g = 0 where out ≤ 0 (`Kernels.reluGradient`) over n rows of `stride` floats, and dst
    /// (+)= the rows of the new g, as `sumRows`: one pass over g instead of two, the same bits.
    @inline(__always)
    static func reluGradientAndSumRows(_ g: UnsafeMutablePointer<Float>, out: UnsafePointer<Float>, count n: Int, stride: Int,
                                       into dst: UnsafeMutablePointer<Float>, accumulate: Bool) {
        guard n > 0 else {
            if !accumulate { dst.update(repeating: 0, count: stride) }
            return
        }
        @inline(__always) func gated(_ b: Int, _ col: Int) -> SIMD8<Float> {
            let at = b &* stride &+ col, p = g + at
            let v = Kernels.load8(p).replacing(with: 0, where: Kernels.load8(out + at) .<= 0)
            Kernels.store8(v, p)
            return v
        }
        var col = 0
        while col < stride {
            if col &+ 32 <= stride {
                let d = dst + col
                var x0 = accumulate ? Kernels.load8(d) + gated(0, col) : gated(0, col)
                var x1 = accumulate ? Kernels.load8(d + 8) + gated(0, col + 8) : gated(0, col + 8)
                var x2 = accumulate ? Kernels.load8(d + 16) + gated(0, col + 16) : gated(0, col + 16)
                var x3 = accumulate ? Kernels.load8(d + 24) + gated(0, col + 24) : gated(0, col + 24)
                for b in 1..<n {
                    x0 += gated(b, col); x1 += gated(b, col + 8); x2 += gated(b, col + 16); x3 += gated(b, col + 24)
                }
                Kernels.store8(x0, d); Kernels.store8(x1, d + 8); Kernels.store8(x2, d + 16); Kernels.store8(x3, d + 24)
                col &+= 32
            } else {
                let d = dst + col
                var x = accumulate ? Kernels.load8(d) + gated(0, col) : gated(0, col)
                for b in 1..<n { x += gated(b, col) }
                Kernels.store8(x, d)
                col &+= 8
            }
        }
    }

    /// `n` rounded up to a multiple of 8: the padded row length of the tile layouts.
    @inline(__always)
    static func padded(_ n: Int) -> Int { (n + 7) & ~7 }
}
