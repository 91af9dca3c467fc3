/// Dropout masks from a counter-based hash: entry e of dropout node j for the example with
/// seed s is kept when 16 bits of a hash of (s, j, e) fall below keep · 2^16 (the rate
/// rounded to 1/65536), and kept entries are scaled by 1 / keep.
///
/// Why a hash and not a generator per example: seeding a xoshiro256** per example and drawing
/// its entries one 64-bit draw after another is a chain of dependent steps, a visible share of a
/// network's epoch. Here every entry
/// is a function of its coordinates alone, eight entries to one vector of 32-bit lanes, so
/// the lanes and the examples run side by side. The mask depends only on (seed, node, entry),
/// never on the order of computation or the number of threads.
enum DropoutMask {
    /// A 64-bit key for node `j` of the example with seed `seed` (SplitMix64's finaliser over
    /// both): the per-entry hashes below are keyed by its two halves.
    @inline(__always)
    static func key(seed: UInt64, node j: Int) -> UInt64 {
        var z = seed &+ (UInt64(truncatingIfNeeded: j) &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 32 hashed bits for each of the eight entries `first ..< first + 8` under `key`: the
    /// entry index spread by a Weyl step and offset by the key's low half, mixed by a
    /// low-bias 32-bit finaliser, then the key's high half folded in and mixed once more.
    @inline(__always)
    static func bits(key: UInt64, first: Int) -> SIMD8<UInt32> {
        let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7) &+ UInt32(truncatingIfNeeded: first)
        var x = lanes &* 0x9E37_79B1 &+ UInt32(truncatingIfNeeded: key)
        x ^= x &>> 16
        x &*= 0x7FEB_352D
        x ^= x &>> 15
        x &*= 0x846C_A68B
        x ^= x &>> 16
        x ^= SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: key >> 32))
        x &*= 0x7FEB_352D
        x ^= x &>> 15
        return x
    }

    /// Writes the mask of `width` entries (kept: `scale`, dropped: 0) for `key` to `mask`,
    /// whose row is padded to a multiple of 8 floats (the padding gets mask values too, which
    /// only ever multiply padding). `threshold` is keep · 2^16, rounded.
    ///
    /// Each 32-bit hash decides two entries, by its low and its high 16 bits: entries
    /// 16k + l and 16k + 8 + l from lane l of the hashes of block k (lanes counted from 8k).
    /// (One hash per entry took noticeably longer.)
    @inline(__always)
    static func fill(_ mask: UnsafeMutablePointer<Float>, width: Int, key: UInt64, threshold: UInt32, scale: Float) {
        let limit = SIMD8<UInt32>(repeating: threshold)
        var e = 0
        while e < width {
            let x = bits(key: key, first: e &>> 1)
            Kernels.store8(SIMD8<Float>().replacing(with: scale, where: x & 0xFFFF .< limit), mask + e)
            if e &+ 8 < width {
                Kernels.store8(SIMD8<Float>().replacing(with: scale, where: x &>> 16 .< limit), mask + e + 8)
            }
            e &+= 16
        }
    }

    /// keep · 2^16 rounded, for keeping probability `keep` (1 - the dropout rate).
    static func threshold(keep: Float) -> UInt32 { UInt32((Double(keep) * 65_536).rounded()) }
}
