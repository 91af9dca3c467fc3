"""Factor tables on the lake, and recommendations from them with no model on the driver.

For catalogues whose factors should not pass through one machine: :func:`write_factors` writes
a fitted factor model (MatrixFactorization, ImplicitMF, BPR) as three Parquet tables under one
path, and :func:`recommend_from_factors` ranks every user's items from those tables on the
cluster alone:

- ``path/users``: user, factors (array of float), bias
- ``path/items``: item, factors, bias
- ``path/model``: one row: global_bias, y_lo, y_hi (null without y_range), n_factors, model

Tables of the same layout made another way (by a pipeline, or by a later training job) work
the same. Users and items are hashed into ``num_blocks`` blocks each; each of the
``num_blocks`` × ``num_blocks`` (user block, item block) pairs is one task that scores its
users against its items in the core (the same scores as ``recommend``) and keeps each user's
best ``k``; a window over the users then keeps the best ``k`` over all item blocks. Each task
holds one user block and one item block, never the whole catalogue; each factor row is sent to
``num_blocks`` tasks.
"""

import numpy as np
import pandas as pd

from . import _lib
from ._checks import check_int
from ._core import CoreMF
from .errors import InvalidArgumentError


def write_factors(model, spark, path, mode="overwrite"):
    """Writes ``model``'s factor tables as Parquet under ``path`` (``users``, ``items``,
    ``model``; see this module's doc) through ``spark``. ``mode`` as Spark's writer's."""
    from .spark import factors

    state = model._state()
    user_table, item_table = factors(model, spark)
    y_range = getattr(state.spec, "y_range", None)
    meta = pd.DataFrame({"global_bias": [float(state.core.get_array(_lib.GLOBAL_BIAS)[0])],
                         "y_lo": [float(y_range[0]) if y_range is not None else None],
                         "y_hi": [float(y_range[1]) if y_range is not None else None],
                         "n_factors": [int(state.core.shape()[2])], "model": [type(model).__name__]})
    user_table.write.mode(mode).parquet(f"{path}/users")
    item_table.write.mode(mode).parquet(f"{path}/items")
    spark.createDataFrame(meta, schema="global_bias double, y_lo double, y_hi double, n_factors long, "
                                       "model string").write.mode(mode).parquet(f"{path}/model")


def recommend_from_factors(spark, path, k=10, seen=None, num_blocks=None, user="user", item="item"):
    """The top ``k`` items of every user in the factor tables under ``path`` (as
    :func:`write_factors` writes them), computed on the cluster: a Spark DataFrame with columns
    user, item, score, rank, as ``recommend_all`` (scores on the rating scale; ties in score
    ranked by item id).

    ``seen``: a Spark DataFrame of (user, item) pairs to leave out, as ``exclude_seen`` does
    (the training pairs), with columns named by ``user`` and ``item``; None: rank every item.
    ``num_blocks``: blocks per side (default: the cluster's parallelism)."""
    from pyspark.sql import Window, functions as F

    from .spark import default_blocks

    check_int("k", k, 1, 2**31 - 1)
    blocks = num_blocks if num_blocks is not None else default_blocks(spark)
    check_int("num_blocks", blocks, 1, 100_000)
    users = spark.read.parquet(f"{path}/users")
    items = spark.read.parquet(f"{path}/items")
    meta = spark.read.parquet(f"{path}/model").first()
    if meta is None or users.columns[1:] != ["factors", "bias"] or items.columns[1:] != ["factors", "bias"]:
        raise InvalidArgumentError(f"{path} does not hold factor tables as write_factors writes them (users, items "
                                   f"and model, each with id, factors, bias)")
    user_id, item_id = users.columns[0], items.columns[0]
    user_type = users.schema[user_id].dataType.simpleString()
    item_type = items.schema[item_id].dataType.simpleString()
    if seen is not None:
        for role, name in (("user", user), ("item", item)):
            if name not in seen.columns:
                raise InvalidArgumentError(f"seen has no {role} column {name!r}; its columns are {seen.columns!r}")
        pairs = seen.select(F.col(user).alias(user_id), F.col(item).alias("_seen_item"))
        users = users.join(pairs.groupBy(user_id).agg(F.collect_list("_seen_item").alias("_seen")), user_id, "left")
    else:
        users = users.withColumn("_seen", F.lit(None).cast(f"array<{item_type}>"))
    # Both sides' keys of one type (int): cogroup pairs groups by equal keys, and a long and an
    # int key of the same value are not equal groups.
    every_block = F.explode(F.array(*[F.lit(b).cast("int") for b in range(blocks)]))
    block_of = lambda column: F.pmod(F.xxhash64(column), F.lit(blocks)).cast("int")  # noqa: E731
    users = users.withColumn("_ub", block_of(user_id)).withColumn("_ib", every_block)
    items = items.withColumn("_ib", block_of(item_id)).withColumn("_ub", every_block)
    y_range = (meta["y_lo"], meta["y_hi"]) if meta["y_lo"] is not None else None
    score_block = _block_scorer(k, float(meta["global_bias"]), y_range, int(meta["n_factors"]), user_id, item_id)
    schema = f"user {user_type}, item {item_type}, score float"
    best = users.groupBy("_ub", "_ib").cogroup(items.groupBy("_ub", "_ib")).applyInPandas(score_block, schema=schema)
    order = Window.partitionBy("user").orderBy(F.desc("score"), F.asc("item"))
    return best.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= k)


def _block_scorer(k, global_bias, y_range, n_factors, user_id, item_id):
    """The task of one (user block, item block) pair: each user's best k of the block's items."""

    def score_block(left, right):
        empty = pd.DataFrame({"user": left[user_id].iloc[:0], "item": right[item_id].iloc[:0],
                              "score": np.zeros(0, dtype=np.float32)})
        if not len(left) or not len(right):
            return empty
        P = np.stack(left["factors"].to_numpy()).astype(np.float32).reshape(len(left), n_factors)
        Q = np.stack(right["factors"].to_numpy()).astype(np.float32).reshape(len(right), n_factors)
        core = CoreMF(len(P), len(Q), n_factors, True, False, y_range, 0.0, 0)
        core.set_array(_lib.USER_FACTORS, P)
        core.set_array(_lib.ITEM_FACTORS, Q)
        core.set_array(_lib.USER_BIAS, left["bias"].to_numpy(dtype=np.float32))
        core.set_array(_lib.ITEM_BIAS, right["bias"].to_numpy(dtype=np.float32))
        core.set_array(_lib.GLOBAL_BIAS, np.array([global_bias], dtype=np.float32))
        row_of_item = pd.Index(right[item_id])
        indptr = np.zeros(len(left) + 1, dtype=np.int64)
        seen_rows = []
        for u, listed in enumerate(left["_seen"]):
            rows = row_of_item.get_indexer(listed) if listed is not None and len(listed) else np.empty(0, np.int64)
            rows = rows[rows >= 0]
            seen_rows.append(rows)
            indptr[u + 1] = indptr[u] + rows.size
        seen = (indptr, np.concatenate(seen_rows).astype(np.int32) if seen_rows else np.empty(0, np.int32))
        top_rows, top_scores = core.recommend(np.arange(len(P), dtype=np.int32), min(k, len(Q)), None, seen)
        core.close()
        keep = top_rows >= 0
        owner = np.repeat(np.arange(len(P)), top_rows.shape[1]).reshape(top_rows.shape)[keep]
        return pd.DataFrame({"user": left[user_id].to_numpy()[owner], "item": right[item_id].to_numpy()[top_rows[keep]],
                             "score": top_scores[keep].astype(np.float32)})

    return score_block
