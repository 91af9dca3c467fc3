#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Readers (predict, evaluate, copying weights out) may share a model; a writer (a training
/// epoch, loading weights) needs it alone.
///
/// Readers never wait: while a writer holds or has claimed the model they fail at once with
/// `.busy` ("being trained by another thread"), so a notebook cell never hangs on a model that a
/// background thread is training. A writer claims the model first (turning new readers away),
/// then waits a few seconds for the readers already inside to finish: those
/// calls are short, and a training run must not die because a prediction happened to be running
/// between two of its epochs. A second writer fails at once.
/// (`writerPatience` bounds that wait.)
public final class UseGuard: Sendable {
    /// Low bits: number of readers inside. `pendingWriter` added: a writer has claimed the
    /// model and waits for the readers to leave. -1: a writer is inside.
    private let state = Atomic<Int>(0)
    private static let pendingWriter = 1 << 40
    /// Seconds a writer waits for readers already inside.
    public let writerPatience: Double

    public init(writerPatience: Double = 10) {
        self.writerPatience = writerPatience
    }

    public func withReading<T>(_ body: () throws -> T) throws -> T {
        while true {
            let s = state.load(ordering: .acquiring)
            if s < 0 || s >= UseGuard.pendingWriter {
                throw CoreError(.busy, "the model is being trained or modified by another thread; wait for that call to finish")
            }
            if state.compareExchange(expected: s, desired: s + 1, ordering: .acquiringAndReleasing).exchanged { break }
        }
        defer { state.subtract(1, ordering: .releasing) }
        return try body()
    }

    public func withWriting<T>(_ body: () throws -> T) throws -> T {
        // Claim: possible only when no other writer is inside or waiting.
        while true {
            let s = state.load(ordering: .acquiring)
            if s < 0 || s >= UseGuard.pendingWriter {
                throw CoreError(.busy, "the model is already being trained or modified by another thread; wait for that call to finish")
            }
            if state.compareExchange(expected: s, desired: s + UseGuard.pendingWriter, ordering: .acquiringAndReleasing).exchanged { break }
        }
        // Wait for the readers inside to leave; no new reader or writer can enter meanwhile.
        let deadline = monotonicSeconds() + writerPatience
        while !state.compareExchange(expected: UseGuard.pendingWriter, desired: -1, ordering: .acquiringAndReleasing).exchanged {
            if monotonicSeconds() > deadline {
                state.subtract(UseGuard.pendingWriter, ordering: .releasing)
                throw CoreError(.busy, "another thread kept reading the model for \(Int(writerPatience)) s; could not start training")
            }
            var pause = timespec(tv_sec: 0, tv_nsec: 50_000)
            nanosleep(&pause, nil)
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

/// Progress of the running epoch, published by the training threads and read by another
/// thread (the progress bar): examples done, examples in the epoch, and the sum of their losses.
public final class EpochProgress: Sendable {
    private let done = Atomic<Int>(0)
    private let total = Atomic<Int>(0)
    private let lossBits = Atomic<UInt64>(0)
    public init() {}

    public func start(total n: Int) {
        done.store(0, ordering: .relaxed)
        total.store(n, ordering: .relaxed)
        lossBits.store(0, ordering: .relaxed)
    }

    /// Adds `count` finished examples whose losses sum to `loss`.
    public func add(_ count: Int, loss: Double) {
        done.add(count, ordering: .relaxed)
        var old = lossBits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + loss).bitPattern
            let (exchanged, current) = lossBits.compareExchange(expected: old, desired: new, ordering: .relaxed)
            if exchanged { break }
            old = current
        }
    }

    public var snapshot: (done: Int, total: Int, lossSum: Double) {
        (done.load(ordering: .relaxed), total.load(ordering: .relaxed), Double(bitPattern: lossBits.load(ordering: .relaxed)))
    }
}
