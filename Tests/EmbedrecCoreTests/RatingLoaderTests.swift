import XCTest
@testable import EmbedrecCore

final class RatingLoaderTests: XCTestCase {
    func testChunksArriveInOrderAndTheTrainerTakesThemOver() throws {
        let loader = try RatingLoader(count: 5, nUsers: 3, nItems: 4)
        try loader.append(users: [0, 2], items: [1, 3], ratings: [4, 5], count: 2)
        XCTAssertThrowsError(try loader.handOver { $0 }, "incomplete data must not reach a trainer")
        try loader.append(users: [1, 1, 0], items: [0, 2, 2], ratings: [1, 2, 3], count: 3)
        let set = try loader.handOver { $0 }
        XCTAssertEqual(Array(set.users.buffer), [0, 2, 1, 1, 0])
        XCTAssertEqual(Array(set.items.buffer), [1, 3, 0, 2, 2])
        XCTAssertEqual(Array(set.ratings.buffer), [4, 5, 1, 2, 3])
        // Empty afterwards: nobody else can reorder the trainer's data.
        XCTAssertThrowsError(try loader.handOver { $0 })
        XCTAssertThrowsError(try loader.append(users: [0], items: [0], ratings: [1], count: 1))
    }

    func testBadChunksAreRejectedWithPositionsInTheWholeSet() throws {
        let loader = try RatingLoader(count: 4, nUsers: 3, nItems: 4)
        try loader.append(users: [0, 1], items: [0, 1], ratings: [1, 2], count: 2)
        XCTAssertThrowsError(try loader.append(users: [0, 7], items: [0, 0], ratings: [1, 1], count: 2)) { error in
            XCTAssertTrue((error as! CoreError).message.contains("user index 7 at position 3"), "\(error)")
        }
        XCTAssertThrowsError(try loader.append(users: [0], items: [0], ratings: [.nan], count: 1)) { error in
            XCTAssertTrue((error as! CoreError).message.contains("position 2"), "\(error)")
        }
        XCTAssertThrowsError(try loader.append(users: [0, 0, 0], items: [0, 0, 0], ratings: [1, 1, 1], count: 3),
                             "more than announced")
        XCTAssertEqual(loader.filled, 2, "a rejected chunk adds nothing")
        XCTAssertThrowsError(try RatingLoader(count: 0, nUsers: 1, nItems: 1))
        XCTAssertThrowsError(try RatingLoader(count: 1, nUsers: 0, nItems: 1))
    }

    func testAFailedHandOverKeepsTheData() throws {
        let loader = try RatingLoader(count: 1, nUsers: 1, nItems: 1)
        try loader.append(users: [0], items: [0], ratings: [3], count: 1)
        struct Refused: Error {}
        XCTAssertThrowsError(try loader.handOver { _ in throw Refused() })
        XCTAssertEqual(try loader.handOver { $0.ratings[0] }, 3)
    }

    func testSeenItemsAsCSR() throws {
        let set = try RatingSet(users: [2, 0, 2, 1, 0], items: [5, 1, 3, 0, 4], ratings: [1, 1, 1, 1, 1],
                                count: 5, nUsers: 4, nItems: 6)
        var indptr = [Int64](repeating: -1, count: 5), items = [Int32](repeating: -1, count: 5)
        set.seen(nUsers: 4, indptr: &indptr, items: &items)
        XCTAssertEqual(indptr, [0, 2, 3, 5, 5])
        XCTAssertEqual(items, [1, 4, 0, 5, 3])
    }
}
