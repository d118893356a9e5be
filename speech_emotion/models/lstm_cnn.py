"""LSTM-CNN family (seed section 5.2).

The input goes first through an LSTM that returns its whole output sequence
(``return_sequences=True``: the seed found this 5 % more accurate than the last
state only), then through the convolutional blocks of 5.1.1, then flatten (or
global average pooling) + dropout + softmax.

- 1-D input (5.2.1): the vector (MFCC + chroma is the seed's best, Table 9) is
  read as a sequence of L coefficients with one channel; the LSTM output
  (L, units) goes through Conv1D blocks (the units are the channels). Table 8:
  kernel 3, 1 block, 52 LSTM units, Adam at 2e-4, dropout 0.2. The seed gives
  no filter counts for it: 64 then 128, as its CNN1D-LSTM.
- 2-D input (5.2.2): the LSTM runs over time on the 128-dim log-mel frames;
  its output (n_frames, units) is an image for Conv2D blocks. Table 10:
  kernel 3, 2 blocks, 64 LSTM units, 128 then 256 filters, Adam at 2e-4,
  dropout 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from speech_emotion.models.cnn_lstm import HParams, _check_shape, classifier_head, compile_classifier, conv_block

POOLINGS: tuple[str, ...] = ("flatten", "global_avg")


@dataclass(frozen=True)
class _LstmCnnHParams(HParams):
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooling not in POOLINGS:  # type: ignore[attr-defined]
            raise ValueError(f"{type(self).__name__}.pooling must be one of {POOLINGS}, got {self.pooling!r}")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LstmCnn1dHParams(_LstmCnnHParams):
    """LSTM-CNN on a 1-D vector; defaults: the seed's Table 8."""

    kernel_size: int = 3
    conv_blocks: int = 1
    filters_first: int = 64
    filters_next: int = 128
    lstm_units: int = 52
    dropout: float = 0.2
    learning_rate: float = 2e-4
    optimizer: str = "adam"
    pooling: str = "flatten"


@dataclass(frozen=True)
class LstmCnn2dHParams(_LstmCnnHParams):
    """LSTM-CNN on the log-mel spectrogram; defaults: the seed's Table 10."""

    kernel_size: int = 3
    conv_blocks: int = 2
    filters_first: int = 128
    filters_next: int = 256
    lstm_units: int = 64
    dropout: float = 0.0
    learning_rate: float = 2e-4
    optimizer: str = "adam"
    pooling: str = "flatten"


def _head(x, hp, n_classes: int, dims: int, time_mask=None):
    """Flatten, or the global mean; ``time_mask`` ((batch, steps) bool, 2-D only): the mean over the
    clip's time steps only, then over the LSTM-unit axis (the masked form of ``GlobalAveragePooling2D``)."""
    from keras import layers

    if hp.pooling == "flatten":
        x = layers.Flatten(name="flatten")(x)
    elif time_mask is not None:
        steps, units, channels = x.shape[1:]
        x = layers.Reshape((steps, units * channels), name="to_sequence")(x)
        x = layers.GlobalAveragePooling1D(name="time_pool")(x, mask=time_mask)
        x = layers.Reshape((units, channels), name="to_units")(x)
        x = layers.GlobalAveragePooling1D(name="unit_pool")(x)
    else:
        pool = layers.GlobalAveragePooling2D if dims == 2 else layers.GlobalAveragePooling1D
        x = pool(name="global_pool")(x)
    if hp.dropout:
        x = layers.Dropout(hp.dropout, name="dropout")(x)
    return classifier_head(x, n_classes)


def build_lstm_cnn_1d(input_shape: tuple[int, ...], n_classes: int, hp: LstmCnn1dHParams | dict | None = None):
    """(L,) -> (L, 1) -> LSTM (whole sequence) -> Conv1D blocks -> flatten -> dropout -> softmax."""
    import keras
    from keras import layers

    hp = LstmCnn1dHParams.coerce(hp)
    inputs = keras.Input(shape=_check_shape(input_shape, 1, "lstm_cnn_1d"), name="vector")
    x = layers.Reshape((inputs.shape[1], 1), name="add_channel")(inputs)
    x = layers.LSTM(hp.lstm_units, return_sequences=True, name="lstm")(x)
    for i in range(hp.conv_blocks):
        x = conv_block(x, hp.filters_first if i == 0 else hp.filters_next, hp.kernel_size, 1, f"block{i + 1}")
    outputs = _head(x, hp, n_classes, 1)
    return compile_classifier(keras.Model(inputs, outputs, name="lstm_cnn_1d"), hp)


def build_lstm_cnn_2d(input_shape: tuple[int, ...], n_classes: int, hp: LstmCnn2dHParams | dict | None = None):
    """(n_mels, n_frames) -> frames over time -> LSTM (whole sequence) -> (n_frames, units, 1)
    -> Conv2D blocks -> flatten (or the mean over the clip's steps) -> dropout -> softmax.

    The padding frames (zero after scaling with ``features.mask_padding``,
    :mod:`speech_emotion.models.masking`) are masked: the LSTM skips them and outputs zeros there, so
    the conv blocks see the same values after the clip whatever the padding was, and ``global_avg``
    averages over the clip's steps only."""
    import keras
    from keras import layers

    from speech_emotion.models.masking import padding_mask, time_factor

    hp = LstmCnn2dHParams.coerce(hp)
    inputs = keras.Input(shape=_check_shape(input_shape, 2, "lstm_cnn_2d"), name="logmel")
    x = layers.Permute((2, 1), name="time_major")(inputs)
    x = layers.LSTM(hp.lstm_units, return_sequences=True, zero_output_for_mask=True, name="lstm")(
        x, mask=padding_mask(inputs, 1, "padding_mask"))
    x = layers.Reshape((x.shape[1], x.shape[2], 1), name="add_channel")(x)
    for i in range(hp.conv_blocks):
        x = conv_block(x, hp.filters_first if i == 0 else hp.filters_next, hp.kernel_size, 2, f"block{i + 1}")
    steps_mask = padding_mask(inputs, time_factor(inputs.shape[2], hp.conv_blocks), "pooled_padding_mask")
    outputs = _head(x, hp, n_classes, 2, time_mask=steps_mask)
    return compile_classifier(keras.Model(inputs, outputs, name="lstm_cnn_2d"), hp)
