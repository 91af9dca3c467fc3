"""Model classes by name, for ``load``: every subclass of ``Recommender`` registers itself when
it is defined (``Recommender.__init_subclass__``), so a new model saves and loads without being
listed anywhere else. Its own module, so that ``persistence`` reads it without importing the
models."""

import inspect

_REGISTRY = {}


def register(cls):
    _REGISTRY[cls.__name__] = cls


def registered_models():
    """Model classes by class name (what a saved file names); abstract ones are left out."""
    return {name: cls for name, cls in _REGISTRY.items() if not inspect.isabstract(cls)}


def model_class(name):
    """The registered class of that name, or None."""
    return registered_models().get(name)
