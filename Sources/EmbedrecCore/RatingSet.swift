import CEmbedrecShims

/// Ratings as the core keeps them: row indices (Int32) and values (Float32), 12 bytes a rating,
/// copied once from the caller and validated on the way in, so the training loops can index
/// without checks.
public final class RatingSet {
    public let count: Int
    public let users: Buffer<Int32>
    public let items: Buffer<Int32>
    public let ratings: Buffer<Float>

    /// Copies and validates: every user in 0..<nUsers, every item in 0..<nItems, every rating
    /// finite. The messages give the first offending position and value.
    public init(users: UnsafePointer<Int32>, items: UnsafePointer<Int32>, ratings: UnsafePointer<Float>,
                count: Int, nUsers: Int, nItems: Int, what: String = "ratings") throws {
        guard count >= 0 else { throw CoreError.invalid("\(what): negative length \(count)") }
        guard count <= Int(Int32.max) else {
            throw CoreError.invalid("\(what): \(count) ratings is more than the supported \(Int32.max)")
        }
        try MemoryBudget.check(bytes: try MemoryBudget.product([count, 16], what: what), what: what)
        try RatingSet.validate(users: users, items: items, ratings: ratings, count: count,
                               nUsers: nUsers, nItems: nItems, what: what)
        self.count = count
        self.users = Buffer(copying: users, count: count, zero: 0)
        self.items = Buffer(copying: items, count: count, zero: 0)
        self.ratings = Buffer(copying: ratings, count: count, zero: 0)
    }

    /// Checks ids and values without copying; `allowUnknown` accepts -1 as "not in the model".
    public static func validate(users: UnsafePointer<Int32>, items: UnsafePointer<Int32>, ratings: UnsafePointer<Float>?,
                                count: Int, nUsers: Int, nItems: Int, allowUnknown: Bool = false, what: String,
                                positionOffset: Int = 0) throws {
        let lowest: Int32 = allowUnknown ? -1 : 0
        for r in 0..<count {
            let u = users[r], i = items[r]
            if u < lowest || Int(u) >= nUsers {
                throw CoreError.invalid("\(what): user index \(u) at position \(r + positionOffset) is outside 0..<\(nUsers)")
            }
            if i < lowest || Int(i) >= nItems {
                throw CoreError.invalid("\(what): item index \(i) at position \(r + positionOffset) is outside 0..<\(nItems)")
            }
            if let ratings, !ratings[r].isFinite {
                throw CoreError.invalid("\(what): rating at position \(r + positionOffset) is \(ratings[r]); ratings must be finite numbers")
            }
        }
    }

    /// `count` zero entries, for a trainer to fill with indices it has already validated.
    init(zeros count: Int) {
        self.count = count
        users = Buffer(repeating: 0, count: count)
        items = Buffer(repeating: 0, count: count)
        ratings = Buffer(repeating: 0, count: count)
    }

    /// Shuffles the ratings in place (the three arrays in lockstep), without a second copy:
    /// Fisher–Yates, swapping position i (from the last down) with a uniform j ≤ i.
    ///
    /// The j of each swap is drawn `lookahead` swaps early and its three lines fetched then:
    /// the draws do not depend on the data, so the permutation is the one drawn one swap at a
    /// time, but the swaps no longer wait for memory one after another (the networks reshuffle
    /// every epoch).
    public func shuffle(using rng: inout Xoshiro256) {
        guard count > 1 else { return }
        let lookahead = 16, steps = count - 1
        let us = users.base, its = items.base, rs = ratings.base
        withUnsafeTemporaryAllocation(of: Int.self, capacity: lookahead) { pending in
            var drawn = 0
            @inline(__always) func draw() {  // the j of swap number `drawn` (position count - 1 - drawn)
                let j = rng.nextIndex(below: count - drawn)
                pending[drawn % lookahead] = j
                embedrec_prefetch_write(us + j)
                embedrec_prefetch_write(its + j)
                embedrec_prefetch_write(rs + j)
                drawn += 1
            }
            while drawn < min(lookahead, steps) { draw() }
            for step in 0..<steps {
                let i = count - 1 - step, j = pending[step % lookahead]
                if drawn < steps { draw() }
                (us[i], us[j]) = (us[j], us[i])
                (its[i], its[j]) = (its[j], its[i])
                (rs[i], rs[j]) = (rs[j], rs[i])
            }
        }
    }

    /// Each user's rated items as CSR: `indptr` (nUsers + 1 entries) and `items` (count
    /// entries), each user's items in this set's order. Every user index must be < nUsers.
    public func seen(nUsers: Int, indptr: UnsafeMutablePointer<Int64>, items: UnsafeMutablePointer<Int32>) {
        indptr.update(repeating: 0, count: nUsers + 1)
        for r in 0..<count { indptr[Int(users[r]) + 1] += 1 }
        for u in 0..<nUsers { indptr[u + 1] += indptr[u] }
        var fill = Array(UnsafeBufferPointer(start: indptr, count: nUsers))
        for r in 0..<count {
            let u = Int(users[r])
            items[Int(fill[u])] = self.items[r]
            fill[u] += 1
        }
    }

    public var mean: Double {
        var s = 0.0
        for r in 0..<count { s += Double(ratings[r]) }
        return count > 0 ? s / Double(count) : 0
    }
}
