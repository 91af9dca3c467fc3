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

    /// The ratings' shuffle (its draws made ahead of the swaps) moves the three arrays in
    /// lockstep by exactly the permutation that a plain Fisher–Yates with the same generator gives.
    func testRatingShuffleIsThePlainFisherYatesPermutation() throws {
        for count in [0, 1, 2, 17, 1_000] {
            let users = (0..<count).map { Int32($0) }, items = (0..<count).map { Int32(($0 * 7) % 1_000) }
            let ratings = (0..<count).map { Float($0) + 0.5 }
            let data = try RatingSet(users: users, items: items, ratings: ratings, count: count, nUsers: 1_000, nItems: 1_000)
            var a = Xoshiro256(seed: 9), b = Xoshiro256(seed: 9)
            data.shuffle(using: &a)
            var order = Array(0..<count)
            order.withUnsafeMutableBufferPointer { b.shuffle($0) }
            XCTAssertEqual(Array(data.users.buffer), order.map { users[$0] }, "count \(count)")
            XCTAssertEqual(Array(data.items.buffer), order.map { items[$0] })
            XCTAssertEqual(Array(data.ratings.buffer), order.map { ratings[$0] })
            XCTAssertEqual(a.next(), b.next(), "both drew as many numbers")
        }
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
