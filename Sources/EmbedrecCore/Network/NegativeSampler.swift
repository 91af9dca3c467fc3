/// Negative sampling for implicit data (NeuMF with `negatives > 0`): every training pair is a
/// positive, and each epoch draws `negatives` items per positive uniformly from the items its
/// user has not interacted with (up to 50 draws; the last is kept on a very dense row).
struct NegativeSampler {
    let negatives: Int
    let nItems: Int
    /// Each user's positives as CSR, sorted, for membership tests by binary search.
    let indptr: Buffer<Int>
    let items: Buffer<Int32>

    init(positives data: RatingSet, nUsers: Int, nItems: Int, negatives: Int) {
        self.negatives = negatives
        self.nItems = nItems
        indptr = Buffer<Int>(repeating: 0, count: nUsers + 1)
        for r in 0..<data.count { indptr[Int(data.users[r]) + 1] += 1 }
        for u in 0..<nUsers { indptr[u + 1] += indptr[u] }
        items = Buffer<Int32>(repeating: 0, count: data.count)
        var fill = Array(indptr.buffer.prefix(nUsers))
        for r in 0..<data.count {
            let u = Int(data.users[r])
            items[fill[u]] = data.items[r]
            fill[u] += 1
        }
        for u in 0..<nUsers {
            var userItems = UnsafeMutableBufferPointer(start: items.base + indptr[u], count: indptr[u + 1] - indptr[u])
            userItems.sort()
        }
    }

    func isPositive(user: Int, item: Int32) -> Bool {
        var lo = indptr[user], hi = indptr[user + 1]
        while lo < hi {
            let mid = (lo + hi) / 2
            let v = items[mid]
            if v == item { return true }
            if v < item { lo = mid + 1 } else { hi = mid }
        }
        return false
    }

    /// Writes the epoch's examples into `epoch`: each positive of `data` (target 1) followed by
    /// its fresh negatives (target 0). Returns their number.
    func fill(_ epoch: RatingSet, from data: RatingSet, using rng: inout Xoshiro256) -> Int {
        let us = epoch.users, its = epoch.items, ts = epoch.ratings
        var n = 0
        for r in 0..<data.count {
            let u = Int(data.users[r])
            us[n] = data.users[r]; its[n] = data.items[r]; ts[n] = 1
            n += 1
            for _ in 0..<negatives {
                var item = Int32(rng.nextIndex(below: nItems))
                var tries = 0
                while isPositive(user: u, item: item) && tries < 50 {
                    item = Int32(rng.nextIndex(below: nItems))
                    tries += 1
                }
                us[n] = Int32(u); its[n] = item; ts[n] = 0
                n += 1
            }
        }
        return n
    }
}
