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
        except TypeError:  # unhashable ids (lists, dicts)
            raise InvalidArgumentError(f"the {what} column holds unhashable values; ids must be numbers or strings") from None
        _check_encodable(uniques, what)
        index = pd.Index(uniques)
        try:
            index = index.sort_values()
        except TypeError:  # ids of types that do not compare (e.g. ints and strings mixed): first-seen order
            pass
        return cls(index), lambda a, b: index.get_indexer(column.iloc[a:b]).astype(np.int32)

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
