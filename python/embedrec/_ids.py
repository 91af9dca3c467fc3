"""Raw ids <-> model rows.

Users bring ids of any type: ints with gaps, strings, even mixed. The model's tables are dense,
so each distinct id gets a row; ``IdMap.ids[j]`` is the raw id of row j, for every table the
model exposes. Ids are sorted when they can be compared (so integer ids come out in numeric
order), otherwise kept in order of first appearance.
"""

import numpy as np
import pandas as pd

from .errors import InvalidArgumentError, UnknownIdError


class IdMap:
    def __init__(self, index):
        self.index = index  # pd.Index of raw ids, position = row

    @classmethod
    def fit(cls, values, what):
        """Builds the map from a column of raw ids; returns (map, row of each value)."""
        try:
            codes, uniques = pd.factorize(values, sort=True)
        except TypeError:  # ids of types that do not compare (e.g. ints and strings mixed)
            codes, uniques = pd.factorize(values, sort=False)
        if (codes < 0).any():
            bad = np.flatnonzero(codes < 0)
            raise InvalidArgumentError(
                f"the {what} column has {bad.size} missing id(s) (first at row {int(bad[0])}); "
                f"every rating needs a {what} id")
        return cls(pd.Index(uniques)), codes.astype(np.int32, copy=False)

    def __len__(self):
        return len(self.index)

    @property
    def ids(self):
        return self.index.to_numpy(copy=True)

    def rows(self, values, what, unknown="raise"):
        """Rows of ``values``; unknown ids raise UnknownIdError naming a few, or map to -1."""
        rows = self.index.get_indexer(pd.Index(values) if not isinstance(values, pd.Index) else values)
        rows = np.asarray(rows, dtype=np.int32)
        if unknown == "raise" and (rows < 0).any():
            missing = pd.unique(np.asarray(values, dtype=object)[rows < 0])
            shown = ", ".join(repr(v) for v in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise UnknownIdError(
                f"{len(missing)} {what} id(s) were not seen during fit: {shown}{more}. "
                f"Pass unknown='mean' to predict them from the global mean and the known biases.")
        return rows
