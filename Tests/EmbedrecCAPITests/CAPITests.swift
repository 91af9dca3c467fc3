import CEmbedrec
import XCTest
@testable import EmbedrecCAPI

/// Calls the exported functions through the declarations of the public header (CEmbedrec), as a
/// C or Python caller would, and checks that every bad size, index, value and handle comes back
/// as a status code with a message instead of a trap.
final class CAPITests: XCTestCase {
    var model: EmbedrecModelHandle?

    override func setUp() {
        model = nil
        XCTAssertEqual(embedrec_mf_create(10, 8, 4, 1, 0, 0, 0, 0, 0.1, 42, &model), EMBEDREC_OK)
        XCTAssertNotNil(model)
    }

    override func tearDown() {
        if let model { _ = embedrec_model_free(model) }
    }

    func lastError() -> String { String(cString: embedrec_last_error()) }

    func assertFails(_ status: Int32, _ code: Int32, mentions words: String..., file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, code, "status", file: file, line: line)
        let message = lastError()
        for word in words {
            XCTAssertTrue(message.contains(word), "message \(message.debugDescription) should mention \(word)", file: file, line: line)
        }
    }

    func testVersion() {
        XCTAssertEqual(String(cString: embedrec_version()).split(separator: ".").count, 3)
    }

    func testCreateRejectsBadShapes() {
        var h: EmbedrecModelHandle?
        assertFails(embedrec_mf_create(0, 8, 4, 1, 0, 0, 0, 0, 0.1, 0, &h), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "n_users")
        assertFails(embedrec_mf_create(-5, 8, 4, 1, 0, 0, 0, 0, 0.1, 0, &h), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "n_users", "-5")
        assertFails(embedrec_mf_create(10, 1 << 40, 4, 1, 0, 0, 0, 0, 0.1, 0, &h), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "n_items")
        assertFails(embedrec_mf_create(10, 8, 0, 1, 0, 0, 0, 0, 0.1, 0, &h), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "n_factors")
        assertFails(embedrec_mf_create(10, 8, 4, 1, 0, 1, 5, 1, 0.1, 0, &h), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "y_range")
        assertFails(embedrec_mf_create(10, 8, 4, 1, 0, 1, .nan, 1, 0.1, 0, &h), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "y_range")
        assertFails(embedrec_mf_create(10, 8, 4, 1, 0, 0, 0, 0, .infinity, 0, &h), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "init_std")
        assertFails(embedrec_mf_create(2_000_000_000, 2_000_000_000, 65536, 1, 0, 0, 0, 0, 0.1, 0, &h), EMBEDREC_ERR_OUT_OF_MEMORY, mentions: "MiB")
        assertFails(embedrec_mf_create(10, 8, 4, 1, 0, 0, 0, 0, 0.1, 0, nil), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "NULL")
        XCTAssertNil(h)
    }

    func testHandlesAreChecked() {
        assertFails(embedrec_model_free(nil), EMBEDREC_ERR_INVALID_HANDLE, mentions: "NULL")
        assertFails(embedrec_model_free(UnsafeMutableRawPointer(bitPattern: 0xDEAD_BEE0)), EMBEDREC_ERR_INVALID_HANDLE, mentions: "not live")
        var h: EmbedrecModelHandle?
        XCTAssertEqual(embedrec_mf_create(3, 3, 2, 1, 0, 0, 0, 0, 0.1, 0, &h), EMBEDREC_OK)
        XCTAssertEqual(embedrec_model_free(h), EMBEDREC_OK)
        assertFails(embedrec_model_free(h), EMBEDREC_ERR_INVALID_HANDLE, mentions: "not live")  // double free
        var n: Int64 = 0
        assertFails(embedrec_model_shape(h, &n, nil, nil), EMBEDREC_ERR_INVALID_HANDLE)  // use after free
        // A model handle is not a trainer handle.
        assertFails(embedrec_trainer_run_epoch(model, nil, nil, nil), EMBEDREC_ERR_INVALID_HANDLE, mentions: "trainer")
    }

    func testArraysRoundTripAndRejectWrongLengths() {
        var users: Int64 = 0, items: Int64 = 0, k: Int32 = 0
        XCTAssertEqual(embedrec_model_shape(model, &users, &items, &k), EMBEDREC_OK)
        XCTAssertEqual([users, items, Int64(k)], [10, 8, 4])
        var factors = [Float](repeating: 0.25, count: 40)
        XCTAssertEqual(embedrec_model_set_array(model, EMBEDREC_USER_FACTORS, &factors, 40), EMBEDREC_OK)
        var back = [Float](repeating: 0, count: 40)
        XCTAssertEqual(embedrec_model_get_array(model, EMBEDREC_USER_FACTORS, &back, 40), EMBEDREC_OK)
        XCTAssertEqual(back, factors)
        assertFails(embedrec_model_get_array(model, EMBEDREC_USER_FACTORS, &back, 39), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "40", "39")
        assertFails(embedrec_model_get_array(model, 9, &back, 40), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "9")
        assertFails(embedrec_model_get_array(model, EMBEDREC_USER_FACTORS, nil, 40), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "NULL")
        var bad = factors
        bad[7] = .nan
        assertFails(embedrec_model_set_array(model, EMBEDREC_USER_FACTORS, &bad, 40), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "values[7]")
    }

    func testPredictChecksIdsAndAcceptsUnknownMarker() {
        var users: [Int32] = [0, 9, -1], items: [Int32] = [7, 0, 3]
        var out = [Float](repeating: .nan, count: 3)
        XCTAssertEqual(embedrec_model_predict(model, &users, &items, 3, 1, &out), EMBEDREC_OK)
        XCTAssertTrue(out.allSatisfy { $0.isFinite })
        var badUsers: [Int32] = [0, 10]
        var two: [Int32] = [0, 0]
        assertFails(embedrec_model_predict(model, &badUsers, &two, 2, 1, &out), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "user index 10", "position 1")
        var neg: [Int32] = [-2]
        assertFails(embedrec_model_predict(model, &neg, &two, 1, 1, &out), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "-2")
        assertFails(embedrec_model_predict(model, &users, &items, -1, 1, &out), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "n")
        assertFails(embedrec_model_predict(model, nil, &items, 3, 1, &out), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "users")
        assertFails(embedrec_model_predict(model, &users, &items, 3, -4, &out), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "n_threads")
        XCTAssertEqual(embedrec_model_predict(model, nil, nil, 0, 1, nil), EMBEDREC_OK)  // empty is fine
    }

    func testTrainerChecksItsInputs() {
        var users: [Int32] = [0, 1, 2], items: [Int32] = [0, 1, 2], ratings: [Float] = [1, 2, 3]
        var t: EmbedrecTrainerHandle?
        func create(_ n: Int64, optimizer: Int32 = 0, epochs: Int32 = 1, batch: Int32 = 2, lr: Double = 0.01, wd: Double = 0) -> Int32 {
            embedrec_trainer_create(model, &users, &items, &ratings, n, optimizer, 0, epochs, batch, lr, wd, 1, 0, &t)
        }
        assertFails(create(0), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "no training ratings")
        assertFails(create(-3), EMBEDREC_ERR_INVALID_ARGUMENT)
        assertFails(create(3, optimizer: 7), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "optimizer")
        assertFails(create(3, epochs: 0), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "epochs")
        assertFails(create(3, batch: 0), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "batch_size")
        assertFails(create(3, lr: .nan), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "lr")
        assertFails(create(3, lr: -1), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "lr")
        assertFails(create(3, wd: -0.5), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "weight_decay")
        ratings[1] = .infinity
        assertFails(create(3), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "position 1")
        ratings[1] = 2
        items[2] = 8
        assertFails(create(3), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "item index 8")
        items[2] = 2
        XCTAssertNil(t)
        XCTAssertEqual(create(3, optimizer: 1), EMBEDREC_OK)
        var loss = 0.0, mae = 0.0, seconds = -1.0
        XCTAssertEqual(embedrec_trainer_run_epoch(t, &loss, &mae, &seconds), EMBEDREC_OK)
        XCTAssertTrue(loss.isFinite && mae.isFinite && seconds >= 0)
        // While a trainer exists the model stays usable, and freeing the model first is safe.
        XCTAssertEqual(embedrec_model_free(model), EMBEDREC_OK)
        model = nil
        XCTAssertEqual(embedrec_trainer_run_epoch(t, &loss, &mae, nil), EMBEDREC_OK)
        XCTAssertEqual(embedrec_trainer_cancel(t), EMBEDREC_OK)
        assertFails(embedrec_trainer_run_epoch(t, &loss, &mae, nil), EMBEDREC_ERR_CANCELLED, mentions: "interrupted")
        XCTAssertEqual(embedrec_trainer_reset_cancel(t), EMBEDREC_OK)
        XCTAssertEqual(embedrec_trainer_free(t), EMBEDREC_OK)
        assertFails(embedrec_trainer_free(t), EMBEDREC_ERR_INVALID_HANDLE)
    }

    /// Chunked training data: validated per chunk, taken over by a trainer, then empty; the
    /// trainer gives back each user's items as CSR.
    func testRatingsInChunksFeedATrainer() {
        var ratings: EmbedrecRatingsHandle?
        assertFails(embedrec_ratings_create(0, 10, 8, &ratings), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "no training ratings")
        XCTAssertEqual(embedrec_ratings_create(4, 10, 8, &ratings), EMBEDREC_OK)
        defer { _ = embedrec_ratings_free(ratings) }
        var u: [Int32] = [3, 9], i: [Int32] = [1, 7], r: [Float] = [4, 2]
        XCTAssertEqual(embedrec_ratings_append(ratings, &u, &i, &r, 2), EMBEDREC_OK)
        var badItem: [Int32] = [1, 8]
        assertFails(embedrec_ratings_append(ratings, &u, &badItem, &r, 2), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "item index 8", "position 3")
        assertFails(embedrec_ratings_append(ratings, nil, &i, &r, 2), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "users is NULL")
        var trainer: EmbedrecTrainerHandle?
        assertFails(embedrec_trainer_create_from(model, ratings, 0, 0, 1, 1, 0.01, 0, 1, 0, &trainer),
                    EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "only 2 of the announced 4")
        var u2: [Int32] = [3, 0]
        XCTAssertEqual(embedrec_ratings_append(ratings, &u2, &i, &r, 2), EMBEDREC_OK)
        // Options are checked before the data move, so a rejected call leaves them in place.
        assertFails(embedrec_trainer_create_from(model, ratings, 0, 0, 0, 1, 0.01, 0, 1, 0, &trainer),
                    EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "epochs")
        var other: EmbedrecModelHandle?
        XCTAssertEqual(embedrec_mf_create(11, 8, 4, 1, 0, 0, 0, 0, 0.1, 1, &other), EMBEDREC_OK)
        assertFails(embedrec_trainer_create_from(other, ratings, 0, 0, 1, 1, 0.01, 0, 1, 0, &trainer),
                    EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "10 users")
        _ = embedrec_model_free(other)
        XCTAssertEqual(embedrec_trainer_create_from(model, ratings, 0, 0, 1, 1, 0.01, 0, 1, 0, &trainer), EMBEDREC_OK)
        defer { _ = embedrec_trainer_free(trainer) }
        assertFails(embedrec_ratings_append(ratings, &u, &i, &r, 1), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "already given")
        XCTAssertEqual(embedrec_trainer_run_epoch(trainer, nil, nil, nil), EMBEDREC_OK)
        var indptr = [Int64](repeating: 0, count: 11), items = [Int32](repeating: 0, count: 4)
        assertFails(embedrec_trainer_seen(trainer, &indptr, 10, &items, 4), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "n_users + 1")
        XCTAssertEqual(embedrec_trainer_seen(trainer, &indptr, 11, &items, 4), EMBEDREC_OK)
        XCTAssertEqual(indptr, [0, 1, 1, 1, 3, 3, 3, 3, 3, 3, 4])
        XCTAssertEqual(Array(items[1..<3]), [1, 1])  // user 3 rated item 1 twice
        XCTAssertEqual(items[0], 7)  // user 0
        XCTAssertEqual(items[3], 7)  // user 9
    }

    func testEvaluateChecksRatings() {
        var users: [Int32] = [0, 1], items: [Int32] = [0, 1], ratings: [Float] = [1, .nan]
        var mse = 0.0, mae = 0.0
        assertFails(embedrec_model_evaluate(model, &users, &items, &ratings, 2, 1, &mse, &mae), EMBEDREC_ERR_INVALID_ARGUMENT, mentions: "nan")
        ratings[1] = 2
        XCTAssertEqual(embedrec_model_evaluate(model, &users, &items, &ratings, 2, 1, &mse, &mae), EMBEDREC_OK)
        XCTAssertGreaterThan(mse, 0)
    }

    func testLastErrorIsPerThread() {
        assertFails(embedrec_model_free(nil), EMBEDREC_ERR_INVALID_HANDLE)
        let expectation = expectation(description: "other thread")
        Thread.detachNewThread {
            XCTAssertEqual(String(cString: embedrec_last_error()), "")
            expectation.fulfill()
        }
        wait(for: [expectation], timeout: 5)
        XCTAssertTrue(lastError().contains("NULL"))
    }
}

final class QueryCAPITests: XCTestCase {
    func lastError() -> String { String(cString: embedrec_last_error()) }

    func testRecommendAndSimilarRejectBadArguments() {
        var model: EmbedrecModelHandle?
        XCTAssertEqual(embedrec_mf_create(4, 6, 3, 1, 0, 0, 0, 0, 0.1, 1, &model), EMBEDREC_OK)
        defer { _ = embedrec_model_free(model) }
        var users: [Int32] = [0, 3]
        var items = [Int32](repeating: 0, count: 6), scores = [Float](repeating: 0, count: 6)
        XCTAssertEqual(embedrec_model_recommend(model, &users, 2, 3, nil, 0, nil, nil, 0, 1, &items, &scores), EMBEDREC_OK)
        var badUsers: [Int32] = [4]
        XCTAssertEqual(embedrec_model_recommend(model, &badUsers, 1, 3, nil, 0, nil, nil, 0, 1, &items, &scores),
                       EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertTrue(lastError().contains("user row 4"))
        XCTAssertEqual(embedrec_model_recommend(model, &users, 2, 0, nil, 0, nil, nil, 0, 1, &items, &scores),
                       EMBEDREC_ERR_INVALID_ARGUMENT)
        var badCandidates: [Int32] = [1, 6]
        XCTAssertEqual(embedrec_model_recommend(model, &users, 2, 3, &badCandidates, 2, nil, nil, 0, 1, &items, &scores),
                       EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertTrue(lastError().contains("candidate item 6"))
        var indptr: [Int64] = [0, 1, 1, 1, 5]  // ends at 5 but n_seen is 1
        var seen: [Int32] = [2]
        XCTAssertEqual(embedrec_model_recommend(model, &users, 2, 3, nil, 0, &indptr, &seen, 1, 1, &items, &scores),
                       EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(embedrec_model_recommend(model, &users, 2, 3, nil, 0, nil, nil, 0, 1, nil, &scores),
                       EMBEDREC_ERR_INVALID_ARGUMENT)
        var rows: [Int32] = [5]
        XCTAssertEqual(embedrec_model_similar(model, 1, &rows, 1, 3, EMBEDREC_METRIC_COSINE, 1, &items, &scores), EMBEDREC_OK)
        XCTAssertEqual(embedrec_model_similar(model, 0, &rows, 1, 3, EMBEDREC_METRIC_COSINE, 1, &items, &scores),
                       EMBEDREC_ERR_INVALID_ARGUMENT)  // only 4 users
        XCTAssertEqual(embedrec_model_similar(model, 1, &rows, 1, 3, 7, 1, &items, &scores), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertTrue(lastError().contains("metric"))
    }
}

final class NetworkCAPITests: XCTestCase {
    func lastError() -> String { String(cString: embedrec_last_error()) }

    /// A two-node-per-side dot network: user emb (3), item emb (3), dot, dense(1).
    func spec() -> ([Int32], [Double]) {
        let ints: [Int32] = [
            EMBEDREC_NODE_EMBEDDING, -1, -1, -1, -1, 0, 3, 0,
            EMBEDREC_NODE_EMBEDDING, -1, -1, -1, -1, 1, 3, 0,
            EMBEDREC_NODE_DOT, 0, 1, -1, -1, 0, 0, 0,
            EMBEDREC_NODE_DENSE, 2, -1, -1, -1, 1, EMBEDREC_ACTIVATION_LINEAR, 0,
        ]
        let values: [Double] = [0.1, 0, 0, 0, 0.1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        return (ints, values)
    }

    func testCreateTrainPredictAndReject() {
        var (ints, values) = spec()
        var net: EmbedrecModelHandle?
        XCTAssertEqual(embedrec_net_create(&ints, &values, 4, 5, 6, 1, &net), EMBEDREC_OK)
        defer { _ = embedrec_model_free(net) }
        var size: Int64 = 0
        XCTAssertEqual(embedrec_net_param_size(net, 0, 0, &size), EMBEDREC_OK)
        XCTAssertEqual(size, 15)
        XCTAssertEqual(embedrec_net_param_size(net, 3, 1, &size), EMBEDREC_OK)
        XCTAssertEqual(size, 1)
        XCTAssertEqual(embedrec_net_param_size(net, 9, 0, &size), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(embedrec_net_param_size(net, 0, 2, &size), EMBEDREC_ERR_INVALID_ARGUMENT)
        var table = [Float](repeating: 0.5, count: 15)
        XCTAssertEqual(embedrec_net_set_param(net, 0, 0, &table, 15), EMBEDREC_OK)
        XCTAssertEqual(embedrec_net_set_param(net, 0, 0, &table, 14), EMBEDREC_ERR_INVALID_ARGUMENT)
        table[3] = .nan
        XCTAssertEqual(embedrec_net_set_param(net, 0, 0, &table, 15), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertTrue(lastError().contains("values[3]"))

        var users: [Int32] = [0, 4, -1], items: [Int32] = [5, 0, 2], targets: [Float] = [1, 2, 3]
        var out = [Float](repeating: 0, count: 3)
        XCTAssertEqual(embedrec_net_predict(net, &users, &items, 3, 0, 1, &out), EMBEDREC_OK)
        users[1] = 5
        XCTAssertEqual(embedrec_net_predict(net, &users, &items, 3, 0, 1, &out), EMBEDREC_ERR_INVALID_ARGUMENT)
        users[1] = 4
        users[2] = 1
        var trainer: EmbedrecTrainerHandle?
        func create(loss: Int32 = EMBEDREC_LOSS_MSE, negatives: Int32 = 0, batch: Int32 = 2) -> Int32 {
            embedrec_net_trainer_create(net, &users, &items, &targets, 3, loss, negatives, EMBEDREC_OPTIMIZER_ADAM,
                                        EMBEDREC_SCHEDULE_ONE_CYCLE, 2, batch, 0.01, 0, 1, 0, &trainer)
        }
        XCTAssertEqual(create(loss: 9), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(create(negatives: 3), EMBEDREC_ERR_INVALID_ARGUMENT)  // negatives need bce
        XCTAssertEqual(create(loss: EMBEDREC_LOSS_BCE), EMBEDREC_ERR_INVALID_ARGUMENT)  // targets 2, 3 not labels
        XCTAssertEqual(create(loss: EMBEDREC_LOSS_BCE, negatives: 101), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(create(batch: 0), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(create(), EMBEDREC_OK)
        var loss = 0.0
        XCTAssertEqual(embedrec_trainer_run_epoch(trainer, &loss, nil, nil), EMBEDREC_OK)
        XCTAssertTrue(loss.isFinite)
        XCTAssertEqual(embedrec_trainer_free(trainer), EMBEDREC_OK)
        // A network handle is not a matrix-factorisation model, and the reverse.
        XCTAssertEqual(embedrec_model_predict(net, &users, &items, 3, 1, &out), EMBEDREC_ERR_INVALID_HANDLE)
    }

    func testBadSpecsAreRejected() {
        var (ints, values) = spec()
        var net: EmbedrecModelHandle?
        var bad = ints
        bad[8 * 2] = 42  // unknown kind
        XCTAssertEqual(embedrec_net_create(&bad, &values, 4, 5, 6, 1, &net), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertTrue(lastError().contains("kind"))
        bad = ints
        bad[8 * 2 + 1] = 3  // reads a later node
        XCTAssertEqual(embedrec_net_create(&bad, &values, 4, 5, 6, 1, &net), EMBEDREC_ERR_INVALID_ARGUMENT)
        bad = ints
        bad[8 * 1 + 6] = 4  // item width 4 != user width 3 for the dot
        XCTAssertEqual(embedrec_net_create(&bad, &values, 4, 5, 6, 1, &net), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertTrue(lastError().contains("equal widths"))
        var badValues = values
        badValues[0] = .nan
        XCTAssertEqual(embedrec_net_create(&ints, &badValues, 4, 5, 6, 1, &net), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(embedrec_net_create(&ints, &values, 0, 5, 6, 1, &net), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(embedrec_net_create(&ints, &values, 4, 0, 6, 1, &net), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(embedrec_net_create(nil, &values, 4, 5, 6, 1, &net), EMBEDREC_ERR_INVALID_ARGUMENT)
        bad = ints
        bad[8 * 0 + 6] = 65536
        bad[8 * 1 + 6] = 65536
        XCTAssertEqual(embedrec_net_create(&bad, &values, 4, 2_000_000_000, 2_000_000_000, 1, &net), EMBEDREC_ERR_OUT_OF_MEMORY)
        XCTAssertNil(net)
    }
}

final class MiscCAPITests: XCTestCase {
    func testProgressLiveHandlesAndFreezeRejectBadArguments() {
        XCTAssertEqual(embedrec_live_handles(nil), EMBEDREC_ERR_INVALID_ARGUMENT)
        var before: Int64 = 0
        XCTAssertEqual(embedrec_live_handles(&before), EMBEDREC_OK)
        var model: EmbedrecModelHandle?
        XCTAssertEqual(embedrec_mf_create(3, 3, 2, 1, 0, 0, 0, 0, 0.1, 1, &model), EMBEDREC_OK)
        var after: Int64 = 0
        XCTAssertEqual(embedrec_live_handles(&after), EMBEDREC_OK)
        XCTAssertEqual(after, before + 1)
        var users: [Int32] = [0, 1], items: [Int32] = [1, 2], ratings: [Float] = [3, 4]
        var trainer: EmbedrecTrainerHandle?
        XCTAssertEqual(embedrec_trainer_create(model, &users, &items, &ratings, 2, 0, 0, 1, 1, 0.01, 0, 1, 0, &trainer), EMBEDREC_OK)
        var done: Int64 = -1, total: Int64 = -1, loss = -1.0
        XCTAssertEqual(embedrec_trainer_progress(trainer, &done, &total, &loss), EMBEDREC_OK)
        XCTAssertEqual(embedrec_trainer_run_epoch(trainer, nil, nil, nil), EMBEDREC_OK)
        XCTAssertEqual(embedrec_trainer_progress(trainer, &done, &total, &loss), EMBEDREC_OK)
        XCTAssertEqual([done, total], [2, 2])
        XCTAssertEqual(embedrec_trainer_progress(nil, &done, nil, nil), EMBEDREC_ERR_INVALID_HANDLE)
        // Freezing is for network trainers only.
        XCTAssertEqual(embedrec_net_trainer_freeze(trainer, 0), EMBEDREC_ERR_INVALID_HANDLE)
        XCTAssertEqual(embedrec_net_trainer_freeze(nil, 0), EMBEDREC_ERR_INVALID_HANDLE)
        XCTAssertEqual(embedrec_trainer_free(trainer), EMBEDREC_OK)
        XCTAssertEqual(embedrec_model_free(model), EMBEDREC_OK)
        XCTAssertEqual(embedrec_live_handles(&after), EMBEDREC_OK)
        XCTAssertEqual(after, before)
    }
}

final class BlockCAPITests: XCTestCase {
    func testSGDBlockTrainsInPlaceAndRejectsBadArguments() {
        var users: [Int32] = [0, 1, 1], items: [Int32] = [1, 0, 1], ratings: [Float] = [4, 2, 5]
        var uf = [Float](repeating: 0.1, count: 2 * 3), ub = [Float](repeating: 0, count: 2)
        var itf = [Float](repeating: 0.1, count: 2 * 3), ib = [Float](repeating: 0, count: 2)
        var loss = -1.0, abs = -1.0
        XCTAssertEqual(embedrec_mf_sgd_block(&users, &items, &ratings, 3, &uf, &ub, 2, &itf, &ib, 2, 3, 1, 0, 0, 0, 0,
                                             3.5, 0.05, 0.01, 0, 0, 1, 7, &loss, &abs), EMBEDREC_OK)
        XCTAssertNotEqual(uf, [Float](repeating: 0.1, count: 6))  // trained in place
        XCTAssertGreaterThan(loss, 0)
        XCTAssertGreaterThan(abs, 0)
        // Indices outside the blocks, no ratings, NULL tables, non-finite parameters, bad rates.
        var outside: [Int32] = [0, 5, 1]
        XCTAssertEqual(embedrec_mf_sgd_block(&outside, &items, &ratings, 3, &uf, &ub, 2, &itf, &ib, 2, 3, 1, 0, 0, 0, 0,
                                             3.5, 0.05, 0.01, 0, 0, 1, 7, nil, nil), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(embedrec_mf_sgd_block(&users, &items, &ratings, 0, &uf, &ub, 2, &itf, &ib, 2, 3, 1, 0, 0, 0, 0,
                                             3.5, 0.05, 0.01, 0, 0, 1, 7, nil, nil), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(embedrec_mf_sgd_block(&users, &items, &ratings, 3, nil, &ub, 2, &itf, &ib, 2, 3, 1, 0, 0, 0, 0,
                                             3.5, 0.05, 0.01, 0, 0, 1, 7, nil, nil), EMBEDREC_ERR_INVALID_ARGUMENT)
        uf[2] = .nan
        XCTAssertEqual(embedrec_mf_sgd_block(&users, &items, &ratings, 3, &uf, &ub, 2, &itf, &ib, 2, 3, 1, 0, 0, 0, 0,
                                             3.5, 0.05, 0.01, 0, 0, 1, 7, nil, nil), EMBEDREC_ERR_INVALID_ARGUMENT)
        uf[2] = 0.1
        XCTAssertEqual(embedrec_mf_sgd_block(&users, &items, &ratings, 3, &uf, &ub, 2, &itf, &ib, 2, 3, 1, 0, 0, 0, 0,
                                             3.5, 0.05, 0.01, 1.5, 0, 1, 7, nil, nil), EMBEDREC_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(embedrec_mf_sgd_block(&users, &items, &ratings, 3, &uf, &ub, 2, &itf, &ib, 2, 3, 1, 0, 0, 0, 0,
                                             3.5, 0, 0.01, 0, 0, 1, 7, nil, nil), EMBEDREC_ERR_INVALID_ARGUMENT)
    }
}
