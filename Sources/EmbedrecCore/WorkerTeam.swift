#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CEmbedrecShims

/// Threads that stay awake between the many short parallel steps of mini-batch training.
///
/// Why not Dispatch: a batch of 256 examples is two parallel steps of some tens of
/// microseconds each, and waking Dispatch's sleeping workers for each one cost about as much
/// again on 2-core VMs (two threads were barely faster than one at batch 256).
/// These workers spin for a while after each step, so the next step finds them running; after
/// about 20,000 idle turns (some 10 ms, most of them `sched_yield` calls of 0.5 µs) they back
/// off to short sleeps, so an idle trainer costs almost nothing.
///
/// Before yielding, a waiting thread spins with the CPU's pause hint for about 10 µs when the
/// team has no more threads than the machine has cores: the next step then finds it running
/// sooner. With more threads than cores that would hold a core the thread being waited for
/// needs (epochs took twice as long), so an oversubscribed team yields after a couple of
/// microseconds. (Measurements: docs/performance.md.)
///
/// The team belongs to one trainer, whose deinit must call `shutdown` (the workers hold the
/// team, so the team cannot stop itself).
final class WorkerTeam: @unchecked Sendable {
    /// Participants, the calling thread included.
    let size: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// The step being run; written by the caller before `generation` is bumped (release) and
    /// read by workers after they see the bump (acquire).
    private var job: ((Int) -> Void)? = nil
    private var threads: [pthread_t] = []
    /// Whether a waiting thread spins longer (with pause hints) before yielding its core: only
    /// when every participant can have a core of its own.
    private let patient: Bool

    /// A team of `size` participants: the caller plus `size - 1` worker threads (none for 1).
    init(size: Int) {
        self.size = max(1, size)
        patient = self.size <= activeProcessorCount()
        for t in 1..<self.size {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(WorkerContext(team: self, index: t)).toOpaque()
            let made = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.team.work(as: context.index)
                return nil
            }, context)
            if made == 0 {
                threads.append(thread)
            } else {
                Unmanaged<WorkerContext>.fromOpaque(context).release()
                break  // fewer threads: `run` then gives the missing participants' share to the caller
            }
        }
    }

    /// Runs `body(t)` for every participant t in 0..<size at once (the caller is t = 0) and
    /// returns when all are done.
    func run(_ body: (Int) -> Void) {
        let workers = threads.count
        if workers == 0 {
            for t in 0..<size { body(t) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            pending.store(workers, ordering: .relaxed)
            generation.add(1, ordering: .releasing)
            body(0)
            for t in (workers + 1)..<max(size, workers + 1) { body(t) }  // participants whose thread failed
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                wait(spins, yieldingAfter: 1_000)
            }
            job = nil
        }
    }

    private func work(as index: Int) {
        var seen = 0
        while true {
            var idle = 0
            while generation.load(ordering: .acquiring) == seen {
                if stopping.load(ordering: .relaxed) { return }
                idle += 1
                if idle > 20_000 {  // some 10 ms idle: nap instead of spinning, longer later
                    var pause = timespec(tv_sec: 0, tv_nsec: idle > 21_000 ? 1_000_000 : 50_000)
                    nanosleep(&pause, nil)
                } else {
                    wait(idle, yieldingAfter: 2_000)
                }
            }
            seen = generation.load(ordering: .acquiring)
            do {  // the step's closure is released before the step counts as done
                let step = job
                step?(index)
            }
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// One turn of a spin-wait: a pause hint for the first 400 turns (about 10 µs) of a patient
    /// team, then `sched_yield`; an impatient team spins `yieldingAfter` bare turns first.
    @inline(__always)
    private func wait(_ turn: Int, yieldingAfter bare: Int) {
        if patient {
            if turn > 400 { sched_yield() } else { embedrec_spin_pause() }
        } else if turn > bare {
            sched_yield()
        }
    }

    /// Stops and joins the workers. Called once, by the owner, when no step is running.
    func shutdown() {
        stopping.store(true, ordering: .relaxed)
        for thread in threads { pthread_join(thread, nil) }
        threads = []
    }
}

private final class WorkerContext {
    let team: WorkerTeam
    let index: Int
    init(team: WorkerTeam, index: Int) {
        self.team = team
        self.index = index
    }
}
