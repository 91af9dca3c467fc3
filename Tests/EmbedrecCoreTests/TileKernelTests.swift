import XCTest
@testable import EmbedrecCore

final class TileKernelTests: XCTestCase {
    /// The blocked product against a plain triple loop, on sizes that reach every path: blocks
    /// of 4 rows and a remainder, 16-column blocks and a last 8, A read directly and transposed,
    /// accumulating into C and writing over it.
    func testBlockedProductMatchesThePlainOne() {
        var rng = Xoshiro256(seed: 3)
        for (rows, inner, cols8) in [(7, 5, 24), (4, 13, 16), (9, 1, 8), (1, 30, 40), (12, 64, 56)] {
            for transposedA in [false, true] {
                for accumulate in [true, false] {
                    let aRowStride = transposedA ? 1 : inner, aColStride = transposedA ? rows : 1
                    let a = (0..<(rows * inner)).map { _ in rng.nextUnitFloat() - 0.5 }
                    let b = (0..<(inner * cols8)).map { _ in rng.nextUnitFloat() - 0.5 }
                    let c0 = (0..<(rows * cols8)).map { _ in rng.nextUnitFloat() - 0.5 }
                    var c = c0
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            c.withUnsafeMutableBufferPointer { cp in
                                TileKernels.multiplyAccumulate(rows: rows, inner: inner, cols8: cols8,
                                                               a: ap.baseAddress!, aRowStride: aRowStride, aColStride: aColStride,
                                                               b: bp.baseAddress!, bStride: cols8,
                                                               c: cp.baseAddress!, cStride: cols8, accumulate: accumulate)
                            }
                        }
                    }
                    for r in 0..<rows {
                        for col in 0..<cols8 {
                            var expected = accumulate ? Double(c0[r * cols8 + col]) : 0
                            for i in 0..<inner {
                                expected += Double(a[r * aRowStride + i * aColStride]) * Double(b[i * cols8 + col])
                            }
                            XCTAssertEqual(Double(c[r * cols8 + col]), expected, accuracy: 1e-4,
                                           "\(rows)×\(inner)×\(cols8) transposed \(transposedA) accumulate \(accumulate) at (\(r), \(col))")
                        }
                    }
                }
            }
        }
    }

    /// Every path of the blocked product (blocks of 4 rows and their last 1-3 rows, 32- and
    /// 16-column runs of those rows, a last vector of columns in blocks of 8 rows and single
    /// rows, the 24-column panel in blocks of 3 rows and its last 1-2 rows) sums each entry's
    /// terms in order of i, as a plain float loop of `Kernels.madd` does (fused in the AVX2
    /// build, a multiply and an add otherwise): the same bits.
    func testBlockedProductSumsInOrderOfTheInnerIndex() {
        var rng = Xoshiro256(seed: 5)
        for (rows, inner, cols8) in [(50, 64, 32), (1, 64, 24), (64, 20, 8), (11, 7, 56), (3, 9, 48), (17, 3, 40),
                                     (7, 9, 24), (2, 5, 8), (64, 50, 24)] {
            let a = (0..<(rows * inner)).map { _ in rng.nextUnitFloat() - 0.5 }
            let b = (0..<(inner * cols8)).map { _ in rng.nextUnitFloat() - 0.5 }
            let c0 = (0..<(rows * cols8)).map { _ in rng.nextUnitFloat() - 0.5 }
            var c = c0
            c.withUnsafeMutableBufferPointer { cp in
                TileKernels.multiplyAccumulate(rows: rows, inner: inner, cols8: cols8, a: a, aRowStride: inner, aColStride: 1,
                                               b: b, bStride: cols8, c: cp.baseAddress!, cStride: cols8)
            }
            for r in 0..<rows {
                for col in 0..<cols8 {
                    var expected = c0[r * cols8 + col]
                    for i in 0..<inner {
                        expected = Kernels.madd(expected, a[r * inner + i], b[i * cols8 + col])
                    }
                    XCTAssertEqual(c[r * cols8 + col].bitPattern, expected.bitPattern, "\(rows)×\(inner)×\(cols8) at (\(r), \(col))")
                }
            }
        }
    }

    /// Starting every row of C from one row (a dense layer's bias) gives the same bits as
    /// copying that row into each row of C and accumulating.
    func testRowStartMatchesCopyThenAccumulate() {
        var rng = Xoshiro256(seed: 4)
        for (rows, inner, cols8) in [(7, 5, 24), (4, 13, 16), (9, 1, 8), (12, 50, 56)] {
            let a = (0..<(rows * inner)).map { _ in rng.nextUnitFloat() - 0.5 }
            let b = (0..<(inner * cols8)).map { _ in rng.nextUnitFloat() - 0.5 }
            let bias = (0..<cols8).map { _ in rng.nextUnitFloat() - 0.5 }
            var started = [Float](repeating: .nan, count: rows * cols8)  // never read
            var copied = (0..<rows).flatMap { _ in bias }
            started.withUnsafeMutableBufferPointer { cp in
                TileKernels.multiplyAccumulate(rows: rows, inner: inner, cols8: cols8, a: a, aRowStride: inner, aColStride: 1,
                                               b: b, bStride: cols8, c: cp.baseAddress!, cStride: cols8, rowStart: bias)
            }
            copied.withUnsafeMutableBufferPointer { cp in
                TileKernels.multiplyAccumulate(rows: rows, inner: inner, cols8: cols8, a: a, aRowStride: inner, aColStride: 1,
                                               b: b, bStride: cols8, c: cp.baseAddress!, cStride: cols8)
            }
            XCTAssertEqual(started.map(\.bitPattern), copied.map(\.bitPattern), "\(rows)×\(inner)×\(cols8)")
        }
    }

    /// Slots in first-touch order, each example's slot, each slot's first example and count, the
    /// repeated examples; a new batch starts over without clearing the table-sized arrays.
    func testBatchRowsGiveSlotsInFirstTouchOrder() {
        let rows = BatchRows(rows: 10, capacity: 6)
        let first: [Int32] = [4, 7, 4, 2, 7, 9]
        rows.assign(first, count: first.count)
        XCTAssertEqual(rows.count, 4)
        XCTAssertEqual(Array(rows.touched.buffer.prefix(4)), [4, 7, 2, 9])
        XCTAssertEqual(Array(rows.slotOfExample.buffer.prefix(6)), [0, 1, 0, 2, 1, 3])
        XCTAssertEqual(Array(rows.firstExample.buffer.prefix(4)), [0, 1, 3, 5])
        XCTAssertEqual(Array(rows.occurrences.buffer.prefix(4)), [2, 2, 1, 1])
        XCTAssertEqual(rows.repeatCount, 2)
        XCTAssertEqual(Array(rows.repeats.buffer.prefix(2)), [2, 4])
        let second: [Int32] = [2, 2, 5]
        rows.assign(second, count: second.count)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(Array(rows.touched.buffer.prefix(2)), [2, 5])
        XCTAssertEqual(Array(rows.slotOfExample.buffer.prefix(3)), [0, 0, 1])
        XCTAssertEqual(Array(rows.occurrences.buffer.prefix(2)), [2, 1])
        XCTAssertEqual(rows.repeatCount, 1)
        let third: [Int32] = [3, 3, 3, 1, 3]
        rows.assign(third, count: third.count)
        XCTAssertEqual(rows.repeatCount, 3)
        XCTAssertEqual(Array(rows.repeats.buffer.prefix(3)), [1, 2, 4])
    }

    /// A one-unit layer's product (eight rows to a vector, then single rows) gives the bits of
    /// a plain float loop of `Kernels.madd` from the bias, in order of i, and leaves C's other
    /// columns alone.
    func testOneUnitProductSumsInOrderOfTheInnerIndex() {
        var rng = Xoshiro256(seed: 6)
        for (rows, inner) in [(64, 20), (13, 7), (3, 1), (8, 50)] {
            let aStride = TileKernels.padded(inner), wStride = 8, cStride = 8
            let a = (0..<(rows * aStride)).map { _ in rng.nextUnitFloat() - 0.5 }
            let w = (0..<(inner * wStride)).map { _ in rng.nextUnitFloat() - 0.5 }
            let start = rng.nextUnitFloat() - 0.5
            var c = [Float](repeating: 7, count: rows * cStride)
            c.withUnsafeMutableBufferPointer { cp in
                TileKernels.multiplyOneUnit(rows: rows, inner: inner, a: a, aRowStride: aStride, w: w, wStride: wStride,
                                            c: cp.baseAddress!, cStride: cStride, start: start)
            }
            for r in 0..<rows {
                var expected = start
                for i in 0..<inner {
                    expected = Kernels.madd(expected, a[r * aStride + i], w[i * wStride])
                }
                XCTAssertEqual(c[r * cStride].bitPattern, expected.bitPattern, "\(rows)×\(inner) row \(r)")
                for col in 1..<cStride { XCTAssertEqual(c[r * cStride + col], 7) }
            }
        }
    }

    /// Summing a tile's rows in registers gives the bits of adding them one after another, from
    /// the old sums or from the first row, and zero for no rows.
    func testRowSumsAddInOrder() {
        var rng = Xoshiro256(seed: 8)
        for (n, cols8) in [(64, 56), (5, 8), (1, 40), (0, 24), (33, 32)] {
            let stride = cols8 + 8
            let rows = (0..<(max(n, 1) * stride)).map { _ in rng.nextUnitFloat() - 0.5 }
            let old = (0..<cols8).map { _ in rng.nextUnitFloat() - 0.5 }
            for accumulate in [true, false] {
                var sums = old
                sums.withUnsafeMutableBufferPointer { sp in
                    TileKernels.sumRows(into: sp.baseAddress!, rows: rows, count: n, stride: stride, cols8: cols8, accumulate: accumulate)
                }
                for col in 0..<cols8 {
                    var expected: Float = accumulate ? old[col] : (n > 0 ? rows[col] : 0)
                    for b in (accumulate ? 0 : 1)..<max(n, accumulate ? 0 : 1) { expected = expected + rows[b * stride + col] }
                    XCTAssertEqual(sums[col].bitPattern, expected.bitPattern, "n \(n) cols \(cols8) accumulate \(accumulate) col \(col)")
                }
            }
        }
    }

    /// The ReLU applied as the product is stored gives the bits of storing the product and then
    /// applying `Kernels.relu`, on every path (panel, pairs, last rows, last vector).
    func testReluOnStoreMatchesReluAfter() {
        var rng = Xoshiro256(seed: 13)
        for (rows, inner, cols8) in [(64, 32, 56), (7, 9, 24), (11, 5, 8), (6, 3, 48), (5, 20, 40)] {
            let a = (0..<(rows * inner)).map { _ in rng.nextUnitFloat() - 0.5 }
            let b = (0..<(inner * cols8)).map { _ in rng.nextUnitFloat() - 0.5 }
            let bias = (0..<cols8).map { _ in rng.nextUnitFloat() - 0.5 }
            var fused = [Float](repeating: .nan, count: rows * cols8), after = fused
            fused.withUnsafeMutableBufferPointer { cp in
                TileKernels.multiplyAccumulate(rows: rows, inner: inner, cols8: cols8, a: a, aRowStride: inner, aColStride: 1,
                                               b: b, bStride: cols8, c: cp.baseAddress!, cStride: cols8, rowStart: bias, relu: true)
            }
            after.withUnsafeMutableBufferPointer { cp in
                TileKernels.multiplyAccumulate(rows: rows, inner: inner, cols8: cols8, a: a, aRowStride: inner, aColStride: 1,
                                               b: b, bStride: cols8, c: cp.baseAddress!, cStride: cols8, rowStart: bias)
                Kernels.relu(cp.baseAddress!, rows * cols8)
            }
            XCTAssertEqual(fused.map(\.bitPattern), after.map(\.bitPattern), "\(rows)×\(inner)×\(cols8)")
            XCTAssertTrue(fused.contains(0) && fused.contains { $0 > 0 })
        }
    }

    /// Gating a tile's gradient by its ReLU outputs and summing its rows in one pass gives the
    /// bits of `Kernels.reluGradient` followed by `sumRows`, for the gradient and the sums.
    func testReluGradientAndRowSumsInOnePass() {
        var rng = Xoshiro256(seed: 14)
        for (n, stride) in [(64, 56), (3, 8), (1, 40), (0, 24), (17, 32)] {
            let g0 = (0..<(max(n, 1) * stride)).map { _ in rng.nextUnitFloat() - 0.5 }
            let out = (0..<(max(n, 1) * stride)).map { _ in rng.nextUnitFloat() - 0.5 }
            let old = (0..<stride).map { _ in rng.nextUnitFloat() - 0.5 }
            for accumulate in [true, false] {
                var g1 = g0, g2 = g0, s1 = old, s2 = old
                g1.withUnsafeMutableBufferPointer { gp in
                    s1.withUnsafeMutableBufferPointer { sp in
                        TileKernels.reluGradientAndSumRows(gp.baseAddress!, out: out, count: n, stride: stride, into: sp.baseAddress!,
                                                           accumulate: accumulate)
                    }
                }
                g2.withUnsafeMutableBufferPointer { gp in
                    Kernels.reluGradient(gp.baseAddress!, out, n * stride)
                    s2.withUnsafeMutableBufferPointer { sp in
                        TileKernels.sumRows(into: sp.baseAddress!, rows: gp.baseAddress!, count: n, stride: stride, cols8: stride,
                                            accumulate: accumulate)
                    }
                }
                XCTAssertEqual(g1.map(\.bitPattern), g2.map(\.bitPattern), "n \(n) stride \(stride)")
                XCTAssertEqual(s1.map(\.bitPattern), s2.map(\.bitPattern), "n \(n) stride \(stride) accumulate \(accumulate)")
            }
        }
    }
}
