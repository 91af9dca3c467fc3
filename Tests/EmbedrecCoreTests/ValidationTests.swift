import Dispatch
import XCTest
@testable import EmbedrecCore

final class ValidationTests: XCTestCase {
    func testRatingSetRejectsBadIdsAndValues() {
        XCTAssertThrowsError(try RatingSet(users: [0, 5], items: [0, 0], ratings: [1, 2], count: 2, nUsers: 5, nItems: 1))
        XCTAssertThrowsError(try RatingSet(users: [0, -1], items: [0, 0], ratings: [1, 2], count: 2, nUsers: 5, nItems: 1))
        XCTAssertThrowsError(try RatingSet(users: [0], items: [1], ratings: [1], count: 1, nUsers: 5, nItems: 1))
        XCTAssertThrowsError(try RatingSet(users: [0], items: [0], ratings: [.nan], count: 1, nUsers: 5, nItems: 1))
        XCTAssertThrowsError(try RatingSet(users: [0], items: [0], ratings: [.infinity], count: 1, nUsers: 5, nItems: 1))
        XCTAssertNoThrow(try RatingSet(users: [4], items: [0], ratings: [1], count: 1, nUsers: 5, nItems: 1))
    }

    func testModelConfigLimits() {
        XCTAssertThrowsError(try MFModel(config: MFConfig(nUsers: 0, nItems: 1, nFactors: 1), initStd: 0.1, seed: 0))
        XCTAssertThrowsError(try MFModel(config: MFConfig(nUsers: 1, nItems: 1, nFactors: 0), initStd: 0.1, seed: 0))
        XCTAssertThrowsError(try MFModel(config: MFConfig(nUsers: 1, nItems: 1, nFactors: 2, yRange: (5, 1)), initStd: 0.1, seed: 0))
        XCTAssertThrowsError(try MFModel(config: MFConfig(nUsers: 1, nItems: 1, nFactors: 2), initStd: .nan, seed: 0))
    }

    func testHugeModelIsAnOutOfMemoryErrorNotACrash() {
        XCTAssertThrowsError(try MFModel(config: MFConfig(nUsers: 2_000_000_000, nItems: 10, nFactors: 65536), initStd: 0.1, seed: 0)) { error in
            XCTAssertEqual((error as? CoreError)?.kind, .outOfMemory)
        }
    }

    func testTrainOptionsLimits() {
        var o = TrainOptions()
        o.learningRate = 0
        XCTAssertThrowsError(try o.validate())
        o = TrainOptions(); o.epochs = 0
        XCTAssertThrowsError(try o.validate())
        o = TrainOptions(); o.weightDecay = -1
        XCTAssertThrowsError(try o.validate())
        o = TrainOptions(); o.batchSize = 0
        XCTAssertThrowsError(try o.validate())
        XCTAssertNoThrow(try TrainOptions().validate())
    }

    func testUseGuardRefusesConflictingUse() throws {
        let g = UseGuard(writerPatience: 0.05)
        try g.withReading {
            XCTAssertThrowsError(try g.withWriting {}) { XCTAssertEqual(($0 as? CoreError)?.kind, .busy) }
            XCTAssertNoThrow(try g.withReading {})
        }
        try g.withWriting {
            XCTAssertThrowsError(try g.withReading {}) { XCTAssertEqual(($0 as? CoreError)?.kind, .busy) }
        }
        XCTAssertNoThrow(try g.withWriting {})
    }
}

final class UseGuardTests: XCTestCase {
    /// A writer waits for a reader already inside instead of failing, and readers arriving
    /// meanwhile are turned away.
    func testWriterWaitsForReadersInsideAndBlocksNewOnes() throws {
        let g = UseGuard()
        let readerInside = DispatchSemaphore(value: 0)
        let releaseReader = DispatchSemaphore(value: 0)
        let readerDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? g.withReading {
                readerInside.signal()
                releaseReader.wait()
            }
            readerDone.signal()
        }
        readerInside.wait()
        let writerDone = DispatchSemaphore(value: 0)
        let wrote = UncheckedBox(false)
        DispatchQueue.global().async {
            wrote.value = (try? g.withWriting { true }) ?? false
            writerDone.signal()
        }
        // Give the writer time to claim; a new reader must now be refused.
        var refused = false
        for _ in 0..<200 {
            if (try? g.withReading { () }) == nil { refused = true; break }
            usleep(1000)
        }
        XCTAssertTrue(refused)
        releaseReader.signal()
        readerDone.wait()
        XCTAssertEqual(writerDone.wait(timeout: .now() + 5), .success)
        XCTAssertTrue(wrote.value)
        XCTAssertNoThrow(try g.withReading {})
    }
}

final class UncheckedBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
