import Synchronization

/// Readers (predict, evaluate, copying weights out) may share a model; a writer (a training
/// epoch, loading weights) needs it alone. Neither side waits: a conflicting call fails with
/// `.busy` at once, which the Python layer reports as "model is being trained in another
/// thread". Waiting could deadlock a notebook that trains in a background thread.
public final class UseGuard: Sendable {
    /// > 0: that many readers; -1: one writer; 0: free.
    private let state = Atomic<Int>(0)

    public init() {}

    public func withReading<T>(_ body: () throws -> T) throws -> T {
        while true {
            let s = state.load(ordering: .acquiring)
            if s < 0 { throw CoreError(.busy, "the model is being trained or modified by another thread; wait for that call to finish") }
            if state.compareExchange(expected: s, desired: s + 1, ordering: .acquiringAndReleasing).exchanged { break }
        }
        defer { state.subtract(1, ordering: .releasing) }
        return try body()
    }

    public func withWriting<T>(_ body: () throws -> T) throws -> T {
        guard state.compareExchange(expected: 0, desired: -1, ordering: .acquiringAndReleasing).exchanged else {
            throw CoreError(.busy, "the model is in use by another thread (training, predicting or saving); wait for that call to finish")
        }
        defer { state.store(0, ordering: .releasing) }
        return try body()
    }
}

/// A flag another thread sets to stop training at the next chunk boundary.
public final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func set() { flag.store(true, ordering: .relaxed) }
    public func clear() { flag.store(false, ordering: .relaxed) }
    public var isSet: Bool { flag.load(ordering: .relaxed) }
}
