import Dispatch
import CEmbedrecShims

/// Resolves the user's thread count: 0 means every core, and no more threads than chunks of
/// useful work (`minPerThread` items each), since thread start-up dominates on small data.
public func resolveThreads(_ requested: Int, work: Int, minPerThread: Int) -> Int {
    let cores = max(1, activeProcessorCount())
    let wanted = requested <= 0 ? cores : requested
    let useful = max(1, work / max(1, minPerThread))
    return max(1, min(wanted, useful))
}

/// The CPUs this process may use: the online ones, or fewer when its affinity mask allows fewer
/// (`taskset`, a container limited to some CPUs). Counting only the online ones, `n_threads=0`
/// under `taskset -c 0` ran two spinning threads on one core, each step about twice as slow.
func activeProcessorCount() -> Int {
    #if canImport(Glibc)
    let online = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    let allowed = Int(embedrec_allowed_cpus())
    return allowed > 0 ? min(online, allowed) : online
    #else
    return 1
    #endif
}

/// Runs `body(chunk, range)` over `count` items split into `chunks` contiguous ranges, in
/// parallel when chunks > 1. The split depends only on (count, chunks), so results that are
/// reduced per chunk and then combined in chunk order are identical on every run.
public func parallelChunks(count: Int, chunks: Int, _ body: (Int, Range<Int>) -> Void) {
    let n = max(1, min(chunks, max(count, 1)))
    if n == 1 {
        body(0, 0..<count)
        return
    }
    withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: n) { c in
            let lo = count * c / n
            let hi = count * (c + 1) / n
            box.value(c, lo..<hi)
        }
    }
}

/// Dispatch's worker closure is @Sendable; the pointers and closures the core hands to it are
/// partitioned by chunk (or deliberately raced, for Hogwild SGD), which the compiler cannot see.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

#if canImport(Glibc)
import Glibc
#endif
