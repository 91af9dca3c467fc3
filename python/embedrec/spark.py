"""Matrix factorisation on Apache Spark: train on a cluster with the same model class, and
score there.

``MatrixFactorization(...).fit(spark_df)`` trains with distributed SGD over strata of blocks
(DSGD: Gemulla, Nijkamp, Haas & Sismanis, KDD 2011), which converges like serial SGD. Users and
items are cut into ``num_blocks`` = p blocks each (row r of a table in block r mod p), giving a
p x p grid of rating blocks. An epoch is p sub-epochs; in sub-epoch s the p blocks
(b, (b + s) mod p) share no user and no item, so p Spark tasks train them at once, each with
the core's SGD (``embedrec_mf_sgd_block``: the same update, weight decay, biases, y_range and
non-negativity as a local fit), with no communication. The ratings are partitioned by user
block once and cached; only factor blocks move: each sub-epoch the driver sends every task its
user and item blocks and takes them back. The fitted model lands on the driver as after a local
fit (``predict``, ``recommend``, ``fold_in``, ``save`` ...).

Block files: before the first epoch one pass hashes the ratings to partitions by block, and
the task holding a block sorts its ratings and writes them to a file in its machine's
temporary folder (named by the fit's token and the block), sending the block's (user, item)
pairs back for the fitted model's seen items. Every sub-epoch then sends the tasks the factor
blocks alone; a task reads its block's file, so the ratings travel from the JVM to Python once
per fit and are sorted once. A task on a machine without the file reports it, and the driver
trains those blocks through a cogroup of the factor blocks with the ratings (which writes the
file there). The files hold the same sorted arrays the cogroup gives, so results do not depend
on which path a block took; they are removed at the end of the fit (on the machines a last
small job reaches).

Only the DataFrame API is used (``groupBy().cogroup().applyInPandas()``, ``mapInPandas``),
so it runs on classic Spark and on Spark Connect; no barrier mode, so a failed task is simply
retried, and since every task is a pure function of its inputs (its ratings sorted, its seed
fixed by epoch, sub-epoch and block) a retry gives the same block and a rerun the same model.

Defaults: with its settings left to the data (``MatrixFactorization()``), the fit chooses them
as a local fit does (``embedrec._tuning``), on the driver, from a sample of the ratings: those
of a hashed share of the users (all of each one's, about 2 million ratings at most), collected
after the id maps are built. The search runs in the deterministic block schedule, so a rerun
chooses the same; the cluster then trains with the chosen width, weight decay, length and rate
of each epoch.

Scoring: :func:`predict`, :func:`recommend_all` and :func:`factors` return Spark DataFrames;
:func:`write_factors` and :func:`recommend_from_factors` (``embedrec.spark_factors``) rank from
factor tables on the lake without a model on the driver.
"""

import hashlib
import os
import shutil
import tempfile
import time
import uuid

import numpy as np
import pandas as pd

from . import _diagnose, _frame, _lib
from ._checks import check_int
from ._core import CoreMF, sgd_block
from ._fitted import Fitted
from ._ids import IdMap
from ._loading import RatingStats, TrainingData, sampled_users
from ._progress import summary
from .errors import InvalidArgumentError, TrainingCancelled, TrainingDivergedError, UnknownIdError
from .persistence import load_bytes
from .history import History

#: Test hook: a path; while a file exists there, the next block task to start deletes it and
#: fails (so that the tests can check that Spark's retry gives the same model).
FAIL_ONCE_MARKER = None
#: Whether tasks keep their blocks' ratings in block files between sub-epochs (see the module
#: doc); off, every sub-epoch sends the ratings through the cogroup (the tests compare both).
BLOCK_FILES = True


def is_spark_frame(obj):
    """True for a ``pyspark.sql.DataFrame``, classic or Connect (without importing pyspark)."""
    module = type(obj).__module__ or ""
    return module.startswith("pyspark.sql") and type(obj).__name__ == "DataFrame"


def _pyspark():
    try:
        from pyspark.sql import functions, types
    except ImportError:
        raise ImportError("training on Spark needs pyspark and pyarrow: pip install 'embedrec[spark]'") from None
    return functions, types


def _check_model(model):
    if not getattr(model, "_trains_on_spark", False):
        raise InvalidArgumentError(
            f"{type(model).__name__} cannot train on a Spark DataFrame yet: on Spark, MatrixFactorization with "
            f"optimizer='sgd' trains (biases, global_bias, y_range, non_negative, dropout). Train this model on a "
            f"pandas DataFrame (spark_df.toPandas()) or use MatrixFactorization.")
    if model.params["optimizer"] != "sgd":
        raise InvalidArgumentError(
            "on Spark, MatrixFactorization trains with optimizer='sgd' (distributed SGD over blocks); Adam is not "
            "supported there yet. Use MatrixFactorization(optimizer='sgd'), or train Adam on a pandas DataFrame.")


def default_blocks(spark):
    """The cluster's default parallelism (at least 2), for ``num_blocks``."""
    try:
        return max(2, int(spark.sparkContext.defaultParallelism))
    except Exception:  # Spark Connect: no SparkContext; the setting when made, else 2
        try:
            # With a default, an unset key is not an error the server logs.
            return max(2, int(spark.conf.get("spark.default.parallelism", "2")))
        except Exception:
            return 2


# ----- training ---------------------------------------------------------------------------------
def fit(model, sdf, user=None, item=None, rating=None, validation=None, num_blocks=None, verbose=False):
    """Trains ``model`` (a MatrixFactorization) on the Spark DataFrame ``sdf``; see the module
    doc. Returns the History, as a local fit does."""
    F, T = _pyspark()
    _check_model(model)
    model._validate_params()
    spark = sdf.sparkSession
    p = model._training_options()  # "auto" where settings are left to the data (see _choose)
    model.tuning = None
    blocks = default_blocks(spark) if num_blocks is None else num_blocks
    check_int("num_blocks", blocks, 1, 4096)
    columns = _frame.find_columns(pd.DataFrame(columns=list(sdf.columns)), user, item, rating)
    u_col, i_col, r_col = columns
    _check_rating_type(sdf, r_col, T)
    if validation is not None:
        if not is_spark_frame(validation):
            raise InvalidArgumentError("with a Spark DataFrame to train on, validation must be a Spark DataFrame too")
        for role, name in zip(("user", "item", "rating"), columns):
            if name not in validation.columns:
                raise InvalidArgumentError(f"validation has no {role} column {name!r}; its columns are "
                                           f"{list(validation.columns)!r}")
        _check_rating_type(validation, r_col, T)
    # The ratings are partitioned by user block once; grouping them by user block in every
    # sub-epoch then moves nothing when the shuffle has one partition per block.
    shuffle_partitions = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(blocks))
    try:
        return _fit_blocks(model, spark, sdf, columns, validation, blocks, verbose, p, F, T)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", shuffle_partitions)


def _fit_blocks(model, spark, sdf, columns, validation, blocks, verbose, p, F, T):
    u_col, i_col, r_col = columns
    stats = _stats(sdf, columns, F)
    users, items = _id_maps(sdf, columns, stats, F)
    local_stats = RatingStats.from_totals(stats["n"], stats["sum"], stats["squares"], stats["min"], stats["max"])
    # Settings left to the data are chosen before the ratings are blocked: an interrupt or a
    # stop() during the search leaves nothing on the cluster to clean up.
    spec = model._unfitted_copy()
    try:
        p = _choose(model, spark, sdf, columns, users, items, local_stats, p, spec, verbose, F)
    except TrainingCancelled:
        return model._search_cancelled(validation is not None)
    token = uuid.uuid4().hex if BLOCK_FILES else None
    ratings = _blocked_ratings(spark, sdf, columns, users, items, blocks, F, persist=token is None)
    # The training pairs for the fitted model's seen items: from the block files' pass, or
    # collected from the cached ratings at the end.
    pairs = _write_block_files(ratings, blocks, token) if token is not None else ratings
    val = validation.select(*columns) if validation is not None else None
    core = model._create_core(len(users), len(items), p)
    model._start_from_data(core, local_stats)
    k = p["n_factors"]
    P = core.get_array(_lib.USER_FACTORS).reshape(len(users), k)
    Q = core.get_array(_lib.ITEM_FACTORS).reshape(len(items), k)
    bu = core.get_array(_lib.USER_BIAS)
    bi = core.get_array(_lib.ITEM_BIAS)
    g = _raw_global_bias(stats["mean"], p)

    history = History(has_validation=val is not None, loss="mse")
    model.history = history
    saved = None
    try:
        for epoch in range(1, p["epochs"] + 1):
            start = time.perf_counter()
            saved = (P.copy(), bu.copy(), Q.copy(), bi.copy())  # the last complete epoch, for Ctrl-C
            loss_sum = abs_sum = 0.0
            spent = {"core": 0.0, "task": 0.0, "from_files": 0}
            rates = p.get("rates")
            run = dict(p, lr=rates[min(epoch, len(rates)) - 1]) if rates else p  # the chosen schedule
            for s in range(blocks):
                timing = {}
                loss, absolute = _sub_epoch(spark, ratings, P, bu, Q, bi, g, run, blocks, s, epoch, F, T, timing,
                                            token)
                loss_sum += loss
                abs_sum += absolute
                spent["core"] += timing.get("core", 0.0)
                spent["task"] += timing.get("task", 0.0)
                spent["from_files"] += timing.get("from_files", 0)
            row = {"epoch": epoch, "train_loss": loss_sum / stats["n"], "train_mae": abs_sum / stats["n"]}
            if not (np.isfinite(row["train_loss"]) and np.isfinite(row["train_mae"])):
                P, bu, Q, bi = saved
                _publish(model, core, P, bu, Q, bi, g, users, items, columns, pairs, (stats["min"], stats["max"]),
                         blocks, spec)
                raise TrainingDivergedError(
                    f"training diverged on Spark: the loss of epoch {epoch} was {row['train_loss']}; the model keeps "
                    f"the {epoch - 1} finite epoch(s) before it. Lower lr (it is {p['lr']!r}) or rescale the ratings "
                    f"(they range over {stats['min']:g}..{stats['max']:g}).")
            if val is not None:
                mse, mae = _validation_errors(val, columns, users, items, P, bu, Q, bi, g, p,
                                              (stats["min"], stats["max"]), F)
                row["val_loss"], row["val_mae"] = mse, mae
            row["seconds"] = time.perf_counter() - start
            history.append(row)
            #: Per epoch, where its time went: the slowest task's seconds in the core and in all,
            #: summed over sub-epochs (the rest is Spark's scheduling and moving data), and how
            #: many blocks were trained from block files.
            history.spark_timing = getattr(history, "spark_timing", []) + [dict(spent, epoch=row["seconds"])]
            saved = None
            if verbose:
                print(f"epoch {epoch}/{p['epochs']} - " + " - ".join(summary(row)))
        _publish(model, core, P, bu, Q, bi, g, users, items, columns, pairs, (stats["min"], stats["max"]), blocks,
                 spec)
    except KeyboardInterrupt:
        # As a local fit: the model keeps exactly the epochs its history lists.
        history.interrupted = True
        if saved is not None and len(history):
            P, bu, Q, bi = saved
        if len(history):
            _publish(model, core, P, bu, Q, bi, g, users, items, columns, pairs, (stats["min"], stats["max"]),
                     blocks, spec)
        raise
    finally:
        ratings.unpersist()
        if token is not None:
            _remove_block_files(spark, token)
    _diagnose.warn_if_failed(model, history, local_stats, p)
    return history


def _check_rating_type(sdf, column, T):
    field = sdf.schema[column]
    if isinstance(field.dataType, T.BooleanType) or not isinstance(field.dataType, T.NumericType):
        raise InvalidArgumentError(f"rating column {column!r} must be numeric, got {field.dataType.simpleString()}; "
                                   f"cast it first (F.col({column!r}).cast('double'))")


def _choose(model, spark, sdf, columns, users, items, stats, options, spec, verbose, F):
    """The options of the run: settings left to the data chosen by the model's local search
    (``_choose_settings``, which records them on ``spec``) on the ratings of a hashed share of
    the users, collected to the driver; as they are when nothing is left to the data."""
    if not model._chosen_names(model.get_params()):
        return options
    share = model._search_sample_share(stats.n, None)
    sample = None
    if share is not None:
        rows = np.flatnonzero(sampled_users(np.arange(len(users), dtype=np.int32), share))
        sample = _collect_rows(spark, sdf, columns, users, items, rows, F)
    data = TrainingData(users, items, None, 0, stats, sample=sample)
    # The deterministic block schedule: a rerun chooses the same, as the cluster's runs repeat.
    try:
        chosen = model._choose_settings(dict(options, deterministic=True), data, spec, False, verbose)
    finally:
        model._active_trainer = None
    return dict(chosen, deterministic=options["deterministic"])


def _collect_rows(spark, sdf, columns, users, items, user_rows, F):
    """The ratings of the users at ``user_rows`` as (user rows, item rows, ratings) arrays on
    the driver, sorted by user and item (whatever order the join gives)."""
    u, i, r = columns
    chosen = spark.createDataFrame(pd.DataFrame({"_user": users.index[user_rows], "_u": user_rows.astype(np.int64)}))
    item_rows = spark.createDataFrame(pd.DataFrame({"_item": items.index, "_i": np.arange(len(items), dtype=np.int64)}))
    frame = (sdf.select(F.col(u).alias("_user"), F.col(i).alias("_item"), F.col(r).cast("float").alias("r"))
             .join(F.broadcast(chosen), "_user").join(F.broadcast(item_rows), "_item")
             .select("_u", "_i", "r").toPandas())
    us, its, rs = frame["_u"].to_numpy(np.int32), frame["_i"].to_numpy(np.int32), frame["r"].to_numpy(np.float32)
    order = np.lexsort((its, us))
    return us[order], its[order], rs[order]


def _stats(sdf, columns, F):
    """Count, missing values, non-finite ratings and the ratings' moments in one pass."""
    u, i, r = columns
    rating = F.col(r).cast("double")
    bad = F.isnan(rating) | (F.abs(rating) == float("inf"))
    row = sdf.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.col(u).isNull().cast("long")).alias("null_users"),
        F.sum(F.col(i).isNull().cast("long")).alias("null_items"),
        F.sum(F.col(r).isNull().cast("long")).alias("null_ratings"),
        F.sum(bad.cast("long")).alias("bad_ratings"),
        F.sum(rating).alias("sum"), F.sum(rating * rating).alias("squares"), F.min(rating).alias("min"),
        F.max(rating).alias("max"),
    ).first().asDict()
    if not row["n"]:
        raise InvalidArgumentError("df is empty: there are no ratings to use")
    for role, key, name in (("user", "null_users", u), ("item", "null_items", i)):
        if row[key]:
            raise InvalidArgumentError(f"the {name!r} column has {row[key]} missing {role} id(s); every rating needs "
                                       f"{'an' if role == 'item' else 'a'} {role} id")
    if row["null_ratings"]:
        raise InvalidArgumentError(f"rating column {r!r} has {row['null_ratings']} missing value(s); drop or fill "
                                   f"them before fitting")
    if row["bad_ratings"]:
        raise InvalidArgumentError(f"rating column {r!r} has {row['bad_ratings']} non-finite value(s); ratings must "
                                   f"be finite numbers")
    row["mean"] = row["sum"] / row["n"]
    return row


#: Up to this many ratings (so at most as many distinct ids), both id maps come from one pass
#: (``collect_set``); beyond, one ``distinct`` job per column: the sets of one pass are merged
#: in one task's memory, the distinct rows of a job spread over many. (An exact or approximate
#: count of the distinct ids first cost more than the pass it would save.)
ONE_PASS_IDS = 30_000_000


def _id_maps(sdf, columns, stats, F):
    """The user and item id maps, from the distinct ids (never a collect of the ratings), ordered
    as a local fit orders them."""
    u, i = columns[0], columns[1]
    if stats["n"] <= ONE_PASS_IDS:
        row = sdf.agg(F.collect_set(u).alias("users"), F.collect_set(i).alias("items")).first()
        return _ordered(pd.Series(row["users"])), _ordered(pd.Series(row["items"]))
    return (_ordered(sdf.select(u).distinct().toPandas()[u]), _ordered(sdf.select(i).distinct().toPandas()[i]))


def _ordered(distinct):
    index = pd.Index(pd.unique(distinct))
    try:
        index = index.sort_values()
    except TypeError:
        pass
    return IdMap(index)


def _blocked_ratings(spark, sdf, columns, users, items, blocks, F, persist=True):
    """The ratings as (ub, ib, lu, li, r): block numbers and rows within the blocks. With
    ``persist``, partitioned by user block and cached (then grouping them by block in each
    sub-epoch moves nothing); without, as a plan: the block files hold them, and this frame is
    read again only for blocks a machine lacks and for the training pairs at the end."""
    u, i, r = columns
    user_rows = spark.createDataFrame(pd.DataFrame({"_id": users.index, "_row": np.arange(len(users), dtype=np.int64)}))
    item_rows = spark.createDataFrame(pd.DataFrame({"_id": items.index, "_row": np.arange(len(items), dtype=np.int64)}))
    rated = (sdf.select(F.col(u).alias("_user"), F.col(i).alias("_item"), F.col(r).cast("float").alias("r"))
             .join(F.broadcast(user_rows.withColumnRenamed("_id", "_user").withColumnRenamed("_row", "_u")), "_user")
             .join(F.broadcast(item_rows.withColumnRenamed("_id", "_item").withColumnRenamed("_row", "_i")), "_item"))
    out = rated.select((F.col("_u") % blocks).cast("int").alias("ub"), (F.col("_i") % blocks).cast("int").alias("ib"),
                       (F.col("_u") / blocks).cast("int").alias("lu"), (F.col("_i") / blocks).cast("int").alias("li"),
                       F.col("r"))
    if not persist:
        return out
    out = out.repartition(blocks, "ub").persist()
    out.count()
    return out


def _write_block_files(ratings, blocks, token):
    """Every block's sorted ratings into its file, on the machine of the task that holds it (one
    pass over the ratings, before the first epoch: hashed to p × p partitions by block, no sort
    in Spark). Returns the training pairs as the driver's (user rows, item rows), int32, which
    the tasks send back as one binary row per block (the fitted model's seen items)."""
    def write(frames):
        parts = [f for f in frames if len(f)]
        if not parts:
            return
        for (ub, ib), block in pd.concat(parts, ignore_index=True).groupby(["ub", "ib"], sort=True):
            lu, li, r = _sorted_block(block)
            _write_block_file(_block_path(token, int(ub), int(ib)), lu, li, r)
            yield pd.DataFrame({"ub": [int(ub)], "ib": [int(ib)], "lu": [lu.tobytes()], "li": [li.tobytes()]})

    written = (ratings.repartition(blocks * blocks, "ub", "ib")
               .mapInPandas(write, schema="ub int, ib int, lu binary, li binary").toPandas())
    user_rows, item_rows = [], []
    for row in written.sort_values(["ub", "ib"]).itertuples(index=False):
        user_rows.append(np.frombuffer(row.lu, dtype=np.int32).astype(np.int64) * blocks + int(row.ub))
        item_rows.append(np.frombuffer(row.li, dtype=np.int32).astype(np.int64) * blocks + int(row.ib))
    if not user_rows:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.concatenate(user_rows).astype(np.int32), np.concatenate(item_rows).astype(np.int32)


def _block_path(token, ub, ib):
    return os.path.join(_block_folder(token), f"{ub}-{ib}.npz")


def _sorted_block(ratings):
    """A block's ratings as int32 user and item rows and float32 ratings, sorted (so that the
    order Spark delivers them in never matters)."""
    lu = ratings["lu"].to_numpy(np.int64)
    li = ratings["li"].to_numpy(np.int64)
    r = ratings["r"].to_numpy(np.float32)
    order = np.lexsort((r, li, lu))
    return lu[order].astype(np.int32), li[order].astype(np.int32), r[order]


def _write_block_file(path, lu, li, r):
    """Writes a block file once: to a temporary name, then renamed, so a reader sees all of it or
    nothing."""
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    with open(partial, "wb") as out:
        np.savez(out, lu=lu, li=li, r=r)
    os.replace(partial, path)


def _raw_global_bias(mean, p):
    """The raw global term a local fit starts from (the core's rule): the mean, or its logit on
    the y_range scale; 0 without a global term."""
    if not p["global_bias"]:
        return 0.0
    if p["y_range"] is None:
        return float(np.float32(mean))
    lo, hi = p["y_range"]
    t = min(max((mean - lo) / (hi - lo), 1e-3), 1 - 1e-3)
    return float(np.float32(np.log(t / (1 - t))))


def _block_seed(seed, epoch, s, b):
    digest = hashlib.sha256(f"{seed}/{epoch}/{s}/{b}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _sub_epoch(spark, ratings, P, bu, Q, bi, g, p, blocks, s, epoch, F, T, timing, token=None):
    """One stratum: the p blocks (b, (b + s) mod p) trained at once; the driver's factor
    arrays updated with what the tasks return. Returns the sums of squared and absolute errors;
    ``timing`` gets the slowest task's seconds in the core (``core``) and in all (``task``).

    With block files (``token``) the tasks get the factor blocks alone and read their ratings
    from the files (see the module doc); blocks whose file a task did not find go through the
    cogroup with the ratings."""
    k = p["n_factors"]
    rows = []
    for b in range(blocks):
        c = (b + s) % blocks
        rows.append({"ub": b, "uf": P[b::blocks].tobytes(), "ubias": bu[b::blocks].tobytes(),
                     "itf": Q[c::blocks].tobytes(), "ibias": bi[c::blocks].tobytes(),
                     "seed": str(_block_seed(p["seed"], epoch, s, b)), "ib": c})
    schema = T.StructType([T.StructField("ub", T.IntegerType()), T.StructField("uf", T.BinaryType()),
                           T.StructField("ubias", T.BinaryType()), T.StructField("itf", T.BinaryType()),
                           T.StructField("ibias", T.BinaryType()), T.StructField("seed", T.StringType()),
                           T.StructField("ib", T.IntegerType())])
    options = {"k": k, "biases": p["biases"], "non_negative": p["non_negative"], "y_range": p["y_range"],
               "global_bias": g, "lr": p["lr"], "weight_decay": p["weight_decay"], "dropout": p["dropout"],
               "threads": _task_threads(spark), "fail_marker": FAIL_ONCE_MARKER, "token": token}
    out_schema = ("ub int, uf binary, ubias binary, itf binary, ibias binary, loss double, abs double, "
                  "core_s double, task_s double, missing boolean")
    frame = pd.DataFrame(rows)
    pending = list(range(blocks))
    results = []
    if token is not None:
        factor_blocks = spark.createDataFrame(frame, schema=schema)
        trained = (factor_blocks.groupBy("ub").applyInPandas(_block_trainer(options, from_files=True), schema=out_schema)
                   .toPandas())
        done = trained[~trained["missing"]]
        results.append(done)
        timing["from_files"] = len(done)
        pending = sorted(set(pending) - set(int(b) for b in done["ub"]))
    if pending:
        factor_blocks = spark.createDataFrame(frame[frame["ub"].isin(pending)], schema=schema)
        stratum = ratings.where((F.col("ib") == (F.col("ub") + s) % blocks) & F.col("ub").isin(pending))
        results.append(stratum.groupBy("ub").cogroup(factor_blocks.groupBy("ub"))
                       .applyInPandas(_block_trainer(options), schema=out_schema).toPandas())
    trained = pd.concat(results, ignore_index=True)
    loss = absolute = 0.0
    for row in trained.sort_values("ub").itertuples(index=False):
        b = int(row.ub)
        c = (b + s) % blocks
        P[b::blocks] = np.frombuffer(row.uf, dtype=np.float32).reshape(-1, k)
        bu[b::blocks] = np.frombuffer(row.ubias, dtype=np.float32)
        Q[c::blocks] = np.frombuffer(row.itf, dtype=np.float32).reshape(-1, k)
        bi[c::blocks] = np.frombuffer(row.ibias, dtype=np.float32)
        loss += row.loss
        absolute += row.abs
        timing["core"] = max(timing.get("core", 0.0), row.core_s)  # the slowest task sets the pace
        timing["task"] = max(timing.get("task", 0.0), row.task_s)
    return loss, absolute


def _block_folder(token):
    """Where a machine keeps the block files of the fit ``token``."""
    return os.path.join(tempfile.gettempdir(), f"embedrec-spark-{token}")


def _remove_block_files(spark, token):
    """Best effort: removes the fit's block files on the machines a small job's tasks reach
    (every machine of a local or single-host cluster)."""
    def remove(frames):
        for frame in frames:
            shutil.rmtree(_block_folder(token), ignore_errors=True)
            yield frame.iloc[:0]

    try:
        shutil.rmtree(_block_folder(token), ignore_errors=True)
        n = max(2, default_blocks(spark))
        spark.range(n).repartition(n).mapInPandas(remove, schema="id long").count()
    except Exception:  # cleaning up must never turn a finished fit into an error
        pass


def _task_threads(spark):
    try:
        return max(1, int(spark.conf.get("spark.task.cpus", "1")))
    except Exception:
        return 1


def _block_trainer(options, from_files=False):
    """The function each task runs on one block: its ratings (sorted, so that the order Spark
    delivers them in never matters) and its factor blocks, through the core. The sorted ratings
    are written to the block's file; ``from_files``: the task gets the factor blocks alone and
    reads the ratings from that file (``missing`` when this machine has none)."""

    def block_file(f):
        token = options["token"]
        return None if token is None else _block_path(token, int(f["ub"]), int(f["ib"]))

    def arrays(ratings, f):
        """The block's (users, items, ratings) sorted, and written to its file when new."""
        lu, li, r = _sorted_block(ratings)
        path = block_file(f)
        if path is not None:
            _write_block_file(path, lu, li, r)
        return lu, li, r

    def train_block(f, lu, li, r, started):
        k = options["k"]
        uf = np.frombuffer(f["uf"], dtype=np.float32).copy()
        ub = np.frombuffer(f["ubias"], dtype=np.float32).copy()
        itf = np.frombuffer(f["itf"], dtype=np.float32).copy()
        ib = np.frombuffer(f["ibias"], dtype=np.float32).copy()
        loss = absolute = 0.0
        core_seconds = 0.0
        if len(r):
            dropout = options["dropout"]
            dropout = dropout if isinstance(dropout, (tuple, list)) else (dropout, dropout)
            in_core = time.perf_counter()
            loss, absolute = sgd_block(lu, li, r, uf, ub, itf, ib, k, options["biases"], options["non_negative"],
                                       options["y_range"], options["global_bias"], options["lr"],
                                       options["weight_decay"], dropout, options["threads"], int(f["seed"]))
            core_seconds = time.perf_counter() - in_core
        return pd.DataFrame({"ub": [int(f["ub"])], "uf": [uf.tobytes()], "ubias": [ub.tobytes()],
                             "itf": [itf.tobytes()], "ibias": [ib.tobytes()], "loss": [loss], "abs": [absolute],
                             "core_s": [core_seconds], "task_s": [time.perf_counter() - started],
                             "missing": [False]})

    def fail_once():
        marker = options["fail_marker"]
        if marker and os.path.exists(marker):
            try:
                os.unlink(marker)
            except FileNotFoundError:
                pass
            else:
                raise RuntimeError("injected task failure (embedrec.spark.FAIL_ONCE_MARKER)")

    empty = ["ub", "uf", "ubias", "itf", "ibias", "loss", "abs", "core_s", "task_s", "missing"]

    def train(ratings, factors):
        fail_once()
        if len(factors) == 0:
            return pd.DataFrame(columns=empty)
        started = time.perf_counter()
        f = factors.iloc[0]
        lu, li, r = arrays(ratings, f)
        return train_block(f, lu, li, r, started)

    def train_from_file(factors):
        fail_once()
        started = time.perf_counter()
        f = factors.iloc[0]
        path = block_file(f)
        try:
            with np.load(path) as stored:
                lu, li, r = stored["lu"], stored["li"], stored["r"]
        except (OSError, KeyError, ValueError):  # not on this machine (or unreadable): the cogroup path
            out = pd.DataFrame({"ub": [int(f["ub"])], "uf": [b""], "ubias": [b""], "itf": [b""], "ibias": [b""],
                                "loss": [0.0], "abs": [0.0], "core_s": [0.0], "task_s": [0.0], "missing": [True]})
            return out
        return train_block(f, lu, li, r, started)

    return train_from_file if from_files else train


def _validation_errors(val, columns, users, items, P, bu, Q, bi, g, p, rating_range, F):
    """Validation MSE and MAE, scored on the cluster (unknown ids as ``unknown="mean"``, clipped
    as ``predict`` clips), the factors shipped with the task."""
    scorer = _Scorer(users.index, items.index, P, bu, Q, bi, g, p["y_range"], rating_range)
    u, i, r = columns

    def errors(frames):
        for frame in frames:
            pred = scorer.predict(frame[u], frame[i])
            e = frame[r].to_numpy(np.float64) - pred
            yield pd.DataFrame({"se": [float(np.dot(e, e))], "ae": [float(np.abs(e).sum())], "n": [len(e)]})

    total = val.mapInPandas(errors, schema="se double, ae double, n long").agg(
        F.sum("se").alias("se"), F.sum("ae").alias("ae"), F.sum("n").alias("n")).first()
    n = max(total["n"] or 0, 1)
    return total["se"] / n, total["ae"] / n


class _Scorer:
    """The prediction formula of MatrixFactorization in NumPy, for tasks: raw ids to rows,
    unknown ids dropped from the sum (``unknown="mean"``), clipped to the training range
    without y_range."""

    def __init__(self, user_index, item_index, P, bu, Q, bi, g, y_range, rating_range):
        self.users, self.items = pd.Index(user_index), pd.Index(item_index)
        self.P, self.bu, self.Q, self.bi = P.copy(), bu.copy(), Q.copy(), bi.copy()
        self.g, self.y_range, self.rating_range = g, y_range, rating_range

    def predict(self, users, items):
        ur = self.users.get_indexer(pd.Index(users))
        ir = self.items.get_indexer(pd.Index(items))
        raw = np.full(len(ur), self.g, dtype=np.float64)
        ku, ki = ur >= 0, ir >= 0
        raw[ku] += self.bu[ur[ku]]
        raw[ki] += self.bi[ir[ki]]
        both = ku & ki
        raw[both] += np.einsum("ij,ij->i", self.P[ur[both]].astype(np.float64), self.Q[ir[both]].astype(np.float64))
        if self.y_range is not None:
            lo, hi = self.y_range
            return lo + (hi - lo) / (1 + np.exp(-raw))
        return np.clip(raw, *self.rating_range) if self.rating_range is not None else raw


def _publish(model, core, P, bu, Q, bi, g, users, items, columns, pairs, rating_range, blocks, spec):
    """The trained factors into the driver's core, and the fitted state as a local fit leaves it
    (the training pairs, for recommend's exclude_seen: (user rows, item rows), or the blocked
    ratings to collect them from as int32 rows; ``spec`` the parameters, with the settings the
    fit chose)."""
    if isinstance(pairs, tuple):
        user_rows, item_rows = pairs
    else:
        pairs = pairs.select("ub", "ib", "lu", "li").toPandas()
        user_rows = (pairs["lu"].to_numpy(np.int64) * blocks + pairs["ub"].to_numpy(np.int64)).astype(np.int32)
        item_rows = (pairs["li"].to_numpy(np.int64) * blocks + pairs["ib"].to_numpy(np.int64)).astype(np.int32)
    core.set_array(_lib.USER_FACTORS, P)
    core.set_array(_lib.ITEM_FACTORS, Q)
    core.set_array(_lib.USER_BIAS, bu)
    core.set_array(_lib.ITEM_BIAS, bi)
    core.set_array(_lib.GLOBAL_BIAS, np.array([g], dtype=np.float32))
    model._fitted = Fitted.from_pairs(core, users, items, list(columns), user_rows, item_rows, spec, rating_range)


# ----- scoring on the cluster ------------------------------------------------------------------------
def _scorer_of(model):
    state = model._state()
    core = state.core
    spec = state.spec.params
    return _Scorer(state.users.index, state.items.index, core.embeddings(False), core.get_array(_lib.USER_BIAS),
                   core.embeddings(True), core.get_array(_lib.ITEM_BIAS),
                   float(core.get_array(_lib.GLOBAL_BIAS)[0]), spec["y_range"], state.rating_range)


def predict(model, sdf, user=None, item=None, unknown="raise"):
    """``model.predict`` on the cluster: ``sdf`` with a ``prediction`` column (float), scored by
    ``mapInPandas`` with the model's factors shipped to the tasks. Columns default to the names
    used in ``fit``. ``unknown="raise"`` fails the job on an id the model does not know (with
    UnknownIdError's message); ``"mean"`` predicts it as ``predict(..., unknown="mean")`` does."""
    _, T = _pyspark()
    if not getattr(model, "_trains_on_spark", False):
        raise InvalidArgumentError("embedrec.spark.predict scores MatrixFactorization models; score networks with "
                                   "model.predict on pandas frames")
    if unknown not in ("raise", "mean"):
        raise InvalidArgumentError(f"unknown must be 'raise' or 'mean', got {unknown!r}")
    state = model._state()
    u = user or state.columns[0]
    i = item or state.columns[1]
    for role, name in (("user", u), ("item", i)):
        if name not in sdf.columns:
            raise InvalidArgumentError(f"the frame has no {role} column {name!r}; its columns are {list(sdf.columns)!r}")
    scorer = _scorer_of(model)
    schema = T.StructType(list(sdf.schema.fields) + [T.StructField("prediction", T.FloatType())])

    def score(frames):
        for frame in frames:
            if unknown == "raise":
                for role, column, index in (("user", u, scorer.users), ("item", i, scorer.items)):
                    missing = index.get_indexer(pd.Index(frame[column])) < 0
                    if missing.any():
                        shown = ", ".join(repr(v) for v in pd.unique(frame[column][missing])[:5])
                        raise UnknownIdError(f"{role} id(s) not seen during fit: {shown}. Pass unknown='mean' to "
                                             f"predict them from the global mean and the known biases.")
            yield frame.assign(prediction=scorer.predict(frame[u], frame[i]).astype(np.float32))

    return sdf.mapInPandas(score, schema=schema)


def recommend_all(model, spark, k=10, exclude_seen=True, users=None, partitions=None):
    """``model.recommend`` for every user (or the ``users`` given) on the cluster: a Spark
    DataFrame with columns user, item, score, rank, equal to the local ``recommend``'s rows.
    Each task loads the saved model once and ranks its share of the users in the core."""
    _pyspark()
    state = model._state()
    check_int("k", k, 1, 2**31 - 1)
    ids = state.users.ids if users is None else np.asarray(users, dtype=object)
    blob = model.to_bytes()
    n_parts = partitions or default_blocks(spark)
    frame = spark.createDataFrame(pd.DataFrame({"user": ids}))
    frame = frame.repartition(n_parts)
    item_type = _spark_type_of(state.items.index)
    user_type = _spark_type_of(state.users.index)
    schema = f"user {user_type}, item {item_type}, score float, rank long"

    def recommend(frames):
        local = load_bytes(blob)
        for chunk in frames:
            if len(chunk):
                out = local.recommend(chunk["user"].to_numpy(), k=k, exclude_seen=exclude_seen)
                yield out.astype({"score": np.float32, "rank": np.int64})

    return frame.mapInPandas(recommend, schema=schema)


def factors(model, spark):
    """The user and item factors as two Spark DataFrames, (user, factors, bias) and (item,
    factors, bias), factors an array of floats: for writing to the lake (``.write.parquet``;
    :func:`write_factors` writes them with the global term, for :func:`recommend_from_factors`).
    Any factor model: MatrixFactorization, ImplicitMF, BPR (zero biases where it has none)."""
    _pyspark()
    state = model._state()
    if not isinstance(state.core, CoreMF):
        raise InvalidArgumentError(f"{type(model).__name__} is not a factor model; factors() takes "
                                   f"MatrixFactorization, ImplicitMF or BPR")
    out = []
    for name, index, of_items, bias in (("user", state.users.index, False, _lib.USER_BIAS),
                                        ("item", state.items.index, True, _lib.ITEM_BIAS)):
        table = state.core.embeddings(of_items).astype(np.float32)
        out.append(spark.createDataFrame(pd.DataFrame({name: index, "factors": list(table),
                                                       "bias": state.core.get_array(bias)})))
    return out[0], out[1]


def _spark_type_of(index):
    kind = pd.api.types.infer_dtype(index, skipna=False)
    if kind == "integer":
        return "long"
    if kind == "floating":
        return "double"
    if kind == "string":
        return "string"
    raise InvalidArgumentError(f"ids of type {kind} cannot be returned from Spark; use numbers or strings as ids")


from .spark_factors import recommend_from_factors, write_factors  # noqa: E402,F401  (part of this API)
