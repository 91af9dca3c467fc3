/// Training ratings received in chunks, so that the whole set exists exactly once, here, in its
/// final form (12 bytes a rating).
///
/// The alternative, a caller converting all its ids to rows and its ratings to float32 and then
/// handing over complete arrays, needs the set twice at the peak (the caller's converted arrays
/// and the core's copy); with chunks the caller only ever holds one chunk converted. Each chunk
/// is validated on the way in, as `RatingSet`'s copying initialiser does.
///
/// A trainer takes the set over with `handOver`; the loader is then empty, so the data cannot be
/// reordered under a second user.
public final class RatingLoader {
    public let capacity: Int
    public let nUsers: Int
    public let nItems: Int
    public private(set) var filled = 0
    private var set: RatingSet?

    public init(count: Int, nUsers: Int, nItems: Int) throws {
        guard count > 0 else { throw CoreError.invalid("there are no training ratings (n = 0)") }
        guard count <= Int(Int32.max) else {
            throw CoreError.invalid("\(count) ratings is more than the supported \(Int32.max)")
        }
        guard nUsers > 0, nItems > 0 else {
            throw CoreError.invalid("n_users and n_items must be positive, got \(nUsers) and \(nItems)")
        }
        try MemoryBudget.check(bytes: try MemoryBudget.product([count, 12], what: "ratings"), what: "the training ratings")
        capacity = count
        self.nUsers = nUsers
        self.nItems = nItems
        set = RatingSet(zeros: count)
    }

    private func live() throws -> RatingSet {
        guard let set else { throw CoreError.invalid("these ratings were already given to a trainer") }
        return set
    }

    /// Validates `count` ratings and copies them after those already appended.
    public func append(users: UnsafePointer<Int32>, items: UnsafePointer<Int32>, ratings: UnsafePointer<Float>,
                       count: Int) throws {
        let set = try live()
        guard count >= 0, count <= capacity - filled else {
            throw CoreError.invalid("appending \(count) ratings to \(filled) of \(capacity) would overflow the announced count")
        }
        // Positions in messages count from the start of the whole set, not of this chunk.
        try RatingSet.validate(users: users, items: items, ratings: ratings, count: count, nUsers: nUsers,
                               nItems: nItems, what: "ratings", positionOffset: filled)
        (set.users.base + filled).update(from: users, count: count)
        (set.items.base + filled).update(from: items, count: count)
        (set.ratings.base + filled).update(from: ratings, count: count)
        filled += count
    }

    private func complete() throws -> RatingSet {
        let set = try live()
        guard filled == capacity else {
            throw CoreError.invalid("only \(filled) of the announced \(capacity) ratings were appended")
        }
        return set
    }

    /// Hands the complete set to `body` (a trainer's constructor) and empties the loader; if
    /// `body` throws, the loader keeps the set.
    public func handOver<T>(_ body: (RatingSet) throws -> T) throws -> T {
        let result = try body(try complete())
        set = nil
        return result
    }
}
