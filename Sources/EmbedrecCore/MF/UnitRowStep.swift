/// The hybrid SGD step of a rating whose two sides are each the sum of one to four vector rows
/// of weight 1 (an id, single-valued categories; bias-only rows may sit beside them), in two
/// passes over the k entries: one for the score, one that steps every row.
///
/// Why: the general step (`FeatureSGDStep`'s other path) composes each side into a scratch
/// vector one row at a time and then steps one row at a time, a pass each, so a rating whose
/// item is four rows stores about nine vectors an entry and loads about twenty, and an item of
/// its id row and bias-only rows alone cost 40% more than plain SGD. Here the composed vectors
/// live only in registers: the first pass loads every row once and stores nothing, the second
/// loads them again (from L1) and stores each row once. The row counts are type parameters
/// (`OneRow` ... `FourRows`), so each pair of counts compiles to straight-line loops.
///
/// Same bits as the general step: each composition adds its rows in the same order (by weight
/// 1, so without products), the score is `Kernels.dot`'s order (full vectors, then the tail
/// entry by entry), and each row's step is `row · keep + (lr · g) · other` from the values
/// before the rating, as there.
struct UnitRows {
    /// The rows' first entries; `count` of them are set.
    private var r0, r1, r2, r3: UnsafeMutablePointer<Float>
    private(set) var count = 0
    /// The most rows a side may have (`FourRows`).
    static let most = 4

    init(placeholder: UnsafeMutablePointer<Float>) {
        r0 = placeholder; r1 = placeholder; r2 = placeholder; r3 = placeholder
    }

    /// Adds a row; false when there are four already or the row is among them (a row stepped
    /// twice in one rating must see its first step, which a single pass would not give it).
    @inline(__always)
    mutating func append(_ r: UnsafeMutablePointer<Float>) -> Bool {
        switch count {
        case 0: r0 = r
        case 1: guard r != r0 else { return false }; r1 = r
        case 2: guard r != r0, r != r1 else { return false }; r2 = r
        case 3: guard r != r0, r != r1, r != r2 else { return false }; r3 = r
        default: return false  // more than `most`
        }
        count &+= 1
        return true
    }

    /// Calls `visitor` with these rows as the `UnitRowSet` of their count (at least one).
    @inline(__always)
    func visit<V: UnitRowsVisitor>(_ visitor: V) -> V.Result {
        switch count {
        case 1: return visitor.visit(OneRow(a: r0))
        case 2: return visitor.visit(TwoRows(a: r0, b: r1))
        case 3: return visitor.visit(ThreeRows(a: r0, b: r1, c: r2))
        default: return visitor.visit(FourRows(a: r0, b: r1, c: r2, d: r3))
        }
    }

    /// users' composed vector · items' composed vector, in `Kernels.dot`'s order.
    static func dot(_ users: UnitRows, _ items: UnitRows, _ k: Int) -> Float {
        users.visit(ForUsers(items: items, kernel: DotKernel(k: k)))
    }

    /// Steps every row of both sides: a user row by `step` times the items' composed vector,
    /// an item row by `step` times the users', all from the values before this step; every
    /// row decays by `keep` and, with `nonNegative`, is clamped at zero (as
    /// `Kernels.clampNonNegative`: negative entries become +0, NaN stays).
    static func step(users: UnitRows, items: UnitRows, _ k: Int, keep: Float, step: Float, nonNegative: Bool) {
        users.visit(ForUsers(items: items, kernel: StepKernel(k: k, keep: keep, step: step, nonNegative: nonNegative)))
    }
}

/// One to four rows summed entry by entry, and stepped together.
protocol UnitRowSet {
    /// The sum of entries j..<j+8 of the rows, added in order.
    func sum8(_ j: Int) -> SIMD8<Float>
    /// Entry j of the sum, as a lane of `sum8`.
    func sum1(_ j: Int) -> Float
    /// Entries j..<j+8 of every row become row · keep + add (clamped at +0 with `clamp`).
    func step8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool)
    /// Entry j of `step8`.
    func step1(_ j: Int, keep: Float, add: Float, clamp: Bool)
    /// `step8`'s new entries j..<j+8 of every row, written to `out` (eight a row) instead.
    func stepped8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool, into out: UnsafeMutablePointer<Float>)
    /// Entries j..<j+8 of every row from `out`, as `stepped8` wrote them.
    func put8(_ j: Int, from out: UnsafePointer<Float>)
}

/// row[j..<j+8] = row · keep + add, clamped at +0 (NaN kept) with `clamp`.
@inline(__always)
private func stepRow8(_ r: UnsafeMutablePointer<Float>, _ j: Int, _ keep: SIMD8<Float>, _ add: SIMD8<Float>, _ clamp: Bool) {
    var x = Kernels.load8(r + j) * keep + add
    if clamp { x.replace(with: 0, where: x .< 0) }
    Kernels.store8(x, r + j)
}

/// `stepRow8`'s new entries, written to `out` instead.
@inline(__always)
private func steppedRow8(_ r: UnsafeMutablePointer<Float>, _ j: Int, _ keep: SIMD8<Float>, _ add: SIMD8<Float>,
                         _ clamp: Bool, _ out: UnsafeMutablePointer<Float>) {
    var x = Kernels.load8(r + j) * keep + add
    if clamp { x.replace(with: 0, where: x .< 0) }
    Kernels.store8(x, out)
}

/// Entry j of `stepRow8`.
@inline(__always)
private func stepRow1(_ r: UnsafeMutablePointer<Float>, _ j: Int, _ keep: Float, _ add: Float, _ clamp: Bool) {
    let x = r[j] * keep + add
    r[j] = clamp && x < 0 ? 0 : x
}

struct OneRow: UnitRowSet {
    let a: UnsafeMutablePointer<Float>
    @inline(__always) func sum8(_ j: Int) -> SIMD8<Float> { Kernels.load8(a + j) }
    @inline(__always) func sum1(_ j: Int) -> Float { a[j] }
    @inline(__always) func step8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool) {
        stepRow8(a, j, keep, add, clamp)
    }
    @inline(__always) func step1(_ j: Int, keep: Float, add: Float, clamp: Bool) { stepRow1(a, j, keep, add, clamp) }
    @inline(__always) func stepped8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool,
                                    into out: UnsafeMutablePointer<Float>) {
        steppedRow8(a, j, keep, add, clamp, out + 0)
    }
    @inline(__always) func put8(_ j: Int, from out: UnsafePointer<Float>) {
        Kernels.store8(Kernels.load8(out + 0), a + j)
    }
}

struct TwoRows: UnitRowSet {
    let a, b: UnsafeMutablePointer<Float>
    @inline(__always) func sum8(_ j: Int) -> SIMD8<Float> { Kernels.load8(a + j) + Kernels.load8(b + j) }
    @inline(__always) func sum1(_ j: Int) -> Float { a[j] + b[j] }
    @inline(__always) func step8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool) {
        stepRow8(a, j, keep, add, clamp); stepRow8(b, j, keep, add, clamp)
    }
    @inline(__always) func step1(_ j: Int, keep: Float, add: Float, clamp: Bool) {
        stepRow1(a, j, keep, add, clamp); stepRow1(b, j, keep, add, clamp)
    }
    @inline(__always) func stepped8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool,
                                    into out: UnsafeMutablePointer<Float>) {
        steppedRow8(a, j, keep, add, clamp, out + 0)
        steppedRow8(b, j, keep, add, clamp, out + 8)
    }
    @inline(__always) func put8(_ j: Int, from out: UnsafePointer<Float>) {
        Kernels.store8(Kernels.load8(out + 0), a + j)
        Kernels.store8(Kernels.load8(out + 8), b + j)
    }
}

/// Three rows: the steps are `TwoRows`' and `OneRow`'s (the sums are written out, to keep
/// their order of addition).
struct ThreeRows: UnitRowSet {
    let a, b, c: UnsafeMutablePointer<Float>
    private var ab: TwoRows { TwoRows(a: a, b: b) }
    private var cc: OneRow { OneRow(a: c) }
    @inline(__always) func sum8(_ j: Int) -> SIMD8<Float> {
        Kernels.load8(a + j) + Kernels.load8(b + j) + Kernels.load8(c + j)
    }
    @inline(__always) func sum1(_ j: Int) -> Float { a[j] + b[j] + c[j] }
    @inline(__always) func step8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool) {
        ab.step8(j, keep: keep, add: add, clamp: clamp); cc.step8(j, keep: keep, add: add, clamp: clamp)
    }
    @inline(__always) func step1(_ j: Int, keep: Float, add: Float, clamp: Bool) {
        ab.step1(j, keep: keep, add: add, clamp: clamp); cc.step1(j, keep: keep, add: add, clamp: clamp)
    }
    @inline(__always) func stepped8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool,
                                    into out: UnsafeMutablePointer<Float>) {
        ab.stepped8(j, keep: keep, add: add, clamp: clamp, into: out)
        cc.stepped8(j, keep: keep, add: add, clamp: clamp, into: out + 16)
    }
    @inline(__always) func put8(_ j: Int, from out: UnsafePointer<Float>) {
        ab.put8(j, from: out); cc.put8(j, from: out + 16)
    }
}

/// Four rows: the steps are two `TwoRows`' (the sums are written out, to keep their order of
/// addition).
struct FourRows: UnitRowSet {
    let a, b, c, d: UnsafeMutablePointer<Float>
    private var ab: TwoRows { TwoRows(a: a, b: b) }
    private var cd: TwoRows { TwoRows(a: c, b: d) }
    @inline(__always) func sum8(_ j: Int) -> SIMD8<Float> {
        Kernels.load8(a + j) + Kernels.load8(b + j) + Kernels.load8(c + j) + Kernels.load8(d + j)
    }
    @inline(__always) func sum1(_ j: Int) -> Float { a[j] + b[j] + c[j] + d[j] }
    @inline(__always) func step8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool) {
        ab.step8(j, keep: keep, add: add, clamp: clamp); cd.step8(j, keep: keep, add: add, clamp: clamp)
    }
    @inline(__always) func step1(_ j: Int, keep: Float, add: Float, clamp: Bool) {
        ab.step1(j, keep: keep, add: add, clamp: clamp); cd.step1(j, keep: keep, add: add, clamp: clamp)
    }
    @inline(__always) func stepped8(_ j: Int, keep: SIMD8<Float>, add: SIMD8<Float>, clamp: Bool,
                                    into out: UnsafeMutablePointer<Float>) {
        ab.stepped8(j, keep: keep, add: add, clamp: clamp, into: out)
        cd.stepped8(j, keep: keep, add: add, clamp: clamp, into: out + 16)
    }
    @inline(__always) func put8(_ j: Int, from out: UnsafePointer<Float>) {
        ab.put8(j, from: out); cd.put8(j, from: out + 16)
    }
}

/// What `UnitRows.visit` calls with the rows' concrete type (Swift has no generic closures).
protocol UnitRowsVisitor {
    associatedtype Result
    func visit<R: UnitRowSet>(_ rows: R) -> Result
}

/// A computation on both sides' rows, each of a concrete type.
protocol UnitRowsKernel {
    associatedtype Result
    func run<U: UnitRowSet, I: UnitRowSet>(users: U, items: I) -> Result
}

/// Given the users' concrete rows, visits the items' rows and runs the kernel on both.
struct ForUsers<K: UnitRowsKernel>: UnitRowsVisitor {
    let items: UnitRows
    let kernel: K
    @inline(__always) func visit<U: UnitRowSet>(_ users: U) -> K.Result {
        items.visit(WithUsers(users: users, kernel: kernel))
    }
}

struct WithUsers<U: UnitRowSet, K: UnitRowsKernel>: UnitRowsVisitor {
    let users: U
    let kernel: K
    @inline(__always) func visit<I: UnitRowSet>(_ items: I) -> K.Result { kernel.run(users: users, items: items) }
}

struct DotKernel: UnitRowsKernel {
    let k: Int
    func run<U: UnitRowSet, I: UnitRowSet>(users: U, items: I) -> Float {
        var acc = SIMD8<Float>()
        var j = 0
        while j &+ 8 <= k {
            acc += users.sum8(j) * items.sum8(j)
            j &+= 8
        }
        var s = acc.sum()
        while j < k {
            s += users.sum1(j) * items.sum1(j)
            j &+= 1
        }
        return s
    }
}

struct StepKernel: UnitRowsKernel {
    let k: Int
    let keep, step: Float
    let nonNegative: Bool
    func run<U: UnitRowSet, I: UnitRowSet>(users: U, items: I) {
        let clamp = nonNegative
        guard k >= 8 else {
            for j in 0..<k {
                let p = users.sum1(j), q = items.sum1(j)
                users.step1(j, keep: keep, add: step * q, clamp: clamp)
                items.step1(j, keep: keep, add: step * p, clamp: clamp)
            }
            return
        }
        let vKeep = SIMD8<Float>(repeating: keep), vStep = SIMD8<Float>(repeating: step)
        // Rows whose length is not a multiple of 8 end with one vector that overlaps the last
        // full one (as `Kernels.elementwise`): computed from the old entries first, stored last.
        let full = k & ~7, last = k &- 8
        let side = UnitRows.most * 8  // a side's tails: eight entries a row
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * side) { tails in
            let tails = tails.baseAddress!
            if full < k {
                let p = users.sum8(last), q = items.sum8(last)
                users.stepped8(last, keep: vKeep, add: vStep * q, clamp: clamp, into: tails)
                items.stepped8(last, keep: vKeep, add: vStep * p, clamp: clamp, into: tails + side)
            }
            var j = 0
            while j < full {
                let p = users.sum8(j), q = items.sum8(j)
                users.step8(j, keep: vKeep, add: vStep * q, clamp: clamp)
                items.step8(j, keep: vKeep, add: vStep * p, clamp: clamp)
                j &+= 8
            }
            if full < k {
                users.put8(last, from: tails)
                items.put8(last, from: tails + side)
            }
        }
    }
}
