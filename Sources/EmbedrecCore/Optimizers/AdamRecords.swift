/// One table's rows as Adam trains them (`AdamTrainer`): row r's record, `stride` floats from
/// a 64-byte boundary, holds its k factors and its bias, then their first moments (k + 1),
/// then their second moments (k + 1).
///
/// Why: a rating's user is a row at random among tens of thousands, rarely in any cache, and a
/// step reads and writes all of that row's state. Kept in the model's tables and two moment
/// tables, that state was four places in memory per row (factors, moments, bias, bias
/// moments), each a separate fetch; in a record it is one run of cache lines, fetched once
/// (an eighth off Adam MF's epoch; docs/performance.md).
///
/// The model's tables are copied in when training starts and out after every epoch (an
/// interrupted one too), so between epochs the model is what it would have been without the
/// records. Costs k + 1 floats per row more than the moments alone (the factors are held
/// twice while training) plus padding to whole cache lines.
///
/// The bias follows the factors (and its moments the factors' moments) so that Adam steps it
/// as the row's entry k, in the vector that ends the row, not with scalar arithmetic of its
/// own: two fewer scalar square roots and divisions per row, on a divider the rows' vectors
/// keep busy. Same bits: each entry's step reads only that entry.
final class Records {
    let k: Int
    let rows: Int
    /// Floats from one record to the next.
    let stride: Int
    /// All records, from a cache-line boundary (on huge pages when large).
    private let storage: Buffer<Float>

    /// Floats per record: 3k + 3 rounded up to whole 64-byte lines.
    static func stride(k: Int) -> Int { (3 * k + 3 + 15) & ~15 }

    init(rows: Int, k: Int) {
        self.k = k
        self.rows = rows
        stride = Records.stride(k: k)
        storage = Buffer(repeating: 0, count: rows * stride, hugePages: true)
    }

    /// Row r's record.
    @inline(__always) func record(_ r: Int) -> UnsafeMutablePointer<Float> { storage.base + r &* stride }

    /// Offsets within a record.
    @inline(__always) var bias: Int { k }
    @inline(__always) var firstMoments: Int { k &+ 1 }
    @inline(__always) var secondMoments: Int { 2 &* k &+ 2 }

    /// Copies factors (rows × k) and biases (rows) in.
    func load(factors: UnsafePointer<Float>, biases: UnsafePointer<Float>) {
        for r in 0..<rows {
            let rec = record(r)
            rec.update(from: factors + r &* k, count: k)
            rec[bias] = biases[r]
        }
    }

    /// Copies rows `part` of the factors and biases out.
    func store(factors: UnsafeMutablePointer<Float>, biases: UnsafeMutablePointer<Float>, rows part: Range<Int>) {
        for r in part {
            let rec = record(r)
            (factors + r &* k).update(from: rec, count: k)
            biases[r] = rec[bias]
        }
    }
}
