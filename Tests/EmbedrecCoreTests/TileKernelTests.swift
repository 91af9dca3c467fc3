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
    /// rows) sums each entry's terms in order of i, as a plain float loop does: the same bits.
    func testBlockedProductSumsInOrderOfTheInnerIndex() {
        var rng = Xoshiro256(seed: 5)
        for (rows, inner, cols8) in [(50, 64, 32), (1, 64, 24), (64, 20, 8), (11, 7, 56), (3, 9, 48), (17, 3, 40)] {
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
                        let term = a[r * inner + i] * b[i * cols8 + col]
                        expected = expected + term
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
}
