import CEmbedrecShims

/// The distinct rows of one table (users or items) that a mini-batch touches, each given a
/// slot in first-touch order, and every example's slot.
///
/// Why: sparse ("lazy") optimiser steps gather the gradient of each touched row into a compact
/// area of batch-size rows instead of a table-sized buffer, then step only those rows. A row's
/// slot is valid while its stamp equals the current batch stamp, so starting a batch costs
/// nothing however large the table is.
final class BatchRows {
    /// Per table row: the stamp of the last batch that touched it (high 32 bits) and its slot
    /// in that batch (low 32 bits): one load per example where two tables took two misses.
    private let tag: Buffer<UInt64>
    /// Per slot: the table row.
    let touched: Buffer<Int32>
    /// Per slot: the first example that touched it, and how many examples did.
    let firstExample: Buffer<Int32>
    let occurrences: Buffer<Int32>
    /// Per example of the batch: its row's slot.
    let slotOfExample: Buffer<Int32>
    /// The examples whose row an earlier example of the batch touched already, in batch order
    /// (`repeatCount` of them). A row's gradient total is its first example's plus these:
    /// summing over them instead of over the whole batch skips the examples of the rows
    /// touched once (most users).
    let repeats: Buffer<Int32>
    private(set) var repeatCount = 0
    private(set) var count = 0
    /// Stamp of the current batch. It runs on across batches and epochs: restarting it would
    /// make a row touched by an earlier batch with the same number look touched already.
    private var current: Int32 = -1

    init(rows: Int, capacity: Int) {
        tag = Buffer(repeating: BatchRows.tag(stamp: -1, slot: 0), count: rows)
        touched = Buffer(repeating: 0, count: capacity)
        firstExample = Buffer(repeating: 0, count: capacity)
        occurrences = Buffer(repeating: 0, count: capacity)
        slotOfExample = Buffer(repeating: 0, count: capacity)
        repeats = Buffer(repeating: 0, count: capacity)
    }

    /// Gives the rows `ids[0..<n]` (valid, n ≤ capacity) their slots for a new batch.
    func assign(_ ids: UnsafePointer<Int32>, count n: Int) {
        if current == Int32.max {  // after 2^31 batches: forget every stamp and start over
            tag.base.update(repeating: BatchRows.tag(stamp: -1, slot: 0), count: tag.count)
            current = -1
        }
        current += 1
        let tags = tag.base, t = touched.base, f = firstExample.base, e = slotOfExample.base
        let o = occurrences.base, reps = repeats.base
        var c = 0, r = 0
        let stamped = BatchRows.tag(stamp: current, slot: 0), slotBits: UInt64 = 0xFFFF_FFFF
        for j in 0..<n {
            // The row a few examples ahead: the tables' rows are at random in a table-sized array.
            if j &+ 16 < n { embedrec_prefetch_write(tags + Int(ids[j &+ 16])) }
            let row = Int(ids[j]), old = tags[row]
            var slot = Int(old & slotBits)
            if old & ~slotBits != stamped {
                slot = c
                tags[row] = stamped | UInt64(c)
                t[c] = Int32(row)
                f[c] = Int32(j)
                o[c] = 0
                c += 1
            }
            e[j] = Int32(slot)
            if o[slot] > 0 {
                reps[r] = Int32(j)
                r += 1
            }
            o[slot] += 1
        }
        count = c
        repeatCount = r
    }

    private static func tag(stamp: Int32, slot: Int) -> UInt64 {
        UInt64(UInt32(bitPattern: stamp)) << 32 | UInt64(slot)
    }
}
