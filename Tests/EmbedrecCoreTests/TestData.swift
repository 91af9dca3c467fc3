import Foundation
@testable import EmbedrecCore

/// A generated low-rank rating set with known Gaussian noise, split into train and test.
struct LowRankData {
    var trainUsers: [Int32] = [], trainItems: [Int32] = [], trainRatings: [Float] = []
    var testUsers: [Int32] = [], testItems: [Int32] = [], testRatings: [Float] = []
    let nUsers: Int, nItems: Int

    init(nUsers: Int = 300, nItems: Int = 200, rank: Int = 4, density: Double = 0.3, noise: Float = 0.1, seed: UInt64 = 7) {
        self.nUsers = nUsers
        self.nItems = nItems
        var rng = Xoshiro256(seed: seed)
        let p = (0..<nUsers * rank).map { _ in rng.nextNormal() * 0.7 }
        let q = (0..<nItems * rank).map { _ in rng.nextNormal() * 0.7 }
        for u in 0..<nUsers {
            for i in 0..<nItems where Double(rng.nextUnitFloat()) < density {
                var r: Float = 3
                for f in 0..<rank { r += p[u * rank + f] * q[i * rank + f] }
                r += rng.nextNormal() * noise
                if rng.nextUnitFloat() < 0.1 {
                    testUsers.append(Int32(u)); testItems.append(Int32(i)); testRatings.append(r)
                } else {
                    trainUsers.append(Int32(u)); trainItems.append(Int32(i)); trainRatings.append(r)
                }
            }
        }
    }

    func trainSet() throws -> RatingSet {
        try RatingSet(users: trainUsers, items: trainItems, ratings: trainRatings,
                      count: trainUsers.count, nUsers: nUsers, nItems: nItems)
    }

    func testRMSE(_ model: MFModel) -> Double {
        model.evaluate(users: testUsers, items: testItems, ratings: testRatings, count: testUsers.count, threads: 1).mse.squareRoot()
    }
}

/// `count` ratings from 1 to 5 of users and items drawn uniformly: enough work for several
/// threads without any structure to learn. Arrays, since a trainer reorders the set it gets.
struct UniformRatings {
    var users: [Int32] = [], items: [Int32] = [], ratings: [Float] = []
    let nUsers: Int, nItems: Int

    init(count: Int, nUsers: Int, nItems: Int, seed: UInt64) {
        self.nUsers = nUsers
        self.nItems = nItems
        var rng = Xoshiro256(seed: seed)
        for _ in 0..<count {
            users.append(Int32(rng.nextIndex(below: nUsers)))
            items.append(Int32(rng.nextIndex(below: nItems)))
            ratings.append(Float(1 + rng.nextIndex(below: 5)))
        }
    }

    /// A fresh set of these ratings.
    func set() throws -> RatingSet {
        try RatingSet(users: users, items: items, ratings: ratings, count: users.count, nUsers: nUsers, nItems: nItems)
    }
}

func train(_ model: MFModel, _ data: RatingSet, _ options: TrainOptions) throws {
    let trainer = try makeTrainer(model: model, data: data, options: options)
    for _ in 0..<options.epochs { _ = try trainer.runEpoch() }
}

/// Runs an epoch of `trainer` that a watcher thread interrupts once some of it has run.
/// Returns true when the epoch was cancelled part-way (some examples done, not all), false
/// when it ended first or was cancelled before any work; the flag is cleared either way.
func runInterruptedEpoch(_ trainer: Trainer) throws -> Bool {
    let watcher = Thread {
        while trainer.progress.snapshot.done == 0 {}
        trainer.cancel.set()
    }
    watcher.start()
    defer { trainer.cancel.clear() }
    do {
        _ = try trainer.runEpoch()
        while !trainer.cancel.isSet {}  // the watcher was late: the epoch ended first
        return false
    } catch let error as CoreError where error.kind == .cancelled {
        let (done, total, _) = trainer.progress.snapshot
        return done > 0 && done < total
    }
}

/// A composition in which each of `n` entities is its own row alone, with weight 1: the hybrid
/// model that is plain MF.
func identityComposition(_ n: Int) throws -> Composition {
    let indptr = (0...n).map { Int64($0) }, rows = (0..<n).map { Int32($0) }
    return try Composition(indptr: indptr, rows: rows, weights: [Float](repeating: 1, count: n), count: n, nRows: n)
}
