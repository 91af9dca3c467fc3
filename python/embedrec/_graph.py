"""Building the node lists the core's network engine runs (see embedrec.h, "Networks").

Models describe their architecture with these calls; the same description gives the C
encoding, the ``summary()`` table and the parameter count, so the three always agree.
"""

import numpy as np

from . import _lib


class Graph:
    def __init__(self):
        self.nodes = []

    def _add(self, name, kind, inputs, width, params, p=(0, 0, 0), v=(0, 0, 0, 0), layer_type=None):
        inputs = list(inputs)
        ints = [_lib.NODE_KINDS[kind]] + inputs + [-1] * (4 - len(inputs)) + list(p)
        self.nodes.append({"name": name, "type": layer_type or kind, "inputs": inputs, "ints": ints,
                           "values": list(v), "width": width, "params": params})
        return len(self.nodes) - 1

    def width(self, node):
        return self.nodes[node]["width"]

    def embedding(self, name, side, rows, width, init_std=0.05, init_range=None, non_negative=False):
        flags = (1 if non_negative else 0) | (2 if init_range is not None else 0)
        values = (init_range[0], init_range[1], 0, 0) if init_range is not None else (init_std, 0, 0, 0)
        return self._add(name, "embedding", [], width, rows * width, p=(0 if side == "user" else 1, width, flags),
                         v=values, layer_type="Embedding")

    def features(self, name, side, rows, width):
        """A fixed input: the encoded features of each user (item), one row per entity, read
        like an embedding and never trained (the dense layer after it learns their weights)."""
        return self._add(name, "embedding", [], width, 0, p=(0 if side == "user" else 1, width, 4),
                         layer_type="Features (fixed)")

    def dropout(self, name, x, rate):
        """A dropout node, or ``x`` itself when the rate is 0."""
        if not rate:
            return x
        return self._add(name, "dropout", [x], self.width(x), 0, v=(rate, 0, 0, 0), layer_type="Dropout")

    def product(self, name, a, b):
        return self._add(name, "product", [a, b], self.width(a), 0, layer_type="Multiply")

    def concat(self, name, inputs):
        """A concatenation; more than four inputs (what one node takes) are concatenated in
        groups first, in order, so the result is the same vector."""
        inputs = list(inputs)
        if len(inputs) == 1:
            return inputs[0]
        if len(inputs) > 4:
            inputs = inputs[:3] + [self.concat(f"{name}_rest", inputs[3:])]
        return self._add(name, "concat", inputs, sum(self.width(i) for i in inputs), 0, layer_type="Concatenate")

    def dense(self, name, x, units, activation="linear"):
        return self._add(name, "dense", [x], units, units * self.width(x) + units,
                         p=(units, _lib.ACTIVATIONS[activation], 0), layer_type=f"Dense ({activation})")

    def scaled_sigmoid(self, name, x, lo, hi):
        return self._add(name, "scaled_sigmoid", [x], self.width(x), 0, v=(lo, hi, 0, 0), layer_type="ScaledSigmoid")

    def encode(self):
        spec = np.array([n["ints"] for n in self.nodes], dtype=np.int32)
        values = np.array([n["values"] for n in self.nodes], dtype=np.float64)
        return spec, values

    def count_params(self):
        return sum(n["params"] for n in self.nodes)

    def summary_rows(self):
        return [(n["name"], n["type"], f"(None, {n['width']})", n["params"],
                 ", ".join(self.nodes[i]["name"] for i in n["inputs"])) for n in self.nodes]
