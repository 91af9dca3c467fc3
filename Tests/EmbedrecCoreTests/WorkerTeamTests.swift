import XCTest
@testable import EmbedrecCore

final class WorkerTeamTests: XCTestCase {
    /// Every participant runs exactly once per step, steps do not overlap, and shutdown returns.
    func testEveryParticipantRunsOncePerStep() {
        for size in [1, 2, 3] {
            let team = WorkerTeam(size: size)
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: size)
            counts.initialize(repeating: 0, count: size)
            let shared = UncheckedSendable(counts)
            for step in 0..<2_000 {
                team.run { t in shared.value[t] += 1 }
                for t in 0..<size { XCTAssertEqual(counts[t], step + 1) }
            }
            team.shutdown()
            counts.deallocate()
        }
    }
}
