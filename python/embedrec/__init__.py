"""embedrec: collaborative filtering with user and item embeddings, trained on a Swift core.

    import embedrec
    train, test = embedrec.train_test_split(ratings, test_size=0.1, seed=42)
    model = embedrec.MatrixFactorization()
    history = model.fit(train)                  # columns found by name (userId, movieId, rating, ...)
    embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))
    model.item_embeddings                       # (n_items, n_factors), row j = model.item_ids[j]
"""

from . import datasets, evaluation, model_selection
from ._lib import version as _core_version
from .errors import (EmbedrecError, EmbedrecMemoryError, InvalidArgumentError, ModelBusyError, NotFittedError,
                     TrainingDivergedError, TrainingWarning, UnknownIdError)
from .history import History
from .lr_find import LRFinderResult
from .metrics import mae, rmse
from .mf import MatrixFactorization
from .nn import EmbeddingNN, NeuMF
from .implicit import BPR, ImplicitMF
from .evaluation import ranking_metrics
from .model_selection import GridSearch, cross_validate, leave_k_out, time_split, train_test_split
from .persistence import ModelFileError, load
from ._queries import EmbeddingPCA
from .plotting import plot_embeddings


def models_by_name():
    """Model classes by name, for loading saved models (each registers itself when defined)."""
    from ._registry import registered_models

    return registered_models()

__version__ = "0.1.0"
core_version = _core_version()
#: Which build of the core is loaded: "avx2" (CPUs with AVX2 and FMA), "baseline", or "custom".
from ._lib import KERNELS as core_kernels  # noqa: E402

__all__ = [
    "MatrixFactorization", "EmbeddingNN", "NeuMF", "ImplicitMF", "BPR", "History", "EmbeddingPCA", "plot_embeddings", "load", "ModelFileError", "train_test_split", "leave_k_out", "time_split", "cross_validate", "GridSearch", "ranking_metrics", "rmse", "mae", "datasets",
    "EmbedrecError", "InvalidArgumentError", "UnknownIdError", "NotFittedError", "ModelBusyError",
    "EmbedrecMemoryError", "TrainingDivergedError", "TrainingWarning", "LRFinderResult", "__version__", "core_version", "core_kernels",
]
