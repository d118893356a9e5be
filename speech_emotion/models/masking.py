"""Masks of the padding frames of a log-mel input, for the layers that read time.

Every clip is padded (or cut) to one length; with ``features.mask_padding`` the scaler sets
the scaled log-mel's padding frames to exactly 0 (:class:`speech_emotion.features.FeatureScaler`).
:func:`padding_mask` finds them again inside the model: a frame is the clip's when any of its
mel bands is non-zero. After the conv blocks, whose max-pooling halves the time axis, a pooled
step is the clip's when any frame of its window is. The LSTMs (``mask=``), the transformer's
self-attention (``attention_mask``: no step attends to padding) and its time pooling
(masked mean) then skip the padding, so the prediction does not depend on how much padding
follows the clip. With padding left as scaled (the seed's), no frame is all zeros and
nothing is masked.

The layer is a registered custom Keras class, like the transformer's encoder block
(:func:`speech_emotion.models.keras_objects.custom_class`).
"""

from __future__ import annotations

from typing import Any

from speech_emotion.models.keras_objects import PACKAGE, custom_class  # noqa: F401  (PACKAGE: the registered name)

LAYER_NAME = "PaddingMask"


def padding_mask_class() -> type:
    """The ``PaddingMask`` Keras layer (created on first call; imports Keras), registered with Keras."""
    return custom_class(LAYER_NAME, _define)


def time_factor(n_frames: int, conv_blocks: int) -> int:
    """How many input frames one time step holds after ``conv_blocks`` conv blocks: each block's
    pooling halves an axis of length 2 or more and leaves a length-1 axis as it is
    (:func:`speech_emotion.models.cnn_lstm.conv_block`)."""
    factor, length = 1, int(n_frames)
    for _ in range(conv_blocks):
        if length >= 2:
            factor, length = factor * 2, length // 2
    return factor


def padding_mask(logmel, factor: int, name: str):
    """(batch, steps) bool: which time steps, ``factor`` frames each, hold the clip, from a
    (batch, mel, frames) log-mel input whose padding frames are zero."""
    return padding_mask_class()(factor, name=name)(logmel)


def _define(keras) -> type:
    from keras import layers, ops

    @keras.saving.register_keras_serializable(package=PACKAGE, name=LAYER_NAME)
    class PaddingMask(layers.Layer):
        """(batch, mel, frames) -> (batch, frames // factor) bool: a step holds the clip when a frame
        of its ``factor``-frame window has a non-zero mel band."""

        def __init__(self, factor: int = 1, **kwargs: Any):
            super().__init__(**kwargs)
            self.factor = int(factor)

        def call(self, inputs):
            frames = ops.any(ops.not_equal(inputs, 0), axis=1)  # (batch, frames)
            steps = inputs.shape[2] // self.factor
            windows = ops.reshape(frames[:, : steps * self.factor], (-1, steps, self.factor))
            return ops.any(windows, axis=-1)

        def compute_output_spec(self, inputs):
            return keras.KerasTensor((inputs.shape[0], inputs.shape[2] // self.factor), dtype="bool")

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "factor": self.factor}

    PaddingMask.__qualname__ = LAYER_NAME
    PaddingMask.__module__ = __name__
    return PaddingMask
