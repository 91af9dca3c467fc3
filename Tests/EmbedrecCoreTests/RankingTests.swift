import XCTest
@testable import EmbedrecCore

final class RankingTests: XCTestCase {
    func testTopKMatchesAFullSort() {
        var rng = Xoshiro256(seed: 9)
        for k in [1, 3, 10, 50] {
            var heap = TopK(k: k)
            var all: [(Float, Int32)] = []
            for j in 0..<200 {
                let s = Float(rng.nextIndex(below: 40))  // many ties
                heap.offer(s, Int32(j))
                all.append((s, Int32(j)))
            }
            all.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            var items = [Int32](repeating: 0, count: k), scores = [Float](repeating: 0, count: k)
            heap.write(items: &items, scores: &scores)
            XCTAssertEqual(items, all.prefix(k).map { $0.1 })
            XCTAssertEqual(scores, all.prefix(k).map { $0.0 })
        }
    }

    func testTopKPadsWhenFewerCandidates() {
        var heap = TopK(k: 4)
        heap.offer(1, 7)
        var items = [Int32](repeating: 0, count: 4), scores = [Float](repeating: 0, count: 4)
        heap.write(items: &items, scores: &scores)
        XCTAssertEqual(items, [7, -1, -1, -1])
        XCTAssertEqual(scores[1], -.infinity)
    }

    func makeModel() throws -> MFModel {
        let m = try MFModel(config: MFConfig(nUsers: 5, nItems: 30, nFactors: 4), initStd: 0.5, seed: 3)
        for i in 0..<30 { m.itemBias[i] = Float(i) * 0.01 }
        return m
    }

    func testRecommendSkipsSeenItemsAndRanksByPrediction() throws {
        let m = try makeModel()
        let indptr: [Int64] = [0, 3, 3, 3, 3, 3]
        let seenItems: [Int32] = [0, 1, 2]
        var allScores = [Float](repeating: 0, count: 30)
        for i in 0..<30 { allScores[i] = m.output(m.rawScore(user: 0, item: i)).prediction }
        let expected = (3..<30).sorted { allScores[$0] > allScores[$1] }.prefix(5).map { Int32($0) }
        try indptr.withUnsafeBufferPointer { ip in
            try seenItems.withUnsafeBufferPointer { si in
                let seen = try SeenItems(indptr: ip.baseAddress!, indices: si.baseAddress!, count: 3, nUsers: 5, nItems: 30)
                var items = [Int32](repeating: 0, count: 5), scores = [Float](repeating: 0, count: 5)
                m.recommend(users: [0], count: 1, k: 5, candidates: nil, candidateCount: 0, seen: seen, threads: 1,
                            outItems: &items, outScores: &scores)
                XCTAssertEqual(items, expected)
                XCTAssertEqual(scores, expected.map { allScores[Int($0)] })
            }
        }
    }

    func testSeenItemsAreValidated() {
        let badIndptr: [Int64] = [0, 2, 1, 3, 3, 3]
        let items: [Int32] = [0, 1, 2]
        XCTAssertThrowsError(try SeenItems(indptr: badIndptr, indices: items, count: 3, nUsers: 5, nItems: 30))
        let goodIndptr: [Int64] = [0, 1, 2, 3, 3, 3]
        XCTAssertThrowsError(try SeenItems(indptr: goodIndptr, indices: [0, 1, 30], count: 3, nUsers: 5, nItems: 30))
        XCTAssertThrowsError(try SeenItems(indptr: goodIndptr, indices: items, count: 4, nUsers: 5, nItems: 30))
    }

    func testSimilarExcludesTheRowItselfAndRanksByCosine() throws {
        let m = try makeModel()
        var rows = [Int32](repeating: 0, count: 29), scores = [Float](repeating: 0, count: 29)
        m.similar(ofItems: true, rows: [4], count: 1, k: 29, metric: .cosine, threads: 1, outRows: &rows, outScores: &scores)
        XCTAssertFalse(rows.contains(4))
        XCTAssertEqual(Set(rows).count, 29)
        XCTAssertTrue(zip(scores, scores.dropFirst()).allSatisfy { $0 >= $1 })
        XCTAssertTrue(scores.allSatisfy { $0 <= 1.0001 && $0 >= -1.0001 })
    }

    /// The evaluation pass's top-k equals recommend's, and its AUC a brute-force count over
    /// pairs, for few relevant items (a scan per item) and many (the sorted path).
    func testRankingEvaluationMatchesRecommendAndABruteForceAUC() throws {
        let m = try makeModel()
        let seenIndptr: [Int64] = [0, 3, 3, 3, 3, 3], seenItems: [Int32] = [0, 1, 2]
        // Query 0 is user 0 with 4 relevant items (one of them seen); query 1 user 1 with 26.
        let many = (4..<30).map { Int32($0) }
        let relevant: [Int32] = [2, 5, 9, 17] + many
        let relIndptr: [Int64] = [0, 4, Int64(4 + many.count)]
        let users: [Int32] = [0, 1]
        try seenIndptr.withUnsafeBufferPointer { sp in
            try seenItems.withUnsafeBufferPointer { si in
                try relIndptr.withUnsafeBufferPointer { rp in
                    try relevant.withUnsafeBufferPointer { ri in
                        let seen = try SeenItems(indptr: sp.baseAddress!, indices: si.baseAddress!, count: 3, nUsers: 5, nItems: 30)
                        let rel = try RelevantItems(indptr: rp.baseAddress!, indices: ri.baseAddress!, count: relevant.count,
                                                    queries: 2, nItems: 30)
                        var top = [Int32](repeating: 0, count: 10), auc = [Double](repeating: 0, count: 2)
                        m.rankingEvaluation(users: users, count: 2, k: 5, relevant: rel, seen: seen, threads: 1,
                                            outItems: &top, outAUC: &auc)
                        var expected = [Int32](repeating: 0, count: 10), scores = [Float](repeating: 0, count: 10)
                        m.recommend(users: users, count: 2, k: 5, candidates: nil, candidateCount: 0, seen: seen, threads: 1,
                                    outItems: &expected, outScores: &scores)
                        XCTAssertEqual(top, expected)
                        for (q, u) in users.enumerated() {
                            let skip = Set(u == 0 ? [0, 1, 2] : [Int]())
                            let wanted = Set(relevant[Int(relIndptr[q])..<Int(relIndptr[q + 1])].map { Int($0) }).subtracting(skip)
                            let others = (0..<30).filter { !skip.contains($0) && !wanted.contains($0) }
                            var ordered = 0.0
                            for p in wanted {
                                for n in others {
                                    let sp = m.rawScore(user: Int(u), item: p), sn = m.rawScore(user: Int(u), item: n)
                                    ordered += sp > sn ? 1 : sp == sn ? 0.5 : 0
                                }
                            }
                            XCTAssertEqual(auc[q], ordered / Double(wanted.count * others.count), accuracy: 1e-12)
                        }
                    }
                }
            }
        }
    }

    /// Users with more than 64 relevant items take the search over their sorted scores; scores
    /// tied in groups (items sharing their vector and bias) must count a half per tied pair, as
    /// a brute-force count over every pair does, whatever the number of relevant items.
    func testTheAUCOfManyRelevantItemsCountsTiesAsHalves() throws {
        let nItems = 400, k = 3
        let m = try MFModel(config: MFConfig(nUsers: 3, nItems: nItems, nFactors: k), initStd: 0.5, seed: 5)
        for i in 0..<nItems {  // seven distinct items, each repeated: ties everywhere
            let g = i % 7
            for j in 0..<k { m.itemFactors[i * k + j] = Float(g - 3) * 0.25 + Float(j) * 0.125 }
            m.itemBias[i] = Float(g % 3) * 0.5
        }
        var rng = Xoshiro256(seed: 9)
        var relevant: [Int32] = [], relIndptr: [Int64] = [0]
        for count in [65, 150, 399] {  // the last: every item relevant but one seen
            var chosen = Set<Int32>()
            while chosen.count < count { chosen.insert(Int32(rng.nextIndex(below: nItems))) }
            relevant += chosen.sorted()
            relIndptr.append(Int64(relevant.count))
        }
        let seenIndptr: [Int64] = [0, 2, 2, 3], seenItems: [Int32] = [3, 11, 0]
        let users: [Int32] = [0, 1, 2]
        var auc = [Double](repeating: 0, count: 3), top = [Int32](repeating: 0, count: 15)
        try seenIndptr.withUnsafeBufferPointer { sp in
            try seenItems.withUnsafeBufferPointer { si in
                try relIndptr.withUnsafeBufferPointer { rp in
                    try relevant.withUnsafeBufferPointer { ri in
                        let seen = try SeenItems(indptr: sp.baseAddress!, indices: si.baseAddress!, count: 3, nUsers: 3,
                                                 nItems: nItems)
                        let rel = try RelevantItems(indptr: rp.baseAddress!, indices: ri.baseAddress!, count: relevant.count,
                                                    queries: 3, nItems: nItems)
                        m.rankingEvaluation(users: users, count: 3, k: 5, relevant: rel, seen: seen, threads: 1,
                                            outItems: &top, outAUC: &auc)
                    }
                }
            }
        }
        for (q, u) in users.enumerated() {
            let skip = Set(seenItems[Int(seenIndptr[q])..<Int(seenIndptr[q + 1])].map { Int($0) })
            let wanted = Set(relevant[Int(relIndptr[q])..<Int(relIndptr[q + 1])].map { Int($0) }).subtracting(skip)
            let others = (0..<nItems).filter { !skip.contains($0) && !wanted.contains($0) }
            var ordered = 0.0
            for p in wanted {
                let sp = m.rawScore(user: Int(u), item: p)
                for n in others {
                    let sn = m.rawScore(user: Int(u), item: n)
                    ordered += sp > sn ? 1 : sp == sn ? 0.5 : 0
                }
            }
            if others.isEmpty {
                XCTAssertTrue(auc[q].isNaN)
            } else {
                XCTAssertEqual(auc[q], ordered / Double(wanted.count * others.count), accuracy: 1e-12)
            }
        }
    }
}
