/*
 * embedrec.h — the public C API of the embedrec core.
 *
 * Conventions (those of LightGBM's and XGBoost's C APIs):
 *  - Every function but embedrec_version and embedrec_last_error returns a status:
 *    EMBEDREC_OK (0) on success, a positive EMBEDREC_ERR_* code otherwise. On failure,
 *    embedrec_last_error() returns a message for the calling thread, valid until that thread's
 *    next failing call. Nothing in this API aborts the process on bad input.
 *  - Handles are opaque. A handle is valid from the call that creates it until the matching
 *    *_free call; a freed, unknown or NULL handle is rejected with EMBEDREC_ERR_INVALID_HANDLE
 *    (handle values are never reused within a process).
 *  - Arrays are passed as pointer + length; outputs go into buffers the caller allocates with
 *    at least the documented length. The core never keeps a caller's pointer after returning.
 *  - Ids are row indices: 0 <= user < n_users, 0 <= item < n_items. The caller maps its raw ids
 *    (strings, sparse integers) to rows. Where documented, -1 means "not in the model".
 *  - Thread safety: any number of threads may read one model at once (predict, evaluate,
 *    get_array). A call that changes a model (a training epoch, set_array) fails with
 *    EMBEDREC_ERR_BUSY instead of waiting when another call is using the model, and vice versa.
 */
#ifndef EMBEDREC_H
#define EMBEDREC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
#define EMBEDREC_OK 0
#define EMBEDREC_ERR_INVALID_ARGUMENT 1 /* a size, index, value or pointer was rejected */
#define EMBEDREC_ERR_INVALID_HANDLE 2   /* NULL, freed, or not a handle of the expected kind */
#define EMBEDREC_ERR_OUT_OF_MEMORY 3    /* the request would not fit in this machine's memory */
#define EMBEDREC_ERR_BUSY 4             /* another thread is using the model in a conflicting way */
#define EMBEDREC_ERR_CANCELLED 5        /* embedrec_trainer_cancel stopped the epoch */
#define EMBEDREC_ERR_INTERNAL 6         /* a bug in embedrec: please report the message */

/* Parameter arrays of a matrix-factorisation model (embedrec_model_get_array / set_array). */
#define EMBEDREC_USER_FACTORS 0 /* float[n_users * n_factors], row-major, row j = user j */
#define EMBEDREC_ITEM_FACTORS 1 /* float[n_items * n_factors], row-major, row j = item j */
#define EMBEDREC_USER_BIAS 2    /* float[n_users] */
#define EMBEDREC_ITEM_BIAS 3    /* float[n_items] */
#define EMBEDREC_GLOBAL_BIAS 4  /* float[1], on the raw-score scale (before any y_range sigmoid) */

/* Optimisers and learning-rate schedules (embedrec_trainer_create). */
#define EMBEDREC_OPTIMIZER_SGD 0  /* per-rating SGD; batch_size is ignored */
#define EMBEDREC_OPTIMIZER_ADAM 1 /* mini-batch Adam with sparse row-wise updates */
#define EMBEDREC_SCHEDULE_CONSTANT 0
#define EMBEDREC_SCHEDULE_ONE_CYCLE 1

/* Opaque handles. */
typedef void *EmbedrecModelHandle;
typedef void *EmbedrecTrainerHandle;
typedef void *EmbedrecRatingsHandle;
typedef void *EmbedrecCompositionHandle;

/* Version of the core as "MAJOR.MINOR.PATCH"; a static string. */
const char *embedrec_version(void);

/* The calling thread's message for its last failed call ("" if none). */
const char *embedrec_last_error(void);

/* Number of live handles (models and trainers) in the process: for leak checks. */
int32_t embedrec_live_handles(int64_t *out);

/*
 * Creates a matrix-factorisation model: score = g + b_u + b_i + p_u . q_i, where the biases
 * are present when `biases` is non-zero. When `has_y_range` is non-zero the prediction is
 * y_lo + (y_hi - y_lo) * sigmoid(score). Factors start as N(0, init_std^2) from `seed`
 * (absolute values when `non_negative`, which also keeps every factor >= 0 while training);
 * at init_std 0 they start at zero without a draw (for tables about to be set).
 * Limits: 1 <= n_users, n_items <= 2^31-1; 1 <= n_factors <= 65536; 0 <= init_std <= 10;
 * finite y_lo < y_hi; the tables must fit in memory.
 */
int32_t embedrec_mf_create(int64_t n_users, int64_t n_items, int32_t n_factors, int32_t biases,
                           int32_t non_negative, int32_t has_y_range, double y_lo, double y_hi,
                           double init_std, uint64_t seed, EmbedrecModelHandle *out);

/* Frees a model (matrix factorisation or network). A trainer that still uses it keeps it alive
 * until the trainer is freed. */
int32_t embedrec_model_free(EmbedrecModelHandle model);

/* Writes the model's table sizes; any output pointer may be NULL. */
int32_t embedrec_model_shape(EmbedrecModelHandle model, int64_t *n_users, int64_t *n_items,
                             int32_t *n_factors);

/* Copies parameter array `which` (EMBEDREC_USER_FACTORS ...) into `out`, which holds exactly
 * `length` floats; `length` must equal the array's size. */
int32_t embedrec_model_get_array(EmbedrecModelHandle model, int32_t which, float *out, int64_t length);

/* Replaces parameter array `which` with `length` finite floats (length = the array's size).
 * Marks the model as initialised, so a later trainer keeps its global bias. */
int32_t embedrec_model_set_array(EmbedrecModelHandle model, int32_t which, const float *values,
                                 int64_t length);

/*
 * Predicts n (user, item) pairs into out[n]. A user or item of -1 is unknown: its bias and
 * factors are left out (the global bias plus whatever is known). n_threads 0 = all cores.
 */
int32_t embedrec_model_predict(EmbedrecModelHandle model, const int32_t *users, const int32_t *items,
                               int64_t n, int32_t n_threads, float *out);

/* Mean squared error and mean absolute error of the predictions for n known (user, item,
 * rating) triples with finite ratings; 0 and 0 when n is 0. For C callers: the Python package
 * computes its metrics from embedrec_model_predict (the tests exercise this function). */
int32_t embedrec_model_evaluate(EmbedrecModelHandle model, const int32_t *users, const int32_t *items,
                                const float *ratings, int64_t n, int32_t n_threads, double *mse,
                                double *mae);

/*
 * Top-k recommendations. For each of the n_users query user rows in `users`, the k items with
 * the highest prediction, best first, into out_items[n_users * k] and out_scores[n_users * k]
 * (predictions on the rating scale), padded with item -1 and score -inf when fewer remain.
 * Candidates: the n_candidates item rows in `candidates`, or every item when candidates is NULL
 * and n_candidates is 0. Seen items to skip (NULL seen_indptr: skip nothing): CSR over the
 * model's users, seen_indptr[n_model_users + 1] from 0 to n_seen, seen_items[n_seen] item rows.
 * Limits: 1 <= k <= 2^31-1, and the outputs must fit in memory.
 */
int32_t embedrec_model_recommend(EmbedrecModelHandle model, const int32_t *users, int64_t n_users, int32_t k,
                                 const int32_t *candidates, int64_t n_candidates, const int64_t *seen_indptr,
                                 const int32_t *seen_items, int64_t n_seen, int32_t n_threads,
                                 int32_t *out_items, float *out_scores);

/*
 * Ranking evaluation over the whole catalogue. For each of the n_users query user rows: its top-k
 * items, as embedrec_model_recommend ranks them with every item a candidate and the seen items
 * (NULL seen_indptr: none) skipped, into out_items[n_users * k] (padded with -1); and into
 * out_auc[n_users] the AUC of its relevant items that are not seen against every other item not
 * seen: the share of (relevant, other) pairs the scores put in order, ties counting a half, NaN
 * when either side is empty. Relevant items: CSR over the queries, relevant_indptr[n_users + 1]
 * from 0 to n_relevant, relevant_items[n_relevant] item rows. Limits as embedrec_model_recommend.
 */
int32_t embedrec_model_rank(EmbedrecModelHandle model, const int32_t *users, int64_t n_users, int32_t k,
                            const int64_t *relevant_indptr, const int32_t *relevant_items, int64_t n_relevant,
                            const int64_t *seen_indptr, const int32_t *seen_items, int64_t n_seen,
                            int32_t n_threads, int32_t *out_items, double *out_auc);

/* Similarity metrics (embedrec_model_similar). */
#define EMBEDREC_METRIC_COSINE 0
#define EMBEDREC_METRIC_DOT 1

/*
 * Nearest neighbours within one table: for each of the n_rows query rows of the item table
 * (of_items != 0) or the user table, the k other rows of the same table with the highest
 * similarity (`metric`), best first, never the row itself; into out_rows[n_rows * k] and
 * out_scores[n_rows * k], padded with -1 / -inf. Limits: 1 <= k <= 2^31-1, and the outputs must fit in memory.
 */
int32_t embedrec_model_similar(EmbedrecModelHandle model, int32_t of_items, const int32_t *rows, int64_t n_rows,
                               int32_t k, int32_t metric, int32_t n_threads, int32_t *out_rows, float *out_scores);

/* ---- Networks: the neural models (EmbeddingNN, NeuMF) --------------------------------------
 *
 * A network is a list of nodes in topological order; node j may read nodes 0..j-1 and the last
 * node outputs one value per (user, item) pair. Each node is described by EMBEDREC_NODE_INTS
 * int32 slots and EMBEDREC_NODE_VALUES double slots:
 *   ints:   kind, input0, input1, input2, input3 (-1 when unused), p0, p1, p2
 *   values: v0, v1, v2, v3
 * Kinds and their slots:
 *   EMBEDREC_NODE_EMBEDDING      p0 side (0 user, 1 item), p1 width, p2 flags (1: non-negative,
 *                                2: uniform init in [v0, v1]; else normal with std v0; 4: fixed,
 *                                never trained: a table of given values such as encoded features)
 *   EMBEDREC_NODE_DROPOUT        input0; v0 rate in [0, 1) (training only)
 *   EMBEDREC_NODE_PRODUCT        input0, input1 of equal width: elementwise product
 *   EMBEDREC_NODE_DOT            input0, input1 of equal width: dot product (width 1)
 *   EMBEDREC_NODE_CONCAT         input0..input3 (1 to 4 inputs)
 *   EMBEDREC_NODE_DENSE          input0; p0 units, p1 activation (EMBEDREC_ACTIVATION_*);
 *                                kernel Glorot-uniform, bias zero
 *   EMBEDREC_NODE_SCALED_SIGMOID input0; v0 lo < v1 hi: lo + (hi - lo) * sigmoid(x)
 */
#define EMBEDREC_NODE_INTS 8
#define EMBEDREC_NODE_VALUES 4
#define EMBEDREC_NODE_EMBEDDING 0
#define EMBEDREC_NODE_DROPOUT 1
#define EMBEDREC_NODE_PRODUCT 2
#define EMBEDREC_NODE_DOT 3
#define EMBEDREC_NODE_CONCAT 4
#define EMBEDREC_NODE_DENSE 5
#define EMBEDREC_NODE_SCALED_SIGMOID 6
#define EMBEDREC_ACTIVATION_LINEAR 0
#define EMBEDREC_ACTIVATION_RELU 1
#define EMBEDREC_ACTIVATION_SIGMOID 2
#define EMBEDREC_LOSS_MSE 0
#define EMBEDREC_LOSS_MAE 1
#define EMBEDREC_LOSS_BCE 2 /* the output is a logit; predictions are sigmoid(output) */

/* Creates a network from n_nodes node descriptions (spec[n_nodes * EMBEDREC_NODE_INTS],
 * values[n_nodes * EMBEDREC_NODE_VALUES]) with tables for n_users users and n_items items.
 * Free it with embedrec_model_free. */
int32_t embedrec_net_create(const int32_t *spec, const double *values, int32_t n_nodes, int64_t n_users,
                            int64_t n_items, uint64_t seed, EmbedrecModelHandle *out);

/* Size of parameter `which` (0: embedding table or dense kernel, units x inputs row-major;
 * 1: dense bias) of node `node`; 0 for nodes without that parameter. */
int32_t embedrec_net_param_size(EmbedrecModelHandle net, int32_t node, int32_t which, int64_t *length);

/* Copies a parameter out (length must equal its size). */
int32_t embedrec_net_get_param(EmbedrecModelHandle net, int32_t node, int32_t which, float *out, int64_t length);

/* Replaces a parameter with `length` finite floats (>= 0 for a non-negative embedding). */
int32_t embedrec_net_set_param(EmbedrecModelHandle net, int32_t node, int32_t which, const float *values,
                               int64_t length);

/* Predicts n pairs into out[n] (dropout off). A user or item of -1 reads as a zero embedding.
 * With `logistic` non-zero the output goes through a sigmoid (models trained with BCE). */
int32_t embedrec_net_predict(EmbedrecModelHandle net, const int32_t *users, const int32_t *items, int64_t n,
                             int32_t logistic, int32_t n_threads, float *out);

/*
 * Starts mini-batch training of a network on n (user, item, target) triples (copied), with
 * `loss` (EMBEDREC_LOSS_*). With `negatives` > 0 (BCE only) the pairs are positives and each
 * epoch samples that many negatives per positive among the user's other items; targets are then
 * ignored. Other arguments as in embedrec_trainer_create; weight_decay is an L2 penalty per
 * example on the embedding rows it uses and a decoupled decay (AdamW) of the dense kernels.
 * Results do not depend on n_threads. Limits: 0 <= negatives <= 100.
 * For C callers with the whole data in arrays; the Python package uses
 * embedrec_net_trainer_create_from.
 */
int32_t embedrec_net_trainer_create(EmbedrecModelHandle net, const int32_t *users, const int32_t *items,
                                    const float *targets, int64_t n, int32_t loss, int32_t negatives,
                                    int32_t optimizer, int32_t schedule, int32_t epochs, int32_t batch_size,
                                    double lr, double weight_decay, int32_t n_threads, uint64_t seed,
                                    EmbedrecTrainerHandle *out);

/* Freezes a network trainer's network except the user embedding rows from first_user on
 * (0 <= first_user < n_users): only those rows are updated by later epochs. Used to fold new
 * users into a trained network without changing anything else. */
int32_t embedrec_net_trainer_freeze(EmbedrecTrainerHandle trainer, int64_t first_user);

/*
 * Starts a training run of a matrix-factorisation model: `epochs` epochs on n ratings (copied; the caller may free its arrays
 * on return). If the model has never been trained or loaded, its global bias is set so that
 * an all-zero model predicts the mean rating. Limits: 1 <= n <= 2^31-1; 1 <= epochs <= 10^6;
 * 1 <= batch_size <= 2^24; 0 < lr <= 10; 0 <= weight_decay <= 100; 0 <= n_threads <= 1024.
 * weight_decay is the L2 penalty per rating on the rows and biases that rating uses.
 * `epochs` fixes the length of the one-cycle schedule; running more epochs is allowed.
 * For C callers with the whole data in arrays; the Python package hands data over in chunks
 * (embedrec_ratings_create / embedrec_trainer_create_from) and does not use this function.
 */
int32_t embedrec_trainer_create(EmbedrecModelHandle model, const int32_t *users, const int32_t *items,
                                const float *ratings, int64_t n, int32_t optimizer, int32_t schedule,
                                int32_t epochs, int32_t batch_size, double lr, double weight_decay,
                                int32_t n_threads, uint64_t seed, EmbedrecTrainerHandle *out);

/*
 * Training data given in chunks. embedrec_trainer_create copies whole arrays, so a caller that
 * converts its data first holds it twice at the peak; here the caller converts and appends one
 * chunk at a time and the data exist once, in the core (12 bytes a rating).
 *
 * embedrec_ratings_create announces n ratings (1 <= n <= 2^31-1) over n_users x n_items rows.
 * embedrec_ratings_append validates and copies the next n of them (every user in 0..n_users-1,
 * every item in 0..n_items-1, every rating finite; positions in messages count from the first
 * rating appended). Appending beyond the announced total is an error.
 */
int32_t embedrec_ratings_create(int64_t n, int64_t n_users, int64_t n_items, EmbedrecRatingsHandle *out);
int32_t embedrec_ratings_append(EmbedrecRatingsHandle ratings, const int32_t *users, const int32_t *items,
                                const float *values, int64_t n);

/* Frees a ratings handle (and its data, unless a trainer took them over). */
int32_t embedrec_ratings_free(EmbedrecRatingsHandle ratings);

/* As embedrec_trainer_create and embedrec_net_trainer_create, but the trainer takes over the
 * complete data of `ratings` instead of copying arrays: the ratings handle stays valid (free it
 * as usual) but is empty afterwards, and any further use of it is an error. If creation fails,
 * the ratings keep their data. Their n_users and n_items must equal the model's. */
int32_t embedrec_trainer_create_from(EmbedrecModelHandle model, EmbedrecRatingsHandle ratings, int32_t optimizer,
                                     int32_t schedule, int32_t epochs, int32_t batch_size, double lr,
                                     double weight_decay, int32_t n_threads, uint64_t seed,
                                     EmbedrecTrainerHandle *out);
int32_t embedrec_net_trainer_create_from(EmbedrecModelHandle net, EmbedrecRatingsHandle ratings, int32_t loss,
                                         int32_t negatives, int32_t optimizer, int32_t schedule, int32_t epochs,
                                         int32_t batch_size, double lr, double weight_decay, int32_t n_threads,
                                         uint64_t seed, EmbedrecTrainerHandle *out);

/* Runs one epoch; writes the epoch's running training MSE, MAE and wall seconds (any output
 * may be NULL). Returns EMBEDREC_ERR_CANCELLED when cancelled mid-epoch (the model then holds
 * the partially trained, finite weights). */
int32_t embedrec_trainer_run_epoch(EmbedrecTrainerHandle trainer, double *loss, double *mae,
                                   double *seconds);

/* Asks a running epoch to stop within a few thousand updates; safe from any thread (a signal
 * handler's thread included). The flag stays set until embedrec_trainer_reset_cancel. */
int32_t embedrec_trainer_cancel(EmbedrecTrainerHandle trainer);

/* With `on` non-zero, makes later epochs of an SGD trainer use the deterministic schedule of
 * non-conflicting blocks: results then depend only on the seed and the thread count, not on
 * thread timing (the default lock-free schedule can differ slightly between runs with more
 * than one thread). Adam and network trainers are deterministic already; for them this is a
 * no-op. Call it before the first epoch. */
int32_t embedrec_trainer_set_deterministic(EmbedrecTrainerHandle trainer, int32_t on);

/* Per-side embedding dropout for later epochs of a matrix-factorisation trainer (SGD or Adam):
 * each entry of the user's (item's) row is dropped with probability user_rate (item_rate) and
 * the kept ones scaled by 1 / (1 - rate), for each rating while training; predictions use the
 * rows as they are. Masks depend only on the seed, the epoch and the rating's position, never
 * on the thread count. Limits: 0 <= user_rate, item_rate <= 0.99. Network trainers refuse it
 * (EMBEDREC_ERR_INVALID): their dropout is a layer. Call it before the first epoch. */
int32_t embedrec_trainer_set_dropout(EmbedrecTrainerHandle trainer, double user_rate, double item_rate);

/* A hold-out inside an SGD trainer of a plain matrix factorisation (no features), so that a
 * caller can choose settings on ratings it does not train on without a second copy of the
 * data. The trainer shuffled its ratings when it was made: later epochs train on all but the
 * last `count` of them (a uniformly random subset; 0 <= count < n), and
 * embedrec_trainer_held_out_loss writes the model's MSE and MAE on those (0 without any).
 * count 0 trains on all again. With the deterministic schedule the data are shuffled again
 * first (that schedule sorts them into blocks). */
int32_t embedrec_trainer_hold_out(EmbedrecTrainerHandle trainer, int64_t count);
int32_t embedrec_trainer_held_out_loss(EmbedrecTrainerHandle trainer, double *mse, double *mae);

/* The learning rate and weight decay of later epochs of an SGD trainer of a plain matrix
 * factorisation (limits as in embedrec_trainer_create). */
int32_t embedrec_trainer_set_rates(EmbedrecTrainerHandle trainer, double lr, double weight_decay);

/* Progress of the epoch running now (or the last one): examples done, examples in the epoch,
 * and the sum of their losses (divide by done for the running loss). Safe from any thread while
 * the epoch runs; any output may be NULL. */
int32_t embedrec_trainer_progress(EmbedrecTrainerHandle trainer, int64_t *done, int64_t *total, double *loss_sum);

/* Clears the cancel flag so that further epochs can run. */
int32_t embedrec_trainer_reset_cancel(EmbedrecTrainerHandle trainer);

/* Each user's training items as CSR: indptr[n_users + 1] (int64) and items[n] (int32), n the
 * trainer's number of training ratings (positives, for implicit data); user u's items are
 * items[indptr[u] .. indptr[u+1]). The lengths passed must be exactly n_users + 1 and n. Taken
 * from the trainer's data, so the caller need not keep its own copy of the pairs. */
int32_t embedrec_trainer_seen(EmbedrecTrainerHandle trainer, int64_t *indptr, int64_t indptr_length,
                              int32_t *items, int64_t items_length);

/* Frees a trainer and its copy of the training data and optimiser state. */
int32_t embedrec_trainer_free(EmbedrecTrainerHandle trainer);

/*
 * One block of distributed SGD (DSGD) for matrix factorisation: one pass of the SGD of
 * embedrec_trainer_create (optimizer SGD, constant rate) over the block's n ratings, against a
 * block of n_users user rows (user_factors[n_users * n_factors], user_bias[n_users]) and a block
 * of n_items item rows, updated in place. users/items index into those blocks. global_bias is the
 * raw global term (fixed); y_range and non_negative as in embedrec_mf_create; dropout as in
 * embedrec_trainer_set_dropout. With n_threads > 1 the block runs the deterministic schedule, so
 * its result depends only on its inputs, the seed and n_threads. Writes the sums of the ratings'
 * squared and absolute errors (each measured before its own update); either output may be NULL.
 * An engine (Spark, Dask, Ray) runs the grid of blocks; nothing here is engine-specific.
 * Limits: 1 <= n <= 2^31-1; 1 <= n_users, n_items <= 2^31-1; 1 <= n_factors <= 65536; every
 * parameter finite; 0 < lr <= 10; 0 <= weight_decay <= 100; 0 <= dropout rates <= 0.99.
 */
int32_t embedrec_mf_sgd_block(const int32_t *users, const int32_t *items, const float *ratings, int64_t n,
                              float *user_factors, float *user_bias, int64_t n_users,
                              float *item_factors, float *item_bias, int64_t n_items, int32_t n_factors,
                              int32_t biases, int32_t non_negative, int32_t has_y_range, double y_lo, double y_hi,
                              double global_bias, double lr, double weight_decay, double user_dropout,
                              double item_dropout, int32_t n_threads, uint64_t seed, double *loss_sum,
                              double *abs_sum);

/* ---- Implicit feedback ----------------------------------------------------------------------
 *
 * Models of interactions (clicks, plays, purchases) rather than ratings, trained on a model made
 * by embedrec_mf_create (biases on for BPR's item bias; no y_range, not non-negative); training
 * sets its global and user biases to 0, so scores are user · item (+ item bias). */

/* Implicit-feedback methods (embedrec_implicit_trainer_create). */
#define EMBEDREC_IMPLICIT_ALS 0
#define EMBEDREC_IMPLICIT_BPR 1

/*
 * A trainer that takes over `ratings` (interactions, the values their weights >= 0; repeated
 * pairs add up) and trains `model` one epoch per embedrec_trainer_run_epoch. ALS: weighted matrix
 * factorisation, confidence 1 + alpha * weight, `regularization` the L2 penalty, cg_steps
 * conjugate-gradient steps per row and half-epoch (lr unused); the epoch's loss is the weighted
 * objective over all cells divided by their total confidence. BPR: SGD with step `lr` on
 * -ln sigmoid(s_ui - s_uj) over one sampled triple per interaction, `regularization` the L2
 * penalty (alpha and cg_steps unused); the loss is the mean of that over the epoch's triples.
 * The mae output of embedrec_trainer_run_epoch is 0. Limits: 1 <= epochs <= 10^6;
 * 0 < lr <= 10; 0 <= regularization, alpha <= 10^6; 1 <= cg_steps <= 1000.
 */
int32_t embedrec_implicit_trainer_create(EmbedrecModelHandle model, EmbedrecRatingsHandle ratings, int32_t method,
                                         int32_t epochs, double lr, double regularization, double alpha,
                                         int32_t cg_steps, int32_t n_threads, uint64_t seed,
                                         EmbedrecTrainerHandle *out);

/* ---- Features -------------------------------------------------------------------------------
 *
 * The hybrid model (LightFM's): a model made by embedrec_mf_create whose rows are parameter rows
 * (ids' and features' embeddings and biases), and per side a composition saying which rows,
 * with what weights, make up each user (item): its vector and bias are the weighted sums. A side
 * without a composition (NULL) is plain: its entities are its rows. */

/*
 * A composition of n_entities entities over n_rows parameter rows, as CSR: entity e's pairs are
 * indptr[e] ..< indptr[e + 1] (indptr[n_entities + 1], from 0, non-decreasing), each a row in
 * 0..<n_rows and a finite weight. kinds[n_rows] (NULL: all EMBEDREC_ROW_FEATURE) says what each
 * row is: a feature's row, a bias-only row (a numeric feature's learned linear term: it adds only
 * its bias, its vector is zero), or an entity's own id row. The arrays are copied. Free with
 * embedrec_composition_free.
 */
#define EMBEDREC_ROW_FEATURE 0
#define EMBEDREC_ROW_BIAS_ONLY 1
#define EMBEDREC_ROW_ID 2
int32_t embedrec_composition_create(const int64_t *indptr, const int32_t *rows, const float *weights,
                                    const uint8_t *kinds, int64_t n_entities, int64_t n_rows,
                                    EmbedrecCompositionHandle *out);
int32_t embedrec_composition_free(EmbedrecCompositionHandle composition);

/*
 * An SGD trainer (optimizer must be EMBEDREC_OPTIMIZER_SGD) of the hybrid model: `ratings` index
 * the compositions' entities (made for that many users and items), `model` holds the parameter
 * rows (user_composition's n_rows users, item_composition's n_rows items; a NULL side is plain,
 * but not both).
 * Each rating's gradient g moves a composed row r of weight w by lr * (g w v - weight_decay |w|
 * row_r), v the other side's composed vector. Rows no training rating reaches are set to zero
 * when the trainer is made. id_dropout in [0, 1): the probability that a rating leaves a side's
 * EMBEDREC_ROW_ID rows out (of its vector and of the update), so that the features learn what
 * the ids would otherwise absorb. Other arguments, epochs and the rest as
 * embedrec_trainer_create_from; not deterministic with more than one thread; no embedding dropout.
 */
int32_t embedrec_feature_trainer_create(EmbedrecModelHandle model, EmbedrecRatingsHandle ratings,
                                        EmbedrecCompositionHandle user_composition,
                                        EmbedrecCompositionHandle item_composition, int32_t optimizer,
                                        int32_t schedule, int32_t epochs, int32_t batch_size, double lr,
                                        double weight_decay, double id_dropout, int32_t n_threads, uint64_t seed,
                                        EmbedrecTrainerHandle *out);

/*
 * A new model of the entities `model`'s parameter rows make up: each user's (item's) vector and
 * bias composed by user_composition (item_composition; NULL: copied as they are), the global term
 * and options carried over. Every model query then works on it.
 */
int32_t embedrec_model_compose(EmbedrecModelHandle model, EmbedrecCompositionHandle user_composition,
                               EmbedrecCompositionHandle item_composition, EmbedrecModelHandle *out);

/*
 * Composes again into `target`, a model embedrec_model_compose made from `model` with the same
 * compositions (same entity counts): its tables are overwritten in place under the models'
 * shared write lock, so no second composed copy is allocated. Fails (EMBEDREC_ERR_INVALID_ARGUMENT)
 * for any other target, and (EMBEDREC_ERR_BUSY) while another thread uses the model.
 */
int32_t embedrec_model_compose_into(EmbedrecModelHandle model, EmbedrecCompositionHandle user_composition,
                                    EmbedrecCompositionHandle item_composition, EmbedrecModelHandle target);

#ifdef __cplusplus
}
#endif

#endif /* EMBEDREC_H */
