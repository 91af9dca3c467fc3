"""The neural models of the write-ups, on the core's layer engine: the "tabular" network
(``EmbeddingNN``), the product-plus-dense "matrix factorisation" network of the goodbooks post
(``EmbeddingNN(combine="product", biases=True)``) and NeuMF (He et al. 2017)."""

import abc

import numpy as np
import pandas as pd

from . import _lib
from ._base import Recommender
from ._checks import check_bool, check_choice, check_dropout, check_float, check_int, check_y_range
from ._core import CoreNet, CoreNetTrainer, CoreRatings
from ._features import FittedFeatures
from ._graph import Graph
from ._hybrid import FeatureParts, folded_user_features
from ._queries import EmbeddingQueries
from .errors import InvalidArgumentError

TRAINING_PARAMS = ("loss", "optimizer", "epochs", "batch_size", "lr", "weight_decay", "schedule", "patience",
                   "seed", "n_threads")


class NetworkModel(FeatureParts, EmbeddingQueries, Recommender):
    """Shared by the neural models: hyper-parameters, the core network, ``summary()``,
    ``count_params()``, saving. Subclasses define ``_PARAM_NAMES``, ``_build(graph, n_users,
    n_items)`` and ``_validate_architecture()``.

    Features (``fit(df, user_features=..., item_features=...)``, the frames and kinds of
    ``Recommender.fit``): each side's encoded features (one column per category, numeric
    column or vector dimension, weighted as in ``embedrec._features``) are a fixed input beside
    the id embeddings, concatenated into the dense tower; where the network multiplies
    embeddings (``combine="product"``, NeuMF's GMF), a learned projection of the features is
    multiplied with the other side's embedding too. Users and items of the feature frames
    without ratings get the mean id rows of those with ratings (a typical item, so the tower
    sees what it was trained on) and are predicted from their features; ``similar_items``
    compares id embeddings, so it cannot tell such items apart."""

    _PARAM_NAMES = ()
    #: Chosen on a hold-out when both are left unset (loss "mse"): ``_fit_tuning``.
    _CHOSEN = ("lr", "weight_decay")
    #: The fixed learning rate and weight decay, chosen on ml-100k: used when the other one is
    #: given, and where a fit does not search (features, implicit training, tiny data).
    FIXED_LR = 0.003
    FIXED_WEIGHT_DECAY = 0.3

    @property
    def params(self):
        """Every hyper-parameter, with the defaults filled in. ``lr`` and ``weight_decay`` left
        unset (with ``loss="mse"``) read ``"auto"`` until a fit chooses them on a hold-out, and
        the values it chose after."""
        return self._resolved(self._chosen_settings())

    def _resolved(self, chosen):
        p = self.get_params()
        names = self._chosen_names(p)
        self._fill_defaults(p)
        for name in names:
            p[name] = chosen[name] if chosen is not None and name in chosen else "auto"
        return p

    def _fill_defaults(self, p):
        """Fills the defaults of the parameters left at None in ``p`` (in place)."""
        if p["lr"] is None:
            p["lr"] = self.FIXED_LR
        if p["weight_decay"] is None:
            p["weight_decay"] = self.FIXED_WEIGHT_DECAY

    @classmethod
    def _chosen_names(cls, given):
        if given["loss"] != "mse" or any(given[name] is not None for name in cls._CHOSEN):
            return ()
        return cls._CHOSEN

    def _fixed_choice(self):
        p = self.get_params()
        names = self._chosen_names(p)
        self._fill_defaults(p)
        return {name: p[name] for name in names}

    def _validate_params(self):
        self._validate_architecture()
        p = self._fixed_params()
        check_choice("loss", p["loss"], set(_lib.LOSSES))
        check_choice("optimizer", p["optimizer"], set(_lib.OPTIMIZERS))
        check_choice("schedule", p["schedule"], set(_lib.SCHEDULES))
        check_int("epochs", p["epochs"], 1, 1_000_000)
        check_int("batch_size", p["batch_size"], 1, 1 << 24)
        check_float("lr", p["lr"], 0, 10, lo_open=True)
        check_float("weight_decay", p["weight_decay"], 0, 100)
        if p["init_range"] is not None:
            try:
                lo, hi = p["init_range"]
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"init_range must be None or a pair (lo, hi), got {p['init_range']!r}") from None
            check_float("init_range low", lo, -10, 10)
            check_float("init_range high", hi, -10, 10)
            if not lo <= hi:
                raise InvalidArgumentError(f"init_range must have lo <= hi, got {p['init_range']!r}")
        else:
            check_float("init_std", p["init_std"], 0, 10)
        if p["patience"] is not None:
            check_int("patience", p["patience"], 1, 1_000_000)
        check_int("seed", p["seed"], 0, 2**64 - 1)
        check_int("n_threads", p["n_threads"], 0, 1024)
        check_y_range(p.get("y_range"))

    # ----- features: fixed input nodes beside the id embeddings --------------------------------
    #: (user, item) widths of the encoded features the graph takes (0: none); set on the spec
    #: of a fit with features, and of a model loaded with them.
    _feature_widths = (0, 0)

    def _check_takes_features(self):
        pass

    def _adopt_features(self, features):
        self._feature_widths = tuple(features.side(w).composition.n_feature_rows if features.side(w) else 0
                                     for w in ("user", "item"))

    def _feature_inputs(self, g, n_users, n_items, crossed=None):
        """The nodes that bring the features into the tower: each side's fixed feature node
        (user's, then item's; only for a side with features). ``crossed=(user, item, width)``
        (a tower built on a product of embeddings): also the product of the other side's
        embedding with a learned ``width``-wide projection of the features, so that features
        meet the other side as ids do in the product."""
        nodes, products = [], []
        for side, rows, width in (("user", n_users, self._feature_widths[0]), ("item", n_items, self._feature_widths[1])):
            if not width:
                continue
            f = g.features(f"{side}_features", side, rows, width)
            nodes.append(f)
            if crossed is not None:
                user, item, dim = crossed
                projected = g.dense(f"{side}_feature_projection", f, dim, "linear")
                other = item if side == "user" else user
                products.append(g.product(f"{side}_feature_product", other, projected))
        return products + nodes

    def _create_hybrid(self, spec, sides, use_ids, data, options):
        n_users, n_items = len(data.users), len(data.items)
        features = FittedFeatures(sides[0], sides[1], None, use_ids)
        spec._adopt_features(features)
        g = spec.graph(n_users, n_items)
        rated = (data.n_rated[0], data.n_rated[1])

        def fill_unrated(core):
            # Entities known only from their features have id rows no rating moves. The tower
            # never sees a zero or a random row for a trained entity, so each gets the mean of
            # the rated entities' rows: a typical user (item), beside its own features.
            for j, node, side in _trained_tables(g):
                table = core.get_param(j, 0).reshape(-1, node["width"])
                if rated[side] < len(table):
                    table[rated[side]:] = _typical_row(table[:rated[side]], node["width"])
                    core.set_param(j, 0, table)

        features.fill_unrated = fill_unrated
        core = spec._create_core(n_users, n_items)
        for j, node in enumerate(g.nodes):
            if node["type"] == "Features (fixed)":
                core.set_param(j, 0, features.feature_matrix("user" if node["ints"][5] == 0 else "item"))
        trainer = self._create_trainer(core, data.ratings, options)
        return core, trainer, features

    def _grown_core(self, state, what, added):
        """``add_items`` / ``add_users``: a network with the new entities' rows after the old
        ones: their encoded features in the fixed input, the mean id rows of the entities with
        ratings in every trained table of that side."""
        spec, n = state.spec, added.n_entities
        sizes = [len(state.users), len(state.items)]
        side = 0 if what == "user" else 1
        rated = np.zeros(sizes[side], dtype=bool)
        rated[state.seen_pairs()[side]] = True
        sizes[side] += n
        new = spec._create_core(*sizes)
        for j, node in enumerate(spec.graph(*sizes).nodes):
            for which in (0, 1):
                if not new.param_size(j, which):
                    continue
                values = state.core.get_param(j, which)
                if which == 0 and node["ints"][0] == _lib.NODE_KINDS["embedding"] and node["ints"][5] == side:
                    table = values.reshape(-1, node["width"])
                    if node["type"] == "Features (fixed)":
                        extra = added.feature_matrix()
                    else:
                        extra = np.repeat(_typical_row(table[rated], node["width"])[None, :], n, axis=0)
                    values = np.vstack([table, extra])
                new.set_param(j, which, values)
        return new

    # ----- the architecture ------------------------------------------------------------------
    @abc.abstractmethod
    def _build(self, g, n_users, n_items):
        """Adds the network's nodes to ``g`` (a ``_graph.Graph``) for tables of these sizes;
        returns the (user, item) embedding nodes exposed as the model's embeddings."""

    @abc.abstractmethod
    def _validate_architecture(self):
        """Raises InvalidArgumentError naming any architecture argument out of range."""

    def graph(self, n_users, n_items):
        """The network this model builds for tables of these sizes."""
        return self._graph_and_nodes(n_users, n_items)[0]

    def _graph_and_nodes(self, n_users, n_items):
        """The graph, and the (user, item) embedding nodes exposed as the model's embeddings."""
        g = Graph()
        nodes = self._build(g, int(n_users), int(n_items))
        return g, nodes

    def count_params(self, n_users=None, n_items=None):
        """Total number of trainable parameters (embedding tables sized by the fitted ids, or by
        ``n_users`` / ``n_items``)."""
        spec, n_users, n_items = self._described(n_users, n_items)
        return spec.graph(n_users, n_items).count_params()

    def summary_frame(self, n_users=None, n_items=None):
        """The layers as a DataFrame: layer, type, output shape, params, inputs."""
        spec, n_users, n_items = self._described(n_users, n_items)
        g = spec.graph(n_users, n_items)
        return pd.DataFrame(g.summary_rows(), columns=["layer", "type", "output shape", "params", "inputs"])

    # ----- hooks of the shared fit loop ------------------------------------------------------
    @property
    def _logistic(self):
        return self.loss == "bce"

    def _create_core(self, n_users, n_items, options=None, blank=False):
        g, (user_node, item_node) = self._graph_and_nodes(n_users, n_items)
        spec, values = g.encode()
        return CoreNet(spec, values, n_users, n_items, self.seed, self._logistic, user_node, item_node)

    def _training_options(self):
        return self._resolved(self.__dict__.get("_chosen"))  # never the previous fit's choice

    def _create_trainer(self, core, ratings, p):
        return CoreNetTrainer(core, ratings, p["loss"], self._negatives, p["optimizer"], p["schedule"],
                              p["epochs"], p["batch_size"], p["lr"], p["weight_decay"], p["n_threads"], p["seed"])

    def _ratings_outside(self, ratings):
        if self.loss == "bce" and not self._negatives and ((ratings < 0) | (ratings > 1)).any():
            raise InvalidArgumentError("with loss='bce' the ratings are labels and must lie in [0, 1]; "
                                       "for interaction data pass negatives=N to sample negatives")
        return 0

    # ----- what was learned ------------------------------------------------------------------
    @property
    def user_embeddings(self):
        """float32 (n_users, width) of the main user table; row j belongs to ``user_ids[j]``."""
        return self._state().core.embeddings(of_items=False)

    @property
    def item_embeddings(self):
        """float32 (n_items, width) of the main item table; row j belongs to ``item_ids[j]``."""
        return self._state().core.embeddings(of_items=True)

    def get_weights(self):
        """Every parameter by layer name: embedding tables (n, width), dense kernels
        (units, inputs) and biases."""
        state = self._state()
        g = state.spec.graph(len(state.users), len(state.items))
        weights = {}
        for j, node in enumerate(g.nodes):
            if node["params"]:
                w = state.core.get_param(j, 0)
                if node["type"] == "Embedding":
                    weights[node["name"]] = w.reshape(-1, node["width"])
                else:
                    weights[node["name"] + "/kernel"] = w.reshape(node["width"], -1)
                    weights[node["name"] + "/bias"] = state.core.get_param(j, 1)
        return weights

    @property
    def user_bias(self):
        """float32 (n_users,): the per-user bias of ``EmbeddingNN(biases=True)``; zeros when
        the network has none."""
        return self._bias_table("user_bias", self._state().users)

    @property
    def item_bias(self):
        """float32 (n_items,): the per-item bias of ``EmbeddingNN(biases=True)``; zeros when
        the network has none."""
        return self._bias_table("item_bias", self._state().items)

    def _bias_table(self, name, ids):
        weights = self.get_weights()
        return weights[name].ravel() if name in weights else np.zeros(len(ids), dtype=np.float32)

    # ----- new users without retraining ------------------------------------------------------
    def fold_in(self, df, user=None, item=None, rating=None, replace=False, epochs=20, user_features=None):
        """Users not seen in training (see ``Recommender.fold_in``): their embedding rows are
        trained for ``epochs`` epochs on their ratings with every other parameter of the network
        frozen (item tables, dense layers, other users), using the model's optimiser, batch size,
        learning rate and weight decay at a constant rate.

        A network fitted with ``user_features``: ``user_features`` (a frame like the one given to
        ``fit``) gives the folded-in users' features, the fixed input beside their id rows (a
        known user re-estimated with ``replace=True`` keeps its features unless given new ones;
        a new user without any has none)."""
        check_int("epochs", epochs, 1, 10_000)
        return self._fold_in(df, user, item, rating, replace, epochs=epochs, user_features=user_features)

    def _fold_in_core(self, state, batch, epochs=20, user_features=None):
        side = state.features.users if state.features is not None else None
        if user_features is not None and side is None:
            raise InvalidArgumentError("user_features: this model was fitted without user_features")
        spec = state.spec
        p = spec.params
        n_old, m, n_items = len(state.users), len(batch.users), len(state.items)
        old = state.core
        # A network with room for every folded-in user after the old ones; the new rows keep
        # this network's random initialisation, every other parameter is copied.
        wide = spec._create_core(n_old + m, n_items)
        spec._copy_parameters(old, wide)
        if side is not None:  # the folded-in users' features, in the fixed input's new rows
            features = folded_user_features(state, side, batch, user_features).feature_matrix()
            for j, node in enumerate(spec.graph(n_old + m, n_items).nodes):
                if node["type"] == "Features (fixed)" and node["ints"][5] == 0:
                    table = wide.get_param(j, 0).reshape(n_old + m, -1)
                    table[n_old:] = features
                    wide.set_param(j, 0, table)
        ratings = CoreRatings.from_arrays(n_old + batch.codes, batch.item_rows, batch.ratings, n_old + m, n_items)
        trainer = CoreNetTrainer(wide, ratings, p["loss"], self._negatives,
                                 p["optimizer"], "constant", epochs, p["batch_size"], p["lr"],
                                 p["weight_decay"], p["n_threads"], p["seed"])
        try:
            trainer.freeze_all_but_new_users(n_old)
            for _ in range(epochs):
                trainer.run_epoch()
        finally:
            trainer.close()
        fresh = batch.known < 0
        if fresh.all():
            return wide
        # Re-estimated users go back to their own rows; only fresh users are appended.
        final = spec._create_core(n_old + int(fresh.sum()), n_items)
        g = spec.graph(n_old + m, n_items)
        for j, node in enumerate(g.nodes):
            for which in (0, 1):
                if not final.param_size(j, which):
                    continue
                values = wide.get_param(j, which)
                user_table = node["type"] in ("Embedding", "Features (fixed)") and node["ints"][5] == 0
                if which == 0 and user_table:
                    table = values.reshape(n_old + m, -1)
                    merged = np.vstack([table[:n_old], table[n_old:][fresh]])
                    merged[batch.known[~fresh]] = table[n_old:][~fresh]
                    values = merged
                final.set_param(j, which, values)
        return final

    def _copy_parameters(self, source, target):
        """Copies every parameter of ``source`` into ``target`` (which may have more users)."""
        for j in range(source.n_nodes):
            for which in (0, 1):
                size = source.param_size(j, which)
                if not size:
                    continue
                values = source.get_param(j, which)
                wider = target.param_size(j, which)
                if wider != size:  # a user table with extra rows: keep the target's new rows
                    values = np.concatenate([values, target.get_param(j, which)[size:]])
                target.set_param(j, which, values)

    # ----- saving --------------------------------------------------------------------------
    def _saved_arrays(self, state):
        core = state.core
        return {f"node{j}.{w}": values for j, w, values in core.snapshot()}

    @classmethod
    def _from_saved(cls, header, arrays, ids):
        from .persistence import ModelFileError

        spec = cls(**cls._params_from_saved(header["params"]))
        entry = header.get("features")
        if entry is not None:
            spec._feature_widths = tuple(int(entry[w]["n_feature_rows"]) if entry.get(w) else 0 for w in ("user", "item"))
        core = spec._create_core(len(ids["users"]), len(ids["items"]))
        for j in range(core.n_nodes):
            for w in (0, 1):
                size = core.param_size(j, w)
                name = f"node{j}.{w}"
                if size == 0:
                    continue
                if name not in arrays or arrays[name].size != size:
                    raise ModelFileError(f"the saved network's {name} has {arrays[name].size if name in arrays else 0} "
                                         f"values, expected {size}")
                core.set_param(j, w, arrays[name])
        return cls._restore(header, arrays, ids, core)


def _trained_tables(graph):
    """(node index, node, side 0 user / 1 item) of every trained embedding table of ``graph``."""
    for j, node in enumerate(graph.nodes):
        if node["ints"][0] == _lib.NODE_KINDS["embedding"] and node["type"] != "Features (fixed)":
            yield j, node, node["ints"][5]


def _typical_row(rows, width):
    """The row given to users (items) known only from their features: the mean of ``rows``, the
    rated ones' (zeros when there are none)."""
    return rows.mean(axis=0) if len(rows) else np.zeros(width, dtype=np.float32)


def _check_layers(name, layers):
    if isinstance(layers, (str, bytes)):
        raise InvalidArgumentError(f"{name} must be a sequence of layer widths such as (100, 50), got {layers!r}")
    try:
        layers = tuple(layers)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a sequence of layer widths, got {layers!r}") from None
    for units in layers:
        check_int(f"{name} entry", units, 1, 65536)
    return layers


class EmbeddingNN(NetworkModel):
    """User and item embeddings combined and passed through dense layers.

    ``combine="concat"`` (default): the "tabular" model of the write-ups (fastai's
    ``EmbeddingNN``, the goodbooks post's Keras tabular network): embeddings of different
    widths, concatenated. ``combine="product"``: the goodbooks post's "matrix factorisation"
    network: the elementwise product of equal-width embeddings. ``biases=True`` concatenates a
    per-user and a per-item bias to that vector. ``dropout`` applies after each hidden layer
    (only while training). ``emb_dropout``: a pair ``(user, item)`` drops each side's
    embedding with its own rate (before the product or the concatenation); one rate drops
    both embeddings with ``combine="concat"`` and their product with ``combine="product"``.
    The output is one dense unit with ``output`` activation ("linear" or "relu"), or a
    sigmoid scaled to ``y_range``.

    Training: ``loss`` "mse" (or "mae"); ``optimizer`` "adam" (sparse row-wise updates of the
    embeddings) or "sgd"; ``schedule`` "one_cycle" or "constant"; ``weight_decay`` is an L2
    penalty per rating on the embedding rows it uses plus a decoupled decay of the dense
    kernels; ``init_std`` (normal around 0) or ``init_range`` (uniform) initialises the
    embeddings; ``patience`` enables early stopping with the best weights restored. Results do
    not depend on ``n_threads``. The schedule (Adam, one-cycle, 5 epochs, batch 256) was chosen
    on ml-100k.

    Defaults that adapt: with ``lr`` and ``weight_decay`` both unset (and ``loss="mse"``),
    ``fit`` chooses them on a hold-out of its training ratings (``embedrec._fit_tuning``):
    each candidate is a whole fit of the schedule on a copy of the ratings (above about a million,
    those of a sample of the users), scored by the RMSE on ratings held out of that copy;
    weight decays walk down by decades from the fixed value, then the neighbours, the learning
    rate a factor 3 either way and both together, at most 12 fits. Why: the penalty right on
    ml-100k flattens the networks on dense data (goodbooks shape: 0.82 RMSE against 0.72 with a
    weaker one). ``model.params`` shows "auto" before and the choice after a fit,
    ``model.tuning`` the candidates (lr, weight_decay, holdout_rmse, seconds, on_all_ratings). Giving either
    one (or features, implicit training, fewer than 500 ratings) keeps the fixed values, which
    depend on the architecture, as does the initialisation left at ``None``:

    ============================ ===== ============ ==========================
    architecture                 lr    weight_decay initialisation
    ============================ ===== ============ ==========================
    product without biases       0.003 0.1          ``init_range=(0.8, 1.2)``
    every other                  0.003 0.3          ``init_std=0.05``
    ============================ ===== ============ ==========================

    Why: the product of two embeddings near 0 carries no first-order signal, so the product
    network without biases cannot express a user's or an item's general level, and with the
    decay the others use its item embeddings collapse to 0 (it then learns nothing). Started
    near 1, each product entry is about p_j + q_j - 1, so the dense layers see the users' and
    items' levels from the first batch.
    """

    _PARAM_NAMES = ("user_dim", "item_dim", "layers", "combine", "biases", "dropout", "emb_dropout", "activation",
                    "output", "y_range", "init_std", "init_range") + TRAINING_PARAMS

    def __init__(self, user_dim=50, item_dim=50, layers=(100, 50), *, combine="concat", biases=False, dropout=0.0,
                 emb_dropout=0.0, activation="relu", output="linear", y_range=None, loss="mse", optimizer="adam",
                 epochs=5, batch_size=256, lr=None, weight_decay=None, init_std=None, init_range=None,
                 schedule="one_cycle", patience=None, seed=0, n_threads=0):
        super().__init__()
        self.user_dim, self.item_dim, self.layers = user_dim, item_dim, layers
        self.combine, self.biases, self.dropout, self.emb_dropout = combine, biases, dropout, emb_dropout
        self.activation, self.output, self.y_range = activation, output, y_range
        self.loss, self.optimizer, self.epochs, self.batch_size = loss, optimizer, epochs, batch_size
        self.lr, self.weight_decay, self.init_std, self.init_range = lr, weight_decay, init_std, init_range
        self.schedule, self.patience, self.seed, self.n_threads = schedule, patience, seed, n_threads
        self._validate_params()

    def _fill_defaults(self, p):
        """The architecture's defaults (see the class doc)."""
        bare_product = p["combine"] == "product" and not p["biases"]
        if p["weight_decay"] is None:
            p["weight_decay"] = 0.1 if bare_product else self.FIXED_WEIGHT_DECAY
        super()._fill_defaults(p)
        if p["init_std"] is None and p["init_range"] is None:
            if bare_product:
                p["init_range"] = (0.8, 1.2)
            else:
                p["init_std"] = 0.05

    def _validate_architecture(self):
        check_int("user_dim", self.user_dim, 1, 65536)
        check_int("item_dim", self.item_dim, 1, 65536)
        self.layers = _check_layers("layers", self.layers)
        check_choice("combine", self.combine, {"concat", "product"})
        if self.combine == "product" and self.user_dim != self.item_dim:
            raise InvalidArgumentError(f"combine='product' needs user_dim == item_dim, got {self.user_dim} and {self.item_dim}")
        check_bool("biases", self.biases)
        check_float("dropout", self.dropout, 0, 0.99)
        self.emb_dropout = check_dropout("emb_dropout", self.emb_dropout)
        check_choice("activation", self.activation, {"relu", "sigmoid", "linear"})
        check_choice("output", self.output, {"linear", "relu"})

    def _build(self, g, n_users, n_items):
        p = self.params
        init = {"init_std": p["init_std"], "init_range": p["init_range"]}
        user = user_table = g.embedding("user_embedding", "user", n_users, self.user_dim, **init)
        item = item_table = g.embedding("item_embedding", "item", n_items, self.item_dim, **init)
        per_side = isinstance(self.emb_dropout, tuple)
        if per_side:
            user = g.dropout("user_dropout", user, self.emb_dropout[0])
            item = g.dropout("item_dropout", item, self.emb_dropout[1])
        x = g.product("product", user, item) if self.combine == "product" else None
        parts = [x] if x is not None else [user, item]
        if self.biases:
            parts += [g.embedding("user_bias", "user", n_users, 1, **init),
                      g.embedding("item_bias", "item", n_items, 1, **init)]
        if self.emb_dropout and not per_side and self.combine == "product":
            parts[0] = g.dropout("embedding_dropout", parts[0], self.emb_dropout)
        elif self.emb_dropout and not per_side:
            parts[0] = g.dropout("user_dropout", parts[0], self.emb_dropout)
            parts[1] = g.dropout("item_dropout", parts[1], self.emb_dropout)
        crossed = (user, item, self.user_dim) if self.combine == "product" else None
        x = g.concat("concatenate", parts + self._feature_inputs(g, n_users, n_items, crossed))
        for j, units in enumerate(self.layers, 1):
            x = g.dense(f"dense_{j}", x, units, self.activation)
            x = g.dropout(f"dropout_{j}", x, self.dropout)
        x = g.dense("output", x, 1, "linear" if self.y_range is not None else self.output)
        if self.y_range is not None:
            x = g.scaled_sigmoid("y_range", x, *self.y_range)
        return user_table, item_table


class NeuMF(NetworkModel):
    """Neural matrix factorisation (He et al., "Neural Collaborative Filtering", 2017): a GMF
    tower (elementwise product of ``gmf_dim``-wide embeddings) and an MLP tower (user and item
    embeddings of ``mlp_dims[0] / 2`` each, concatenated, then dense ReLU layers of
    ``mlp_dims[1:]``), joined by concatenation into one output unit.

    On ratings: ``loss="mse"`` (optionally with ``y_range``). On implicit interactions:
    ``loss="bce", negatives=4``: every (user, item) pair of ``fit``'s frame is a positive (no
    rating column needed) and each epoch samples ``negatives`` unobserved items per positive;
    ``predict`` then returns probabilities. ``user_embeddings`` / ``item_embeddings`` are the GMF
    tables. Other arguments as in :class:`EmbeddingNN`; ``lr`` and ``weight_decay`` left unset
    are chosen by ``fit`` as there (fixed: 0.003 and 0.3).
    """

    _PARAM_NAMES = ("gmf_dim", "mlp_dims", "dropout", "negatives", "y_range", "init_std", "init_range") + TRAINING_PARAMS

    def __init__(self, gmf_dim=16, mlp_dims=(64, 32, 16), *, dropout=0.0, negatives=0, y_range=None, loss="mse",
                 optimizer="adam", epochs=5, batch_size=256, lr=None, weight_decay=None, init_std=0.05,
                 init_range=None, schedule="one_cycle", patience=None, seed=0, n_threads=0):
        super().__init__()
        self.gmf_dim, self.mlp_dims, self.dropout, self.negatives = gmf_dim, mlp_dims, dropout, negatives
        self.y_range, self.loss, self.optimizer, self.epochs = y_range, loss, optimizer, epochs
        self.batch_size, self.lr, self.weight_decay = batch_size, lr, weight_decay
        self.init_std, self.init_range, self.schedule = init_std, init_range, schedule
        self.patience, self.seed, self.n_threads = patience, seed, n_threads
        self._validate_params()

    @property
    def _negatives(self):
        return self.negatives

    def _validate_architecture(self):
        check_int("gmf_dim", self.gmf_dim, 1, 65536)
        self.mlp_dims = _check_layers("mlp_dims", self.mlp_dims)
        if not self.mlp_dims or self.mlp_dims[0] < 2:
            raise InvalidArgumentError(f"mlp_dims must start with the MLP's input width (at least 2), got {self.mlp_dims!r}")
        check_float("dropout", self.dropout, 0, 0.99)
        check_int("negatives", self.negatives, 0, 100)
        if self.negatives and self.loss != "bce":
            raise InvalidArgumentError("negatives > 0 samples unobserved items as 0-labels: it needs loss='bce'")
        if self.loss == "bce" and self.y_range is not None:
            raise InvalidArgumentError("loss='bce' predicts probabilities; y_range does not apply")

    def _needs_ratings(self):
        return not self.negatives

    def _build(self, g, n_users, n_items):
        init = {"init_std": self.init_std, "init_range": self.init_range}
        gu = g.embedding("gmf_user", "user", n_users, self.gmf_dim, **init)
        gi = g.embedding("gmf_item", "item", n_items, self.gmf_dim, **init)
        gmf = g.product("gmf", gu, gi)
        features = self._feature_inputs(g, n_users, n_items, crossed=(gu, gi, self.gmf_dim))
        crossed = [f for f in features if g.nodes[f]["type"] == "Multiply"]
        half = self.mlp_dims[0] // 2
        mu = g.embedding("mlp_user", "user", n_users, half, **init)
        mi = g.embedding("mlp_item", "item", n_items, self.mlp_dims[0] - half, **init)
        x = g.concat("mlp_input", [mu, mi] + [f for f in features if f not in crossed])
        for j, units in enumerate(self.mlp_dims[1:], 1):
            x = g.dense(f"mlp_{j}", x, units, "relu")
            x = g.dropout(f"mlp_dropout_{j}", x, self.dropout)
        x = g.dense("output", g.concat("neumf", [gmf] + crossed + [x]), 1, "linear")
        if self.y_range is not None:
            x = g.scaled_sigmoid("y_range", x, *self.y_range)
        return gu, gi
