import CEmbedrecShims

/// The inner loops of matrix factorisation, on raw pointers and explicit `SIMD8<Float>`.
///
/// Why explicit SIMD: with strict IEEE semantics the compiler will not reassociate a float
/// reduction, so a plain `for` dot product stays scalar. Eight independent lanes make the
/// reassociation explicit. Multiply and add are kept separate (no `addProduct`): on the
/// baseline x86-64 target a fused multiply-add is a libm call per lane, and with the same
/// operations in the same order the wheel's AVX2 build gives bit-identical results (a test
/// checks it), only faster.
public enum Kernels {
    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// acc + a · b in each lane: a fused multiply-add (one rounding) in the build for AVX2 +
    /// FMA CPUs, a multiply and an add in the baseline build (`embedrec_madd8`). Only the
    /// networks' dense products (`TileKernels`) use it: there fused products take clearly less
    /// time per tile (half the arithmetic instructions; the core's vector units are the limit),
    /// at the price of the two builds differing in the networks' last bits. Everything else
    /// keeps multiply and add apart.
    @inline(__always)
    static func madd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        embedrec_madd8(acc, a, b)
    }

    /// One lane of `madd(_:_:_:)`: fused exactly when the vector form is.
    @inline(__always)
    static func madd(_ acc: Float, _ a: Float, _ b: Float) -> Float { embedrec_madd1(acc, a, b) }

    /// Whether `madd` is fused in this build of the library.
    public static var fusedMultiplyAdd: Bool { embedrec_fused_madd() != 0 }

    /// a · b over k entries.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int) -> Float {
        var acc = SIMD8<Float>()
        var j = 0
        while j &+ 8 <= k {
            acc += load8(a + j) * load8(b + j)
            j &+= 8
        }
        var s = acc.sum()
        while j < k {
            s += a[j] * b[j]
            j &+= 1
        }
        return s
    }

    /// The classic SGD step on a user row p and an item row q, both from their old values:
    /// p += lr (g q - reg p);  q += lr (g p - reg q).
    @inline(__always)
    public static func sgdPairUpdate(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>,
                                     _ k: Int, g: Float, lr: Float, reg: Float) {
        let vg = SIMD8<Float>(repeating: g), vlr = SIMD8<Float>(repeating: lr), vreg = SIMD8<Float>(repeating: reg)
        var j = 0
        while j &+ 8 <= k {
            let pu = load8(p + j), qi = load8(q + j)
            store8(pu + vlr * (vg * qi - vreg * pu), p + j)
            store8(qi + vlr * (vg * pu - vreg * qi), q + j)
            j &+= 8
        }
        while j < k {
            let pu = p[j], qi = q[j]
            p[j] = pu + lr * (g * qi - reg * pu)
            q[j] = qi + lr * (g * pu - reg * qi)
            j &+= 1
        }
    }

    /// dst += s * src.
    @inline(__always)
    public static func axpy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ k: Int, _ s: Float) {
        let vs = SIMD8<Float>(repeating: s)
        elementwise(dst, k) { j in load8(dst + j) + vs * load8(src + j) } scalar: { j in dst[j] + s * src[j] }
    }

    /// dst[j] = f(j) for j in 0..<k, eight entries at a time; `f` reads entries j..<j+8 of its
    /// inputs (dst among them, or not), `scalar` entry j alone with the same operations.
    ///
    /// Rows of k ≥ 8 whose length is not a multiple of 8 end with one overlapping vector, the
    /// row's last eight entries, computed before anything is stored and stored last: the
    /// entries it shares with the last full vector get the same value twice, each computed
    /// from the old inputs. One vector instead of up to seven scalar steps (a 30-wide embedding
    /// row's 6). Shorter rows go entry by entry. Same bits either way: lane j of a vector
    /// operation is the scalar operation on entry j. `dst` may be one of the inputs, but may
    /// not overlap one at an offset.
    @inline(__always)
    static func elementwise(_ dst: UnsafeMutablePointer<Float>, _ k: Int, _ f: (Int) -> SIMD8<Float>,
                            scalar: (Int) -> Float) {
        if k < 8 {
            for j in 0..<k { dst[j] = scalar(j) }
            return
        }
        let full = k & ~7
        let hasTail = full < k
        let tail = hasTail ? f(k &- 8) : SIMD8<Float>()
        var j = 0
        while j < full {
            store8(f(j), dst + j)
            j &+= 8
        }
        if hasTail { store8(tail, dst + (k &- 8)) }
    }

    /// dst = src over k entries. Inline, for the short rows of the tile passes, where a call to
    /// memmove per row cost more than the copy.
    @inline(__always)
    public static func copy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ k: Int) {
        elementwise(dst, k) { j in load8(src + j) } scalar: { j in src[j] }
    }

    /// dst = a ⊙ b, or dst += a ⊙ b with `accumulate` (elementwise, k entries).
    @inline(__always)
    public static func multiply(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                _ k: Int, accumulate: Bool) {
        if accumulate {
            elementwise(dst, k) { j in load8(dst + j) + load8(a + j) * load8(b + j) } scalar: { j in dst[j] + a[j] * b[j] }
        } else {
            elementwise(dst, k) { j in load8(a + j) * load8(b + j) } scalar: { j in a[j] * b[j] }
        }
    }

    /// dst = s · src, or dst += s · src with `accumulate`.
    @inline(__always)
    public static func scale(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ k: Int, _ s: Float,
                             accumulate: Bool) {
        if accumulate {
            axpy(dst, src, k, s)
            return
        }
        let vs = SIMD8<Float>(repeating: s)
        elementwise(dst, k) { j in vs * load8(src + j) } scalar: { j in s * src[j] }
    }

    /// x = max(x, 0) over k entries, k a multiple of 8, as a vector select. Zero where x ≤ 0
    /// (so -0 becomes +0) and NaN stays NaN: Swift's `max(x, 0)` exactly.
    @inline(__always)
    public static func relu(_ x: UnsafeMutablePointer<Float>, _ k: Int) {
        var j = 0
        while j &+ 8 <= k {
            let v = load8(x + j)
            store8(v.replacing(with: 0, where: v .<= 0), x + j)
            j &+= 8
        }
    }

    /// g = 0 where out ≤ 0 (the gradient through a ReLU whose outputs are `out`), over k
    /// entries, k a multiple of 8. A vector select: a masked store is microcoded on AMD cores.
    @inline(__always)
    public static func reluGradient(_ g: UnsafeMutablePointer<Float>, _ out: UnsafePointer<Float>, _ k: Int) {
        var j = 0
        while j &+ 8 <= k {
            let gj = load8(g + j)
            store8(gj.replacing(with: 0, where: load8(out + j) .<= 0), g + j)
            j &+= 8
        }
    }

    /// Hints the CPU to fetch the cache lines of p[0..<k] (for writing) ahead of their use.
    @inline(__always)
    public static func prefetch(_ p: UnsafeMutablePointer<Float>, _ k: Int) {
        forEachLine(p, k) { embedrec_prefetch_write($0) }
    }

    /// Like `prefetch`, into the core's L2 cache only: for lines needed a while later, which
    /// would crowd L1 and its few outstanding misses.
    @inline(__always)
    public static func prefetchL2(_ p: UnsafeMutablePointer<Float>, _ k: Int) {
        forEachLine(p, k) { embedrec_prefetch_l2($0) }
    }

    /// Calls `body` with every 64-byte line p[0..<k] touches, from the one holding p[0] to the
    /// one holding p[k-1] (a row that starts mid-line spans one line more than its length
    /// suggests).
    @inline(__always)
    static func forEachLine(_ p: UnsafeMutablePointer<Float>, _ k: Int, _ body: (UnsafeRawPointer?) -> Void) {
        guard k > 0 else { return }
        var line = UInt(bitPattern: p) & ~63
        let last = UInt(bitPattern: p + (k - 1))
        while line <= last {
            body(UnsafeRawPointer(bitPattern: line))
            line &+= 64
        }
    }

    /// Clamps every entry to ≥ 0 (projection for non-negative factorisation).
    @inline(__always)
    public static func clampNonNegative(_ p: UnsafeMutablePointer<Float>, _ k: Int) {
        for j in 0..<k where p[j] < 0 { p[j] = 0 }
    }
}
