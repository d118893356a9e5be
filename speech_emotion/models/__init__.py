"""Network families of the seed (section 5) and their registry.

Each family is a builder ``build(input_shape, n_classes, hparams) -> keras.Model``
plus a hyperparameter dataclass and the feature input it reads. Keras is
imported inside the builders only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from speech_emotion.models.cnn_lstm import CnnLstmHParams, build_cnn2d_lstm


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[..., Any]
    hparams: type
    input: str  # FeatureSet.input name, e.g. "logmel" or "mfcc+chroma"


FAMILIES: dict[str, Family] = {
    "cnn2d_lstm": Family("cnn2d_lstm", build_cnn2d_lstm, CnnLstmHParams, "logmel"),
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}") from None
