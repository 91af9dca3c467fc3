import XCTest
@testable import EmbedrecCore

final class RandomTests: XCTestCase {
    func testNextIndexIsUniformOverTheWholeRange() {
        var rng = Xoshiro256(seed: 1)
        for bound in [2, 7, 40, 1000] {
            var counts = [Int](repeating: 0, count: bound)
            let draws = 2000 * bound
            for _ in 0..<draws {
                let j = rng.nextIndex(below: bound)
                XCTAssertTrue((0..<bound).contains(j))
                counts[j] += 1
            }
            // Every value occurs, each within 15% of its expected count.
            XCTAssertTrue(counts.allSatisfy { abs($0 - 2000) < 300 }, "bound \(bound): \(counts.min()!)...\(counts.max()!)")
        }
    }

    func testShuffleGivesVariedPermutations() {
        var rng = Xoshiro256(seed: 3)
        var firsts = Set<Int32>()
        var seen = Set<[Int32]>()
        for _ in 0..<200 {
            var values = (0..<10).map { Int32($0) }
            values.withUnsafeMutableBufferPointer { rng.shuffle($0) }
            XCTAssertEqual(values.sorted(), (0..<10).map { Int32($0) })
            firsts.insert(values[0])
            seen.insert(values)
        }
        XCTAssertEqual(firsts.count, 10)
        XCTAssertGreaterThan(seen.count, 190)
    }

    func testNormalHasUnitVariance() {
        var rng = Xoshiro256(seed: 5)
        var sum = 0.0, squares = 0.0
        for _ in 0..<100_000 {
            let x = Double(rng.nextNormal())
            sum += x
            squares += x * x
        }
        XCTAssertEqual(sum / 100_000, 0, accuracy: 0.02)
        XCTAssertEqual(squares / 100_000, 1, accuracy: 0.03)
    }
}
