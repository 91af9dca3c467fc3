import Dispatch

/// Resolves the user's thread count: 0 means every core, and no more threads than chunks of
/// useful work (`minPerThread` items each), since thread start-up dominates on small data.
public func resolveThreads(_ requested: Int, work: Int, minPerThread: Int) -> Int {
    let cores = max(1, activeProcessorCount())
    let wanted = requested <= 0 ? cores : requested
    let useful = max(1, work / max(1, minPerThread))
    return max(1, min(wanted, useful))
}

func activeProcessorCount() -> Int {
    #if canImport(Glibc)
    return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
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
