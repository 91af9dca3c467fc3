import XCTest
@testable import EmbedrecCore
import CEmbedrecShims

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

    /// The default thread count is the CPUs the affinity mask allows, never more than are
    /// online (the Python tests check it under `taskset -c 0`).
    func testProcessorCountFollowsTheAffinityMask() {
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let allowed = Int(embedrec_allowed_cpus())
        XCTAssertGreaterThan(allowed, 0, "the affinity mask should be readable on Linux")
        XCTAssertEqual(activeProcessorCount(), min(online, allowed))
        XCTAssertEqual(resolveThreads(0, work: 1_000_000, minPerThread: 1), min(online, allowed))
    }
}
