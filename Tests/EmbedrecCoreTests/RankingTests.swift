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
}
