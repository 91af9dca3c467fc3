/// xoshiro256** seeded through SplitMix64: fast, good enough for initialisation and shuffling,
/// and identical on every platform, so a seed means the same embeddings everywhere.
/// (The stdlib's `SystemRandomNumberGenerator` cannot be seeded.)
public struct Xoshiro256: RandomNumberGenerator {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        func splitMix() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    @inline(__always)
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform integer in 0..<bound (bound > 0), Lemire's multiply-shift without rejection:
    /// the bias is below 2^-32 for the table sizes used here.
    @inline(__always)
    public mutating func nextIndex(below bound: Int) -> Int {
        // Parenthesised on purpose: `>>` binds tighter than `&*` in Swift.
        Int(truncatingIfNeeded: ((next() >> 32) &* UInt64(truncatingIfNeeded: bound)) >> 32)
    }

    /// Standard normal by Box–Muller (one value per call; simplicity beats speed here,
    /// it only runs at initialisation).
    public mutating func nextNormal() -> Float {
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2))
    }

    /// Fisher–Yates shuffle of a buffer of Int32 positions.
    public mutating func shuffle<T>(_ buffer: UnsafeMutableBufferPointer<T>) {
        var i = buffer.count - 1
        while i > 0 {
            let j = nextIndex(below: i + 1)
            buffer.swapAt(i, j)
            i -= 1
        }
    }
}
