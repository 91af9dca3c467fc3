import XCTest
@testable import EmbedrecCore

final class DropoutMaskTests: XCTestCase {
    /// Masks over many keys: entries are 0 or 1 / keep, kept at the rate asked for, with no
    /// pull between neighbouring entries, between nodes of one example, or between examples
    /// whose seeds differ by one (the trainer's seeds are consecutive).
    func testMasksKeepTheRightShareIndependently() {
        let width = 30, keys = 4000, rate: Float = 0.2
        let keep = 1 - rate, scale = 1 / keep, threshold = DropoutMask.threshold(keep: keep)
        var mask = [Float](repeating: -1, count: 32)
        var kept = 0, both = 0, sameAcrossNodes = 0, sameAcrossExamples = 0, pairs = 0
        var bothHalves = 0, halfPairs = 0  // entries e and e + 8 share a hash (its two halves)
        var previous = [Float](repeating: 0, count: 32)
        for seed in 0..<UInt64(keys) {
            DropoutMask.fill(&mask, width: width, key: DropoutMask.key(seed: seed, node: 3), threshold: threshold, scale: scale)
            var other = [Float](repeating: 0, count: 32)
            DropoutMask.fill(&other, width: width, key: DropoutMask.key(seed: seed, node: 4), threshold: threshold, scale: scale)
            for e in 0..<width {
                XCTAssertTrue(mask[e] == 0 || mask[e] == scale, "entry \(e) of seed \(seed) is \(mask[e])")
                if mask[e] != 0 { kept += 1 }
                if e > 0 && mask[e] != 0 && mask[e - 1] != 0 { both += 1 }
                if e % 16 >= 8 {
                    halfPairs += 1
                    if mask[e] != 0 && mask[e - 8] != 0 { bothHalves += 1 }
                }
                if (mask[e] != 0) == (other[e] != 0) { sameAcrossNodes += 1 }
                if seed > 0 && (mask[e] != 0) == (previous[e] != 0) { sameAcrossExamples += 1 }
            }
            pairs += width - 1
            previous = mask
        }
        let n = Double(keys * width), p = Double(keep)
        XCTAssertEqual(Double(kept) / n, p, accuracy: 0.01)
        XCTAssertEqual(Double(both) / Double(pairs), p * p, accuracy: 0.01)
        XCTAssertEqual(Double(bothHalves) / Double(halfPairs), p * p, accuracy: 0.01)
        // Independent entries agree with probability p² + (1 - p)².
        XCTAssertEqual(Double(sameAcrossNodes) / n, p * p + (1 - p) * (1 - p), accuracy: 0.01)
        XCTAssertEqual(Double(sameAcrossExamples) / Double((keys - 1) * width), p * p + (1 - p) * (1 - p), accuracy: 0.01)
    }

    /// A mask is a function of (seed, node, entry) alone: the same key gives the same mask, and
    /// an entry does not depend on how wide the row is.
    func testMasksAreAFunctionOfTheirCoordinates() {
        let threshold = DropoutMask.threshold(keep: 0.5)
        var a = [Float](repeating: 0, count: 40), b = [Float](repeating: 0, count: 40), c = [Float](repeating: 0, count: 16)
        DropoutMask.fill(&a, width: 40, key: DropoutMask.key(seed: 9, node: 1), threshold: threshold, scale: 2)
        DropoutMask.fill(&b, width: 40, key: DropoutMask.key(seed: 9, node: 1), threshold: threshold, scale: 2)
        DropoutMask.fill(&c, width: 13, key: DropoutMask.key(seed: 9, node: 1), threshold: threshold, scale: 2)
        XCTAssertEqual(a, b)
        XCTAssertEqual(Array(a.prefix(13)), Array(c.prefix(13)))
        DropoutMask.fill(&b, width: 40, key: DropoutMask.key(seed: 10, node: 1), threshold: threshold, scale: 2)
        XCTAssertNotEqual(a, b)
    }
}
