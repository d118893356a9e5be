"""Network families of the seed (section 5) and their registry.

Each family is a builder ``build(input_shape, n_classes, hparams) -> keras.Model``
(compiled), a frozen hyperparameter dataclass (defaults: the seed's best) and
the feature input(s) it reads: a ``FeatureSet.input`` name, or a tuple of names
for a multi-input family, whose builder then takes a tuple of input shapes and
whose model takes a list of arrays in that order.

Keras is imported inside the builders only. The CNN-Transformer's custom layer
is registered with Keras by :func:`register_custom_objects`, which a process
must call before ``keras.saving.load_model`` of a model it did not build
itself; importing this package after Keras has been imported registers it too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

from speech_emotion.models.cnn_lstm import (
    Cnn1dLstmHParams,
    CnnLstmHParams,
    FusedCnnLstmHParams,
    HParams,
    build_cnn1d_lstm,
    build_cnn2d_lstm,
    build_cnn_lstm_fused,
)
from speech_emotion.models.cnn_transformer import CnnTransformerHParams, build_cnn_transformer
from speech_emotion.models.lstm_cnn import LstmCnn1dHParams, LstmCnn2dHParams, build_lstm_cnn_1d, build_lstm_cnn_2d

InputName = str | tuple[str, ...]


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[..., Any]
    hparams: type
    #: FeatureSet.input name, e.g. "logmel" or "mfcc+chroma"; a tuple of names for a multi-input family
    input: InputName

    @property
    def inputs(self) -> tuple[str, ...]:
        """The input names as a tuple (one element for a single-input family)."""
        return (self.input,) if isinstance(self.input, str) else tuple(self.input)

    @property
    def multi_input(self) -> bool:
        return not isinstance(self.input, str)

    def default_hparams(self) -> HParams:
        return self.hparams()


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        # CNN-LSTM (5.1)
        Family("cnn2d_lstm", build_cnn2d_lstm, CnnLstmHParams, "logmel"),
        Family("cnn1d_lstm", build_cnn1d_lstm, Cnn1dLstmHParams, "mfcc"),  # the seed's best 1-D input
        Family("cnn1d_lstm_no_mel", build_cnn1d_lstm, Cnn1dLstmHParams, "mfcc+chroma"),
        Family("cnn1d_lstm_all", build_cnn1d_lstm, Cnn1dLstmHParams, "mfcc+chroma+mel"),
        Family("cnn_lstm_fused", build_cnn_lstm_fused, FusedCnnLstmHParams, ("mfcc", "logmel")),
        # LSTM-CNN (5.2)
        Family("lstm_cnn_1d", build_lstm_cnn_1d, LstmCnn1dHParams, "mfcc+chroma"),  # Table 9's best input
        Family("lstm_cnn_2d", build_lstm_cnn_2d, LstmCnn2dHParams, "logmel"),
        # CNN-Transformer (5.3)
        Family("cnn_transformer", build_cnn_transformer, CnnTransformerHParams, "logmel"),
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}") from None


def register_custom_objects() -> dict[str, type]:
    """Register every custom Keras object of the families with Keras (imports Keras).

    Call it before ``keras.saving.load_model`` in a process that has not built
    the model itself. Idempotent. Returns the objects, usable as
    ``load_model(path, custom_objects=register_custom_objects())``.
    """
    from speech_emotion.models.cnn_transformer import register_custom_objects as transformer_objects
    from speech_emotion.models.masking import LAYER_NAME, PACKAGE, padding_mask_class

    return {**transformer_objects(), f"{PACKAGE}>{LAYER_NAME}": padding_mask_class()}


# Keras already loaded (e.g. the materializer imports keras, then this package): registering is free.
if hasattr(sys.modules.get("keras"), "saving"):
    register_custom_objects()


__all__ = [
    "FAMILIES", "Family", "HParams", "InputName", "get_family", "register_custom_objects",
    "CnnLstmHParams", "Cnn1dLstmHParams", "FusedCnnLstmHParams", "LstmCnn1dHParams", "LstmCnn2dHParams",
    "CnnTransformerHParams",
]
