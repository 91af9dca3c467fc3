"""User and item features: from a feature frame to the parameter rows an entity is made of.

A hybrid model (LightFM's) gives every user (item) a vector and a bias that are weighted sums
of parameter rows: its own id's row, and one row per feature it has. This module turns a
feature frame into those (entity, row, weight) pairs; the core trains the rows
(``Composition`` in ``Sources/EmbedrecCore/MF``). Each column is one of four kinds, inferred
from its values unless ``feature_kinds`` says otherwise:

- ``"categorical"`` (strings, booleans, pandas categoricals): one row per category, weight 1.
  A value not seen at fit (in ``add_items``) and a missing value have no row.
- ``"multi"`` (lists, tuples or sets of categories, or strings with ``|`` separators such as
  MovieLens' genres): one row per category, weight 1 / (number of the entity's known
  categories): the mean of their rows.
- ``"numeric"`` (numbers): a learned linear term: one bias-only row (its vector stays zero),
  weight the value standardised by the fit frame's mean and standard deviation (0, i.e. no
  pair, for a missing value). A number that should shape the vector too (a price band, a
  decade) is better given as a category.
- ``"vector"`` (a column of equal-length arrays of numbers: text or image embeddings made
  elsewhere): one row per dimension, each standardised and scaled by 1 / sqrt(dimension), so the
  whole block weighs about as much as one numeric column.

``feature_kinds={"column": None}`` leaves a column out; ``feature_kinds={("e0", ..., "e63"):
"vector"}`` makes a block of numeric columns one dense vector (named ``"e0..e63"``). A text column with a distinct value in
nearly every row (a title) is left out with a warning unless named in ``feature_kinds``: as a
category it would be a second id, which cannot help an entity nobody rated.
"""

import warnings

import numpy as np
import pandas as pd

from . import persistence
from ._frame import USUAL_NAMES, _normalised
from .errors import InvalidArgumentError, ModelBusyError

KINDS = ("categorical", "multi", "numeric", "vector")
#: A string column whose share of distinct values passes this (over more than MIN_ROWS rows)
#: looks like a name or title rather than a category.
KEY_LIKE_SHARE = 0.5
KEY_LIKE_MIN_ROWS = 20


class _Column:
    """How one column becomes rows and weights: its kind and what fit learned (categories,
    mean and scale, dimension)."""

    def __init__(self, name, kind, categories=None, mean=None, scale=None):
        self.name, self.kind = name, kind
        self.categories = categories  # pd.Index, for categorical and multi
        self.mean, self.scale = mean, scale  # float64 arrays (1 for numeric, d for vector)

    @property
    def n_rows(self):
        return len(self.categories) if self.kind in ("categorical", "multi") else len(self.mean)

    def labels(self):
        if self.kind in ("categorical", "multi"):
            return [f"{self.name}={_plain(v)}" for v in self.categories]
        if self.kind == "numeric":
            return [str(self.name)]
        return [f"{self.name}[{j}]" for j in range(len(self.mean))]

    @classmethod
    def fit(cls, name, values, kind):
        if kind == "categorical":
            if isinstance(values.dtype, pd.CategoricalDtype):  # from its codes: no object per row
                codes = values.cat.codes.to_numpy()
                used = np.unique(codes[codes >= 0])
                return cls(name, kind, categories=_sorted_index(values.cat.categories[used].to_numpy(dtype=object)))
            present = values[values.notna()]
            return cls(name, kind, categories=_sorted_index(pd.unique(present.to_numpy(dtype=object))))
        if kind == "multi":
            lists = _lists(values, name)
            flat = [v for row in lists for v in row]
            return cls(name, kind, categories=_sorted_index(pd.unique(np.asarray(flat, dtype=object)) if flat else []))
        if kind == "numeric":
            x = _numbers(values, name)[:, None]
        else:
            x = _vectors(values, name)
        mean = np.nanmean(x, axis=0) if np.isfinite(x).any() else np.zeros(x.shape[1])
        std = np.nanstd(x, axis=0) if np.isfinite(x).any() else np.ones(x.shape[1])
        mean = np.nan_to_num(mean)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        scale = 1.0 / std / (np.sqrt(x.shape[1]) if kind == "vector" else 1.0)
        return cls(name, kind, mean=mean, scale=scale)

    def pairs(self, values):
        """(position in ``values``, row of this column, weight) for every pair ``values`` make."""
        n = len(values)
        if self.kind == "categorical":
            if isinstance(values.dtype, pd.CategoricalDtype):
                codes = values.cat.codes.to_numpy()
                lookup = self.categories.get_indexer(values.cat.categories.to_numpy(dtype=object))
                rows = np.where(codes >= 0, lookup[codes], -1) if lookup.size else np.full(n, -1)
            else:
                rows = self.categories.get_indexer(values.to_numpy(dtype=object))
            keep = np.flatnonzero(rows >= 0)
            return keep, rows[keep], np.ones(keep.size, np.float32)
        if self.kind == "multi":
            lists = _lists(values, self.name)
            positions, rows = [], []
            for p, row in enumerate(lists):
                if row:
                    found = self.categories.get_indexer(pd.Index(np.asarray(row, dtype=object)))
                    found = np.unique(found[found >= 0])
                    positions.append(np.full(found.size, p))
                    rows.append(found)
            if not rows:
                return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
            positions, rows = np.concatenate(positions), np.concatenate(rows)
            counts = np.bincount(positions, minlength=n)
            return positions, rows, 1.0 / counts[positions]
        x = _numbers(values, self.name)[:, None] if self.kind == "numeric" else _vectors(values, self.name, len(self.mean))
        w = (x - self.mean) * self.scale
        position, row = np.nonzero(np.isfinite(w) & (w != 0))
        return position, row, w[position, row]

    def saved(self):
        spec = {"name": persistence.encode_label(self.name), "kind": self.kind}
        if self.categories is None:
            spec["mean"], spec["scale"] = [float(v) for v in self.mean], [float(v) for v in self.scale]
        return spec

    @classmethod
    def from_saved(cls, spec, categories):
        kind = spec["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown feature kind {kind!r}")
        name = persistence.decode_label(spec["name"])
        if kind in ("categorical", "multi"):
            return cls(name, kind, categories=categories)
        mean, scale = np.asarray(spec["mean"], dtype=np.float64), np.asarray(spec["scale"], dtype=np.float64)
        if mean.shape != scale.shape or mean.ndim != 1 or mean.size < 1:
            raise ValueError(f"feature column {name!r} has inconsistent scaling")
        return cls(name, kind, mean=mean, scale=scale)


class FeatureSet:
    """What ``fit`` learned from one side's feature frame: its columns' encoders, and the
    labels of the feature rows (``names``), in row order."""

    def __init__(self, what, columns, blocks=None):
        self.what, self.columns = what, columns
        #: Vector columns made of a block of numeric columns: name -> the columns, in order.
        self.blocks = dict(blocks or {})
        offsets = np.cumsum([0] + [c.n_rows for c in columns])
        self.offsets = offsets  # first row of each column
        self.names = pd.Index([label for c in columns for label in c.labels()], dtype=object)
        #: Per feature row: True for the bias-only rows (numeric columns' linear terms).
        self.bias_only = np.array([c.kind == "numeric" for c in columns for _ in range(c.n_rows)], dtype=bool)

    @property
    def n_rows(self):
        return int(self.offsets[-1])

    @classmethod
    def fit(cls, frame, what, id_column, kinds=None):
        """Encoders for ``frame``'s feature columns; returns (FeatureSet, the frame's ids as a
        pd.Index, the feature columns as a frame aligned with them)."""
        ids, values = split_ids(frame, what, id_column)
        kinds = dict(kinds or {})
        blocks = {}
        for key, kind in list(kinds.items()):
            if isinstance(key, tuple):
                if kind != "vector":
                    raise InvalidArgumentError(f"feature_kinds: a tuple of columns {key!r} is one dense vector: its kind "
                                               f"must be 'vector', got {kind!r}")
                if all(c in values.columns for c in key):
                    name = f"{key[0]}..{key[-1]}"
                    blocks[name] = key
                    kinds[name] = "vector"
        values = _merge_blocks(values, blocks)
        columns = []
        for name in values.columns:
            if name in kinds:
                kind = kinds[name]
                if kind is None:
                    continue
                if kind not in KINDS:
                    raise InvalidArgumentError(f"feature_kinds[{name!r}] must be one of {KINDS} or None, got {kind!r}")
            else:
                kind = infer_kind(values[name], name, what)
                if kind is None:
                    continue
            columns.append(_Column.fit(name, values[name], kind))
        features = cls(what, columns, blocks)
        if features.n_rows == 0:
            raise InvalidArgumentError(f"{what}_features has no usable feature column (columns: {list(values.columns)!r})")
        return features, ids, values

    def pairs(self, values):
        """(position in ``values``, feature row, weight) of every feature pair of ``values``'s rows."""
        values = _merge_blocks(values, {name: cols for name, cols in self.blocks.items()
                                        if name not in values.columns})
        parts = [c.pairs(values[c.name]) for c in self.columns if c.name in values.columns]
        missing = [c.name for c in self.columns if c.name not in values.columns]
        if missing:
            raise InvalidArgumentError(f"the {self.what} features lack the column(s) {missing!r} the model was fitted with")
        # Written into arrays of the final size and type (no concatenated copies beside them:
        # with a large catalogue these pairs are the biggest thing encoding makes).
        total = sum(len(p) for p, _, _ in parts)
        positions, rows, weights = np.empty(total, np.int64), np.empty(total, np.int32), np.empty(total, np.float32)
        at = 0
        for (p, r, w), offset in zip(parts, self.offsets):
            end = at + len(p)
            positions[at:end] = p
            np.add(r, offset, out=rows[at:end], casting="unsafe")
            weights[at:end] = w
            at = end
        return positions, rows, weights

    def saved(self):
        """(header entry, id-like tables): the categories are stored as id tables (any id type)."""
        tables = {}
        for j, c in enumerate(self.columns):
            if c.categories is not None:
                tables[f"features.{self.what}.{j}"] = c.categories
        specs = [c.saved() for c in self.columns]
        for spec, c in zip(specs, self.columns):
            if c.name in self.blocks:
                spec["block"] = [persistence.encode_label(v) for v in self.blocks[c.name]]
        return specs, tables

    @classmethod
    def from_saved(cls, what, specs, ids):
        columns = [_Column.from_saved(spec, ids.get(f"features.{what}.{j}")) for j, spec in enumerate(specs)]
        for c in columns:
            if c.kind in ("categorical", "multi") and c.categories is None:
                raise ValueError(f"the categories of feature column {c.name!r} are missing")
        blocks = {c.name: tuple(persistence.decode_label(v) for v in spec["block"])
                  for c, spec in zip(columns, specs) if "block" in spec}
        return cls(what, columns, blocks)


class Composition:
    """One side's entities as CSR over parameter rows: entity e is rows[indptr[e]:indptr[e+1]]
    with their weights. Parameter rows: ``n_id_rows`` id rows first (those of the entities
    fitted), then the feature rows, then id rows added later (``extra_id_rows``)."""

    def __init__(self, indptr, rows, weights, n_id_rows, n_feature_rows, extra_id_rows=0, feature_bias_only=None):
        self.indptr, self.rows, self.weights = indptr, rows, weights
        self.n_id_rows, self.n_feature_rows, self.extra_id_rows = n_id_rows, n_feature_rows, extra_id_rows
        self.feature_bias_only = (np.zeros(n_feature_rows, dtype=bool) if feature_bias_only is None
                                  else np.asarray(feature_bias_only, dtype=bool))

    @property
    def bias_only(self):
        """Per parameter row: True for the bias-only rows."""
        mask = np.zeros(self.n_rows, dtype=bool)
        mask[self.n_id_rows:self.n_id_rows + self.n_feature_rows] = self.feature_bias_only
        return mask

    @property
    def row_kinds(self):
        """Per parameter row, its kind for the core: id, feature or bias-only."""
        from ._lib import ROW_BIAS_ONLY, ROW_FEATURE, ROW_ID

        kinds = np.full(self.n_rows, ROW_ID, dtype=np.uint8)
        kinds[self.n_id_rows:self.n_id_rows + self.n_feature_rows] = np.where(self.feature_bias_only, ROW_BIAS_ONLY,
                                                                              ROW_FEATURE)
        return kinds

    @property
    def n_entities(self):
        return len(self.indptr) - 1

    @property
    def n_rows(self):
        return self.n_id_rows + self.n_feature_rows + self.extra_id_rows

    @classmethod
    def build(cls, n_entities, id_rows, feature_pairs, n_id_rows, n_feature_rows, extra_id_rows=0,
              feature_bias_only=None):
        """From each entity's id row (``id_rows[e]``, -1 for none) and feature pairs
        (entity, feature row, weight): the id row first, then the features in row order."""
        entities, frows, fweights = feature_pairs
        # Every temporary here is one array of the final type (int32: the core's limit on rows
        # and entities), written in place: with a large catalogue these pairs are the biggest
        # thing features add, and freed temporaries stay in the process's memory.
        has_id = id_rows >= 0
        n_ids = int(has_id.sum())
        total = n_ids + len(entities)
        e, r, w = np.empty(total, np.int32), np.empty(total, np.int32), np.empty(total, np.float32)
        e[:n_ids] = np.flatnonzero(has_id)
        e[n_ids:] = entities
        r[:n_ids] = id_rows[has_id]
        np.add(frows, n_id_rows, out=r[n_ids:], casting="unsafe")
        w[:n_ids] = 1
        w[n_ids:] = fweights
        order = np.lexsort((r, e))
        indptr = np.zeros(n_entities + 1, dtype=np.int64)
        np.cumsum(np.bincount(e, minlength=n_entities), out=indptr[1:])
        del e
        rows = r[order]
        del r
        return cls(indptr, rows, w[order], n_id_rows, n_feature_rows, extra_id_rows, feature_bias_only)

    def entity_pairs(self):
        """(entity, row, weight) of every pair."""
        return np.repeat(np.arange(self.n_entities), np.diff(self.indptr)), self.rows, self.weights

    def feature_matrix(self):
        """The entities' features as a dense float32 matrix (n_entities x n_feature_rows; the
        weights of the table in this module's doc)."""
        e, r, w = self.feature_part().entity_pairs()
        out = np.zeros((self.n_entities, self.n_feature_rows), dtype=np.float32)
        out[e, r - self.n_id_rows] = w
        return out

    def feature_part(self):
        """This composition without its id rows: what the entities' features alone make."""
        e, r, w = self.entity_pairs()
        keep = (r >= self.n_id_rows) & (r < self.n_id_rows + self.n_feature_rows)
        return self.with_pairs(self.n_entities, e[keep], r[keep], w[keep])

    def with_pairs(self, n_entities, e, r, w):
        """A composition of the same rows over ``n_entities`` entities, from (entity, row,
        weight) pairs in any order."""
        order = np.lexsort((r, e))
        indptr = np.zeros(n_entities + 1, dtype=np.int64)
        np.cumsum(np.bincount(np.asarray(e, dtype=np.int64), minlength=n_entities), out=indptr[1:])
        return Composition(indptr, np.asarray(r, dtype=np.int32)[order], np.asarray(w, dtype=np.float32)[order],
                           self.n_id_rows, self.n_feature_rows, self.extra_id_rows, self.feature_bias_only)

    def replaced(self, n_entities, entities, feature_pairs):
        """This composition grown to ``n_entities`` entities, with the feature pairs of
        ``entities`` (rows of ``feature_pairs``: (index into ``entities``, feature row, weight))
        replacing theirs; the id rows stay as they are."""
        e, r, w = self.entity_pairs()
        is_feature = (r >= self.n_id_rows) & (r < self.n_id_rows + self.n_feature_rows)
        drop = is_feature & np.isin(e, entities)
        positions, frows, fweights = feature_pairs
        return self.with_pairs(n_entities, np.concatenate([e[~drop], np.asarray(entities)[positions]]),
                               np.concatenate([r[~drop], frows + self.n_id_rows]),
                               np.concatenate([w[~drop], fweights]))

    def appended(self, other):
        """This composition followed by ``other``'s entities (same rows)."""
        indptr = np.concatenate([self.indptr, other.indptr[1:] + self.indptr[-1]])
        return Composition(indptr, np.concatenate([self.rows, other.rows]),
                           np.concatenate([self.weights, other.weights]), self.n_id_rows, self.n_feature_rows,
                           max(self.extra_id_rows, other.extra_id_rows), self.feature_bias_only)


class SideFeatures:
    """One side's feature encoders and its entities' composition."""

    def __init__(self, features, composition):
        self.features, self.composition = features, composition


class FeaturePlan:
    """The feature frames of one ``fit``: per side (None when it has no features) the encoders
    learned from the frame, its ids and its feature columns. ``build`` encodes the columns into
    feature pairs and lays out the parameter rows once the id maps are known."""

    def __init__(self, sides, use_ids):
        self.sides = sides  # {"user": (FeatureSet, ids, feature columns) or None, "item": ...}
        self.use_ids = use_ids

    @classmethod
    def fit(cls, user_features, item_features, columns, kinds, use_ids):
        if kinds is not None and not isinstance(kinds, dict):
            raise InvalidArgumentError(f"feature_kinds must be a dict of column name to kind ({KINDS} or None), "
                                       f"got {kinds!r}")
        kinds = dict(kinds or {})
        sides, seen_columns = {}, set()
        for what, frame, id_column in (("user", user_features, columns[0]), ("item", item_features, columns[1])):
            if frame is None:
                sides[what] = None
                continue
            features, ids, values = FeatureSet.fit(frame, what, id_column, kinds)
            seen_columns.update(values.columns)
            seen_columns.update(tuple(cols) for cols in features.blocks.values())
            sides[what] = (features, ids, values)  # encoded into pairs by build, once the ratings are loaded
        unknown = [k for k in kinds if k not in seen_columns]
        if unknown:
            raise InvalidArgumentError(f"feature_kinds names column(s) {unknown!r} that no feature frame has")
        return cls(sides, use_ids)

    def ids(self, what):
        """The raw ids of ``what``'s feature frame (None without one): the ids a fit must know
        beside those of the ratings (cold-start entities)."""
        side = self.sides[what]
        return side[1] if side is not None else None

    def build(self, what, id_map, n_rated):
        """The SideFeatures of ``what`` once its id map is known (the first ``n_rated`` rows
        have ratings), or None for a side without features."""
        side = self.sides[what]
        if side is None:
            return None
        features, ids, values = side
        # Encoded here rather than in fit: the pairs' temporary arrays then reuse what loading the
        # ratings freed instead of raising the fit's peak. Built once; the frame is let go.
        positions, rows, weights = features.pairs(values)
        self.sides[what] = (features, ids, None)
        entity = id_map.index.get_indexer(ids).astype(np.int32)
        n = len(id_map)
        id_rows = np.arange(n, dtype=np.int32) if self.use_ids else np.full(n, -1, dtype=np.int32)
        if self.use_ids:
            id_rows[n_rated:] = -1  # entities known only from the frame have no ratings: no id row
        n_id_rows = n_rated if self.use_ids else 0
        composition = Composition.build(n, id_rows, (entity[positions], rows, weights), n_id_rows, features.n_rows,
                                        feature_bias_only=features.bias_only)
        if not self.use_ids:
            bare = int((np.diff(composition.indptr) == 0).sum())
            if bare:
                warnings.warn(f"{bare} {what}(s) have no features and use_ids=False: the model knows nothing of them "
                              f"but the global term (give every {what} a row of {what}_features, or use_ids=True)",
                              stacklevel=5)
        return SideFeatures(features, composition)


class FittedFeatures:
    """What a hybrid fit keeps beside the model every query reads: per side the SideFeatures
    (None for a plain side) and the core of parameter rows (``rows_core``; None for a network,
    whose features are fixed input nodes of its graph). ``fill_unrated`` (networks): a
    callable that sets the id rows of entities without ratings in a network core."""

    def __init__(self, users, items, rows_core, use_ids, fill_unrated=None):
        self.users, self.items, self.rows_core, self.use_ids = users, items, rows_core, use_ids
        self.fill_unrated = fill_unrated
        # The compositions handed to the core, and the model ``compose`` last made from
        # ``rows_core``: composing again overwrites it instead of allocating a second copy.
        self._core_compositions = None
        self._composed = None

    def side(self, what):
        return self.users if what == "user" else self.items

    def with_user_features(self, n_users, rows, feature_pairs, re_estimated):
        """After ``fold_in``: the user composition grown to ``n_users``, with the users at
        ``rows`` given the feature pairs ``feature_pairs`` (index into ``rows``, feature row,
        weight) when there are any (a user folded in without features keeps the ones it had,
        or none). The users at ``re_estimated`` lose their id rows: what their ratings add is
        now in the composed model alone (``id_embeddings`` reads it from there)."""
        c = self.users.composition
        if feature_pairs is None:
            feature_pairs = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
            rows = rows[:0]
        grown = c.replaced(n_users, rows, feature_pairs)
        if len(re_estimated):
            e, r, w = grown.entity_pairs()
            stale = ((r < c.n_id_rows) | (r >= c.n_id_rows + c.n_feature_rows)) & np.isin(e, re_estimated)
            grown = grown.with_pairs(n_users, e[~stale], r[~stale], w[~stale])
        return FittedFeatures(SideFeatures(self.users.features, grown), self.items, self.rows_core, self.use_ids,
                              self.fill_unrated)

    def core_compositions(self):
        from ._core import CoreComposition

        if self._core_compositions is None:
            self._core_compositions = tuple(CoreComposition(s.composition) if s is not None else None
                                            for s in (self.users, self.items))
        return self._core_compositions

    def compose(self, rows_core=None):
        """The model of users and items the parameter rows make up; a network's core as it is
        (its features are fixed input nodes, ``rows_core`` None).

        The first call makes a new core; later ones overwrite that core in place (under the
        core's write lock, as a training epoch updates an id-only model): a fit composes at its
        start, after validated epochs and at its end, and two copies of the composed tables
        side by side would be the largest thing features add to its peak memory."""
        if self.rows_core is None:
            if self.fill_unrated is not None:
                self.fill_unrated(rows_core)
            return rows_core
        source = rows_core or self.rows_core
        users, items = self.core_compositions()
        if self._composed is not None and source is self.rows_core:
            try:
                source.compose_into(users, items, self._composed)
                return self._composed
            except ModelBusyError:  # a reader kept it past the writer's patience: a new copy then
                pass
        composed = source.composed(users, items)
        if source is self.rows_core:
            self._composed = composed
        return composed

    def feature_matrix(self, what):
        """``what``'s ``Composition.feature_matrix``: a network's fixed input."""
        return self.side(what).composition.feature_matrix()


def split_ids(frame, what, id_column):
    """The raw ids of a feature frame and its feature columns: the ids are the column named as
    the ratings' id column (or with one of the usual names of a {what} id), else the index."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidArgumentError(f"{what}_features must be a pandas DataFrame, got {type(frame).__name__}")
    if frame.columns.has_duplicates:
        raise InvalidArgumentError(f"{what}_features has repeated column names")
    named = None
    if id_column is not None and id_column in frame.columns:
        named = id_column
    else:
        for column in frame.columns:
            if _normalised(column) in USUAL_NAMES[what]:
                named = column
                break
    if named is not None:
        ids = pd.Index(frame[named].to_numpy())
        values = frame.drop(columns=[named])
    else:
        index = frame.index
        if isinstance(index, pd.RangeIndex) and index.name is None:
            raise InvalidArgumentError(
                f"{what}_features needs the {what} ids: as its index (e.g. frame.set_index({id_column!r})) or as a "
                f"column named {id_column!r}; it has a default RangeIndex and no such column")
        ids = pd.Index(index.to_numpy())
        values = frame
    if ids.hasnans:
        raise InvalidArgumentError(f"{what}_features has missing {what} ids")
    if ids.has_duplicates:
        dup = ids[ids.duplicated()][:3].tolist()
        raise InvalidArgumentError(f"{what}_features repeats {what} ids (e.g. {dup!r}); give one row per {what}")
    return ids, values.reset_index(drop=True)


def infer_kind(values, name, what):
    """The kind of a column from its values; None (left out, with a warning) for a text column
    that looks like a name or title."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype) or dtype.kind == "b":
        return "categorical"
    if dtype.kind in "iuf":
        return "numeric"
    present = values[values.notna()]
    if present.empty:
        raise InvalidArgumentError(f"{what}_features column {name!r} has no values")
    first = present.iloc[0]
    if isinstance(first, (list, tuple, set, frozenset, np.ndarray)):
        items = list(first)
        if items and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in items) \
                and not isinstance(first, (set, frozenset)):
            return "vector"
        return "multi"
    strings = present.map(lambda v: isinstance(v, str))
    if strings.all() and present.str.contains("|", regex=False).any():
        return "multi"
    if strings.all() and len(present) > KEY_LIKE_MIN_ROWS and present.nunique() > KEY_LIKE_SHARE * len(present):
        warnings.warn(f"{what}_features column {name!r} has a distinct value in nearly every row (a name or title?); "
                      f"it is left out. Pass feature_kinds={{{name!r}: 'categorical'}} to use it anyway, or drop it.",
                      stacklevel=5)
        return None
    return "categorical"


def _merge_blocks(values, blocks):
    """``values`` with each block of numeric columns (``blocks``: name -> columns) replaced by
    one column of arrays named ``name``."""
    if not blocks:
        return values
    values = values.copy(deep=False)
    for name, sources in blocks.items():
        missing = [c for c in sources if c not in values.columns]
        if missing:
            raise InvalidArgumentError(f"the features lack the column(s) {missing!r} of the vector {name!r}")
        matrix = values[list(sources)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        values = values.drop(columns=list(sources))
        values[name] = list(matrix)
    return values


def _lists(values, name):
    out = []
    for v in values.to_numpy(dtype=object):
        if isinstance(v, str):
            out.append([s for s in v.split("|") if s])
        elif isinstance(v, (list, tuple, set, frozenset, np.ndarray)):
            out.append(list(v))
        elif v is None or (isinstance(v, float) and np.isnan(v)):
            out.append([])
        else:
            out.append([v])
    return out


def _numbers(values, name):
    try:
        return pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError):
        bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
        first = bad.iloc[0] if len(bad) else None
        raise InvalidArgumentError(f"feature column {name!r} is numeric but holds values that are not numbers "
                                   f"(e.g. {first!r}); fix them, or give the column another kind in feature_kinds "
                                   f"({KINDS})") from None


def _vectors(values, name, dim=None):
    rows = values.to_numpy(dtype=object)
    lengths = {len(v) for v in rows if isinstance(v, (list, tuple, np.ndarray))}
    if dim is None:
        if len(lengths) != 1:
            raise InvalidArgumentError(f"feature column {name!r} holds vectors of different lengths {sorted(lengths)[:5]}")
        dim = lengths.pop()
    out = np.full((len(rows), dim), np.nan)
    for p, v in enumerate(rows):
        if isinstance(v, (list, tuple, np.ndarray)):
            if len(v) != dim:
                raise InvalidArgumentError(f"feature column {name!r}: row {p} has {len(v)} values, expected {dim}")
            out[p] = np.asarray(v, dtype=np.float64)
    return out


def _sorted_index(values):
    index = pd.Index(values, dtype=object)
    try:
        return index.sort_values()
    except TypeError:
        return index


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def compose_rows(composition, factors, biases):
    """The vectors (float32, n_entities x k) and biases of ``composition``'s entities from
    parameter rows given as arrays: the core's composition (``embedrec_model_compose``) done in
    NumPy, for the few entities ``add_items`` / ``add_users`` append."""
    e, r, w = composition.entity_pairs()
    n, k = composition.n_entities, factors.shape[1]
    vectors = np.zeros((n, k), dtype=np.float64)
    with_vector = ~composition.bias_only[r]
    np.add.at(vectors, e[with_vector], factors[r[with_vector]].astype(np.float64) * w[with_vector, None])
    bias = np.bincount(e, weights=biases[r].astype(np.float64) * w, minlength=n)
    return vectors.astype(np.float32), bias.astype(np.float32)


def saved_features(fitted_features, rows_arrays):
    """(header entry, arrays, id tables) that store a hybrid model's features: each side's
    encoders and composition, and the parameter rows (``rows_arrays``: the rows core's user
    and item factors and biases)."""
    entry, arrays, tables = {"use_ids": fitted_features.use_ids}, {}, {}
    for name, value in rows_arrays.items():
        if name.endswith("_factors"):
            value = value.reshape(len(rows_arrays[name.replace("_factors", "_bias")]), -1)
        arrays[f"rows.{name}"] = value
    for what in ("user", "item"):
        side = fitted_features.side(what)
        if side is None:
            entry[what] = None
            continue
        specs, vocabularies = side.features.saved()
        c = side.composition
        entry[what] = {"columns": specs, "n_id_rows": c.n_id_rows, "n_feature_rows": c.n_feature_rows,
                       "extra_id_rows": c.extra_id_rows}
        arrays[f"features.{what}.indptr"] = c.indptr
        arrays[f"features.{what}.rows"] = c.rows
        arrays[f"features.{what}.weights"] = c.weights
        tables.update(vocabularies)
    return entry, arrays, tables


def features_from_saved(entry, arrays, ids, n_entities, make_rows_core):
    """The FittedFeatures a file holds (``make_rows_core(n_user_rows, n_item_rows, blank=True)``
    makes an empty core of the right options); ValueError for anything inconsistent."""
    from . import _lib

    if not isinstance(entry, dict) or not isinstance(entry.get("use_ids"), bool):
        raise ValueError("the features entry is malformed")
    sides, n_rows = {}, {}
    for what in ("user", "item"):
        spec = entry.get(what)
        if spec is None:
            sides[what] = None
            continue
        features = FeatureSet.from_saved(what, spec["columns"], ids)
        indptr = arrays[f"features.{what}.indptr"].astype(np.int64)
        rows = arrays[f"features.{what}.rows"].astype(np.int32)
        weights = arrays[f"features.{what}.weights"].astype(np.float32)
        c = Composition(indptr, rows, weights, int(spec["n_id_rows"]), int(spec["n_feature_rows"]),
                        int(spec["extra_id_rows"]), features.bias_only)
        if (indptr.ndim != 1 or len(indptr) != n_entities[what] + 1 or indptr[0] != 0 or (np.diff(indptr) < 0).any()
                or indptr[-1] != len(rows) or len(rows) != len(weights) or c.n_feature_rows != features.n_rows
                or (len(rows) and (rows.min() < 0 or rows.max() >= c.n_rows))):
            raise ValueError(f"the {what} features' composition is inconsistent")
        sides[what] = SideFeatures(features, c)
        n_rows[what] = c.n_rows
    if "rows.user_factors" not in arrays:  # a network: its features are part of its graph
        return FittedFeatures(sides["user"], sides["item"], None, entry["use_ids"])
    shape = [n_rows.get(w, n_entities[w]) for w in ("user", "item")]
    core = make_rows_core(*shape, blank=True)
    for which, name, count in ((_lib.USER_FACTORS, "user_factors", shape[0]), (_lib.ITEM_FACTORS, "item_factors", shape[1]),
                               (_lib.USER_BIAS, "user_bias", shape[0]), (_lib.ITEM_BIAS, "item_bias", shape[1])):
        values = arrays[f"rows.{name}"]
        if values.shape[0] != count:
            raise ValueError(f"the parameter rows {name} have {values.shape[0]} rows, expected {count}")
        core.set_array(which, values)
    return FittedFeatures(sides["user"], sides["item"], core, entry["use_ids"])
