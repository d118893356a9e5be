"""Custom Keras classes of the families, created on first use so that importing the package does
not import Keras, and registered as ``speech_emotion>Name`` so that ``.keras`` files load again."""

from __future__ import annotations

PACKAGE = "speech_emotion"

_CLASSES: dict[str, type] = {}


def custom_class(name: str, define) -> type:
    """The custom Keras class ``name`` made by ``define(keras)`` on first call, registered with Keras."""
    import keras

    cls = _CLASSES.get(name)
    if cls is None:
        cls = _CLASSES[name] = define(keras)
    # (re-)register: idempotent, and survives someone clearing Keras' global registry
    keras.saving.get_custom_objects()[f"{PACKAGE}>{name}"] = cls
    return cls
