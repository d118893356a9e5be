"""CNN-LSTM family (seed section 5.1).

Convolutional blocks (Conv, BatchNorm, ELU, MaxPool) extract local features,
an LSTM reads them as a sequence over time and a softmax layer classifies.
The CNN2D-LSTM reads the log-mel spectrogram (seed 5.1.2, best
hyperparameters in Table 3: kernel 5, 3 blocks, 128 then 256 filters, 48 LSTM
units, Adam at 1e-4).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class CnnLstmHParams:
    kernel_size: int = 5
    conv_blocks: int = 3
    filters_first: int = 128
    filters_next: int = 256
    lstm_units: int = 48
    dropout: float = 0.0
    learning_rate: float = 1e-4
    optimizer: str = "adam"

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "CnnLstmHParams":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} hyperparameters {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_optimizer(name: str, learning_rate: float):
    import keras

    optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
    try:
        return optimizers[name.lower()](learning_rate=learning_rate)
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; known: {sorted(optimizers)}") from None


def conv_block(x, filters: int, kernel_size: int, dims: int, name: str):
    """Conv -> BatchNorm -> ELU -> MaxPool, the seed's building block (5.1.1)."""
    from keras import layers

    conv, pool = (layers.Conv2D, layers.MaxPooling2D) if dims == 2 else (layers.Conv1D, layers.MaxPooling1D)
    x = conv(filters, kernel_size, padding="same", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.ELU(name=f"{name}_elu")(x)
    return pool(2, name=f"{name}_pool")(x)


def compile_classifier(model, hp: CnnLstmHParams):
    model.compile(
        optimizer=make_optimizer(hp.optimizer, hp.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_cnn2d_lstm(input_shape: tuple[int, ...], n_classes: int, hp: CnnLstmHParams):
    """Log-mel (n_mels, n_frames) -> conv blocks -> LSTM over time -> softmax."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=tuple(input_shape), name="logmel")
    x = layers.Reshape((*input_shape, 1), name="add_channel")(inputs)
    for i in range(hp.conv_blocks):
        x = conv_block(x, hp.filters_first if i == 0 else hp.filters_next, hp.kernel_size, 2, f"block{i + 1}")
    # (mel, time, channels) -> a sequence over time of (mel x channels) vectors
    x = layers.Permute((2, 1, 3), name="time_major")(x)
    x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]), name="to_sequence")(x)
    x = layers.LSTM(hp.lstm_units, name="lstm")(x)
    if hp.dropout:
        x = layers.Dropout(hp.dropout, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="classifier", dtype="float32")(x)
    return compile_classifier(keras.Model(inputs, outputs, name="cnn2d_lstm"), hp)
