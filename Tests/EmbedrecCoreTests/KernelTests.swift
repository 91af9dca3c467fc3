import XCTest
@testable import EmbedrecCore

/// The elementwise kernels and Adam's row step on every row length from 1 to 20 and the
/// write-ups' 30 and 50: rows shorter than 8 (entry by entry), multiples of 8, and rows that
/// end in an overlapping vector. Each must give exactly the bits of the plain scalar loop.
final class KernelTests: XCTestCase {
    static let lengths = Array(1...20) + [30, 50]

    private func randomRow(_ k: Int, _ rng: inout Xoshiro256) -> [Float] {
        (0..<k).map { _ in rng.nextUnitFloat() - 0.5 }
    }

    private func assertSameBits(_ got: [Float], _ expected: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), what, file: file, line: line)
    }

    func testElementwiseKernelsMatchTheScalarLoopBitForBit() {
        var rng = Xoshiro256(seed: 11)
        for k in Self.lengths {
            let a = randomRow(k, &rng), b = randomRow(k, &rng), d0 = randomRow(k, &rng)
            let s: Float = 0.37
            var d = d0
            d.withUnsafeMutableBufferPointer { Kernels.copy($0.baseAddress!, a, k) }
            assertSameBits(d, a, "copy k=\(k)")
            d = d0
            d.withUnsafeMutableBufferPointer { Kernels.multiply($0.baseAddress!, a, b, k, accumulate: false) }
            assertSameBits(d, (0..<k).map { a[$0] * b[$0] }, "multiply k=\(k)")
            d = d0
            d.withUnsafeMutableBufferPointer { Kernels.multiply($0.baseAddress!, a, b, k, accumulate: true) }
            assertSameBits(d, (0..<k).map { d0[$0] + a[$0] * b[$0] }, "multiply-accumulate k=\(k)")
            d = d0
            d.withUnsafeMutableBufferPointer { Kernels.scale($0.baseAddress!, a, k, s, accumulate: false) }
            assertSameBits(d, (0..<k).map { s * a[$0] }, "scale k=\(k)")
            d = d0
            d.withUnsafeMutableBufferPointer { Kernels.axpy($0.baseAddress!, a, k, s) }
            assertSameBits(d, (0..<k).map { d0[$0] + s * a[$0] }, "axpy k=\(k)")
            // In place: the row is both the destination and an input.
            d = d0
            d.withUnsafeMutableBufferPointer { Kernels.multiply($0.baseAddress!, $0.baseAddress!, b, k, accumulate: false) }
            assertSameBits(d, (0..<k).map { d0[$0] * b[$0] }, "in-place multiply k=\(k)")
            d = d0
            d.withUnsafeMutableBufferPointer { Kernels.axpy($0.baseAddress!, $0.baseAddress!, k, s) }
            assertSameBits(d, (0..<k).map { d0[$0] + s * d0[$0] }, "in-place axpy k=\(k)")
        }
    }

    func testKernelsLeaveEntriesPastTheRowAlone() {
        var rng = Xoshiro256(seed: 12)
        for k in Self.lengths {
            let a = randomRow(k + 8, &rng)
            var d = [Float](repeating: 7, count: k + 8)
            d.withUnsafeMutableBufferPointer { Kernels.copy($0.baseAddress!, a, k) }
            XCTAssertEqual(Array(d[k...]), [Float](repeating: 7, count: 8), "copy wrote past k=\(k)")
        }
    }

    func testAdamRowMatchesTheScalarFormulaBitForBit() {
        var rng = Xoshiro256(seed: 13)
        let (b1, b2, eps) = (Adam.beta1, Adam.beta2, Adam.epsilon)
        for k in Self.lengths {
            for decay: Float in [0, 0.01] {
                let w0 = randomRow(k, &rng), g = randomRow(k, &rng)
                let m0 = randomRow(k, &rng), v0 = randomRow(k, &rng).map { abs($0) }
                let (lr, bc1, bc2): (Float, Float, Float) = (0.005, 0.19, 0.0199)
                var w = w0, m = m0, v = v0
                w.withUnsafeMutableBufferPointer { wp in
                    m.withUnsafeMutableBufferPointer { mp in
                        v.withUnsafeMutableBufferPointer { vp in
                            Adam.stepRow(wp.baseAddress!, mp.baseAddress!, vp.baseAddress!, g, k, Adam.Factors(lr: lr, bc1: bc1, bc2: bc2), decay: decay)
                        }
                    }
                }
                var we = w0, me = m0, ve = v0
                let step = lr / bc1, ic2 = 1 / bc2
                for j in 0..<k {
                    let gj = decay != 0 ? g[j] + decay * w0[j] : g[j]
                    me[j] = b1 * m0[j] + (1 - b1) * gj
                    ve[j] = b2 * v0[j] + (1 - b2) * gj * gj
                    we[j] = w0[j] - step * me[j] / ((ve[j] * ic2).squareRoot() + eps)
                }
                assertSameBits(m, me, "first moments k=\(k) decay \(decay)")
                assertSameBits(v, ve, "second moments k=\(k) decay \(decay)")
                assertSameBits(w, we, "weights k=\(k) decay \(decay)")
            }
        }
    }

    func testReluIsMaxWithZeroBitForBit() {
        let x: [Float] = [-1, -0.0, 0, 2.5, .nan, -.infinity, .infinity, 1e-30, -1e-30, 3, -3, 0.5, -0.5, 7, -7, 1]
        var y = x
        y.withUnsafeMutableBufferPointer { Kernels.relu($0.baseAddress!, x.count) }
        XCTAssertEqual(y.map(\.bitPattern), x.map { max($0, 0).bitPattern })
    }

    /// `madd` rounds once when the build says it is fused and twice otherwise, in the vector
    /// and the scalar form alike: (1 + 2⁻²³)² − 1 is 2⁻²² + 2⁻⁴⁶ exactly, which only a fused
    /// multiply-add keeps (the product alone rounds to 1 + 2⁻²²).
    func testMultiplyAddIsFusedExactlyWhenTheBuildSaysSo() {
        let x = Float(1) + Float.ulpOfOne
        let fused = 2 * Float.ulpOfOne + Float(sign: .plus, exponent: -46, significand: 1)
        let expected = Kernels.fusedMultiplyAdd ? fused : 2 * Float.ulpOfOne
        XCTAssertEqual(Kernels.madd(-1, x, x).bitPattern, expected.bitPattern)
        let v = Kernels.madd(SIMD8<Float>(repeating: -1), SIMD8<Float>(repeating: x), SIMD8<Float>(repeating: x))
        XCTAssertEqual(v, SIMD8<Float>(repeating: expected))
    }
}
