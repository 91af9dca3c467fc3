"""Raw ids <-> model rows.

Users bring ids of any type: ints with gaps, strings, even mixed. The model's tables are dense,
so each distinct id gets a row; ``IdMap.ids[j]`` is the raw id of row j, for every table the
model exposes. Ids are sorted when they can be compared (so integer ids come out in numeric
order), otherwise kept in order of first appearance.
"""

import numpy as np
import pandas as pd

from ._frame import missing_rows
from .errors import InvalidArgumentError, UnknownIdError


class IdMap:
    def __init__(self, index):
        self.index = index  # pd.Index of raw ids, position = row

    #: Integer ids are mapped through a lookup table when their span is at most this many times
    #: the number of ratings (or 65,536): a table read per rating instead of a hash lookup.
    DENSE_SPAN_FACTOR = 4

    @classmethod
    def fit(cls, column, what):
        """Builds the map from a Series of raw ids; returns (map, rows) where ``rows(a, b)`` gives
        the int32 rows of ``column``'s entries a..b-1. Converting in slices keeps the
        conversion's memory to one slice: the caller never needs every row at once."""
        missing = missing_rows(column)
        if missing:
            count, first = missing
            raise InvalidArgumentError(
                f"the {what} column has {count} missing id(s) (first at row {first}); "
                f"every rating needs {'an' if what[0] in 'aeiou' else 'a'} {what} id")
        values = None
        if column.dtype.kind in "iu":  # NumPy ints, and nullable ones (Int64 ...) as their NumPy type
            values = column.to_numpy(dtype=getattr(column.dtype, "numpy_dtype", column.dtype))
        if values is not None and len(values):
            low, high = int(values.min()), int(values.max())
            span = high - low + 1
            if high <= np.iinfo(np.int64).max and span <= max(cls.DENSE_SPAN_FACTOR * len(values), 1 << 16):
                return cls._fit_dense(values, low, span)
        try:
            uniques = pd.unique(column)
            _release_arrow_cache(column)
        except TypeError:  # unhashable ids (lists, dicts)
            raise InvalidArgumentError(f"the {what} column holds unhashable values; ids must be numbers or strings") from None
        _check_encodable(uniques, what)
        index = pd.Index(uniques)
        try:
            index = index.sort_values()
        except TypeError:  # ids of types that do not compare (e.g. ints and strings mixed): first-seen order
            pass
        arrow = _arrow_rows(column, index)
        if arrow is not None:
            return cls(index), arrow
        return cls(index), lambda a, b: _looked_up(index, column, a, b)

    @classmethod
    def _fit_dense(cls, values, low, span):
        """Integer ids over a modest span: presence marks give the sorted distinct ids, and a
        table from id - low to row maps them."""
        present = np.zeros(span, dtype=bool)
        step = 1 << 20
        for a in range(0, len(values), step):
            present[values[a:a + step].astype(np.int64, copy=False) - low] = True
        offsets = np.flatnonzero(present)
        table = np.full(span, -1, dtype=np.int32)
        table[offsets] = np.arange(offsets.size, dtype=np.int32)
        index = pd.Index((offsets + low).astype(values.dtype))
        return cls(index), lambda a, b: table[values[a:b].astype(np.int64, copy=False) - low]

    def __len__(self):
        return len(self.index)

    def extended(self, ids):
        """A map with ``ids`` not known yet appended after the known ones, in their order (the
        known ids keep their rows); returns (map, number appended)."""
        ids = pd.Index(ids)
        fresh = ids[self.index.get_indexer(ids) < 0]
        if len(fresh) == 0:
            return self, 0
        _check_encodable(fresh, "feature")
        return IdMap(self.index.append(pd.Index(fresh.to_numpy(dtype=object) if self.index.dtype != fresh.dtype
                                                else fresh.to_numpy()))), len(fresh)

    @property
    def ids(self):
        return self.index.to_numpy(copy=True)

    #: The UnknownIdError's advice, for ``predict`` (methods that cannot take ``unknown=`` pass
    #: their own).
    PREDICT_HINT = "Pass unknown='mean' to predict them from the global mean and the known biases."

    def rows(self, values, what, unknown="raise", hint=PREDICT_HINT):
        """Rows of ``values``; unknown ids raise UnknownIdError naming a few and ending with
        ``hint``, or map to -1."""
        rows = self.index.get_indexer(pd.Index(values) if not isinstance(values, pd.Index) else values)
        rows = np.asarray(rows, dtype=np.int32)
        if unknown == "raise" and (rows < 0).any():
            missing = pd.unique(np.asarray(values, dtype=object)[rows < 0])
            shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise UnknownIdError(f"{len(missing)} {what} id(s) were not seen during fit: {shown}{more}. {hint}")
        return rows


def _check_encodable(uniques, what):
    """String ids must be valid Unicode (a lone surrogate, as decoding bytes with
    'surrogateescape' leaves, could never be saved or compared with what a file gives back)."""
    for value in uniques:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidArgumentError(
                    f"the {what} id {value!r} is not valid Unicode text (it holds a lone surrogate); decode the "
                    f"ids with errors='replace' or use their bytes' hex as ids") from None


def _arrow_rows(column, index):
    """For a column of pyarrow-backed strings (pandas 3's default with pyarrow installed): rows
    looked up by pyarrow's ``index_in`` on each slice, without making a Python string per
    rating (``get_indexer`` would, a slice at a time: more memory than the slice's rows
    themselves). None for other columns."""
    dtype = column.dtype
    if getattr(dtype, "storage", None) != "pyarrow" and not str(dtype).endswith("[pyarrow]"):
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pa.chunked_array(pa.array(column.array)) if not hasattr(column.array, "_pa_array") \
            else column.array._pa_array
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            return None
        table = pa.array(list(index), type=values.type, memory_pool=pa.system_memory_pool())
    except Exception:  # an Arrow type or a pandas layout this does not know: the general path
        return None

    def rows(a, b):
        # In pieces of 2^16 rows, the lookup's buffers on the system allocator and pyarrow's
        # cache handed back after each: pyarrow's own pool keeps what it frees, which would
        # count in full against the fit's memory.
        pool = pa.system_memory_pool()
        out = np.empty(b - a, dtype=np.int32)
        for start in range(a, b, 1 << 16):
            stop = min(start + (1 << 16), b)
            found = pc.coalesce(pc.index_in(values.slice(start, stop - start), value_set=table, memory_pool=pool),
                                pa.scalar(-1, pa.int32()), memory_pool=pool)
            at = start - a
            for chunk in found.chunks:
                out[at:at + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
                at += len(chunk)
        pa.default_memory_pool().release_unused()
        return out

    return rows


def _release_arrow_cache(column):
    """Hands pyarrow's cached memory back after an Arrow-backed column's unique values were
    found (its hash table would otherwise stay counted in the fit's memory)."""
    if getattr(column.dtype, "storage", None) == "pyarrow" or str(column.dtype).endswith("[pyarrow]"):
        try:
            import pyarrow as pa

            pa.default_memory_pool().release_unused()
        except Exception:
            pass


def _looked_up(index, column, a, b):
    """Rows of ``column``'s entries a..b-1 by hash lookup, 2^16 at a time: ``get_indexer``
    returns int64 and hashes a whole slice at once, transients the fit's memory budget counts."""
    out = np.empty(b - a, dtype=np.int32)
    for start in range(a, b, 1 << 16):
        stop = min(start + (1 << 16), b)
        out[start - a:stop - a] = index.get_indexer(column.iloc[start:stop])
    return out
