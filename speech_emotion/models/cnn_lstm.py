"""CNN-LSTM family (seed section 5.1).

Convolutional blocks (Conv, BatchNorm, ELU, MaxPool) extract local features,
an LSTM reads them as a sequence and a softmax layer classifies.

- CNN2D-LSTM (5.1.2) reads the log-mel spectrogram; best hyperparameters in
  Table 3: kernel 5, 3 blocks, 128 then 256 filters, 48 LSTM units, Adam at 1e-4.
- CNN1D-LSTM (5.1.3) reads a 1-D vector (MFCC, MFCC + chroma, MFCC + chroma +
  mel) as a sequence of length L with one channel, Conv1D over the
  coefficients as in the Kaggle SER notebooks the seed builds on; Table 5:
  kernel 3, 2 blocks, 64 then 128 filters, 48 LSTM units, Adam at 2e-4,
  dropout 0.5.
- Fused CNN1D-2D-LSTM (5.1.4): both branches in parallel (MFCC and log-mel),
  their LSTM outputs concatenated before the softmax classifier.

Every family builds from a frozen hyperparameter dataclass (:class:`HParams`)
whose defaults are the seed's best values. Keras is imported inside the
builders only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

OPTIMIZERS: tuple[str, ...] = ("adam", "rmsprop")

#: BatchNormalization momentum of every conv block. Keras's default, 0.99,
#: averages the moving mean and variance over about 100 batches; the corpora
#: here give 7 (demo) to a few hundred (paper profile) batches per epoch, so
#: with 0.99 the statistics used at inference lag training for many epochs:
#: on a speaker split of real RAVDESS the CNN-Transformer sat at validation
#: accuracy 0.19-0.26 with a "diverging" validation loss while its training
#: accuracy climbed, and reached 0.41-0.44 from epoch 4 with 0.9 (PyTorch's
#: default). BENCHMARKS.md "BatchNorm momentum" has the figures.
BATCHNORM_MOMENTUM = 0.9


class HParams:
    """Behaviour shared by the frozen hyperparameter dataclasses of every family.

    ``from_dict`` rejects unknown keys and coerces values to the type of the
    field's default (so YAML's ``"1e-4"`` or keras-tuner's numpy scalars work);
    ``to_dict`` gives plain Python values, and ``from_dict(to_dict())`` returns
    an equal object. Values are checked on construction.
    """

    #: int fields that may be 0 (every other int field must be >= 1)
    ZERO_OK: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None):
        values = dict(values or {})
        defaults = {f.name: f.default for f in fields(cls)}
        unknown = set(values) - set(defaults)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} hyperparameters {sorted(unknown)}; known: {sorted(defaults)}"
            )
        return cls(**{name: _coerce(cls.__name__, name, value, defaults[name]) for name, value in values.items()})

    @classmethod
    def coerce(cls, hp: Any):
        """``hp`` itself if it is one of ``cls``, else ``cls.from_dict(hp)`` (a dict or None)."""
        if isinstance(hp, cls):
            return hp
        if hp is None or isinstance(hp, dict):
            return cls.from_dict(hp)
        raise TypeError(f"expected {cls.__name__} or a dict, got {type(hp).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == "optimizer" or f.name.endswith("_optimizer"):
                if str(value).lower() not in OPTIMIZERS:
                    raise ValueError(f"{name}.{f.name}: unknown optimizer {value!r}; known: {OPTIMIZERS}")
            elif f.name == "dropout" or f.name.endswith("_dropout"):
                if not 0.0 <= value < 1.0:
                    raise ValueError(f"{name}.{f.name} must be in [0, 1), got {value}")
            elif f.name == "learning_rate" or f.name.endswith("_learning_rate"):
                if not value > 0:
                    raise ValueError(f"{name}.{f.name} must be > 0, got {value}")
            elif isinstance(value, int) and not isinstance(value, bool):
                lowest = 0 if f.name in self.ZERO_OK else 1
                if value < lowest:
                    raise ValueError(f"{name}.{f.name} must be >= {lowest}, got {value}")


def _coerce(owner: str, name: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError("expected a bool")
            return value
        if isinstance(default, int):
            if isinstance(value, bool):
                raise TypeError("expected an int")
            as_float = float(value)
            if not math.isfinite(as_float) or as_float != int(as_float):
                raise TypeError("expected an integer")
            return int(as_float)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError("expected a number")
            return float(value)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise TypeError("expected a string")
            return value
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{owner}.{name}: invalid value {value!r} ({exc})") from None
    return value


@dataclass(frozen=True)
class CnnLstmHParams(HParams):
    """CNN2D-LSTM on the log-mel spectrogram; defaults: the seed's Table 3."""

    kernel_size: int = 5
    conv_blocks: int = 3
    filters_first: int = 128
    filters_next: int = 256
    lstm_units: int = 48
    dropout: float = 0.0
    learning_rate: float = 1e-4
    optimizer: str = "adam"


@dataclass(frozen=True)
class Cnn1dLstmHParams(HParams):
    """CNN1D-LSTM on a 1-D feature vector; defaults: the seed's Table 5."""

    kernel_size: int = 3
    conv_blocks: int = 2
    filters_first: int = 64
    filters_next: int = 128
    lstm_units: int = 48
    dropout: float = 0.5
    learning_rate: float = 2e-4
    optimizer: str = "adam"


#: the fields of a CNN-LSTM branch, shared by CnnLstmHParams and Cnn1dLstmHParams
BRANCH_FIELDS: tuple[str, ...] = ("kernel_size", "conv_blocks", "filters_first", "filters_next", "lstm_units", "dropout")


@dataclass(frozen=True)
class FusedCnnLstmHParams(HParams):
    """Fused CNN1D-2D-LSTM: the CNN1D branch (``cnn1d_*``, Table 5) on MFCC and the
    CNN2D branch (``cnn2d_*``, Table 3) on the log-mel; ``dropout`` acts on the
    concatenated LSTM outputs. The seed gives no table for the fused model: the
    learning rate is the CNN2D-LSTM's."""

    cnn1d_kernel_size: int = 3
    cnn1d_conv_blocks: int = 2
    cnn1d_filters_first: int = 64
    cnn1d_filters_next: int = 128
    cnn1d_lstm_units: int = 48
    cnn1d_dropout: float = 0.5
    cnn2d_kernel_size: int = 5
    cnn2d_conv_blocks: int = 3
    cnn2d_filters_first: int = 128
    cnn2d_filters_next: int = 256
    cnn2d_lstm_units: int = 48
    cnn2d_dropout: float = 0.0
    dropout: float = 0.0
    learning_rate: float = 1e-4
    optimizer: str = "adam"

    def branch(self, prefix: str) -> CnnLstmHParams:
        """The ``cnn1d`` or ``cnn2d`` branch's hyperparameters."""
        values = {name: getattr(self, f"{prefix}_{name}") for name in BRANCH_FIELDS}
        return CnnLstmHParams(**values, learning_rate=self.learning_rate, optimizer=self.optimizer)


# --------------------------------------------------------------------------- building blocks


def make_optimizer(name: str, learning_rate):
    import keras

    optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
    try:
        return optimizers[name.lower()](learning_rate=learning_rate)
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; known: {sorted(optimizers)}") from None


def conv_block(x, filters: int, kernel_size: int, dims: int, name: str, elu_first: bool = False):
    """Conv -> BatchNorm -> ELU -> MaxPool, the seed's building block (5.1.1); with ``elu_first``,
    Conv -> ELU -> BatchNorm -> MaxPool, the seed's CNN-Transformer block (5.3).

    Pooling halves every spatial axis; an axis already of length 1 (tiny demo
    inputs, deep search-space samples) is left as is instead of failing.
    """
    from keras import layers

    conv, pool = (layers.Conv2D, layers.MaxPooling2D) if dims == 2 else (layers.Conv1D, layers.MaxPooling1D)
    x = conv(filters, kernel_size, padding="same", name=f"{name}_conv")(x)
    norm = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_bn")
    elu = layers.ELU(name=f"{name}_elu")
    x = norm(elu(x)) if elu_first else elu(norm(x))
    spatial = tuple(x.shape[1 : 1 + dims])
    pool_size = tuple(2 if (n is None or n >= 2) else 1 for n in spatial)
    return pool(pool_size if dims == 2 else pool_size[0], name=f"{name}_pool")(x)


def compile_classifier(model, hp, extra_metrics: tuple | list = (), learning_rate=None):
    """Sparse categorical cross-entropy with the configured optimizer (``hp.optimizer``, ``hp.learning_rate``,
    or ``learning_rate``: a float or a Keras learning-rate schedule)."""
    model.compile(
        optimizer=make_optimizer(hp.optimizer, hp.learning_rate if learning_rate is None else learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", *extra_metrics],
    )
    return model


def classifier_head(x, n_classes: int, name: str = "classifier"):
    """Dense softmax, always float32 so mixed precision keeps a stable loss."""
    from keras import layers

    return layers.Dense(n_classes, activation="softmax", name=name, dtype="float32")(x)


def cnn2d_lstm_branch(inputs, hp, prefix: str = ""):
    """(n_mels, n_frames) -> conv blocks -> LSTM over the clip's time steps (:mod:`speech_emotion.models.masking`);
    returns the LSTM output (after dropout)."""
    from keras import layers

    from speech_emotion.models.masking import padding_mask, time_factor

    x = layers.Reshape((*inputs.shape[1:], 1), name=f"{prefix}add_channel")(inputs)
    for i in range(hp.conv_blocks):
        x = conv_block(x, hp.filters_first if i == 0 else hp.filters_next, hp.kernel_size, 2, f"{prefix}block{i + 1}")
    # (mel, time, channels) -> a sequence over time of (mel x channels) vectors
    x = layers.Permute((2, 1, 3), name=f"{prefix}time_major")(x)
    x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]), name=f"{prefix}to_sequence")(x)
    # the LSTM stops at the clip's last step: padding frames (zero after scaling) are skipped
    mask = padding_mask(inputs, time_factor(inputs.shape[2], hp.conv_blocks), f"{prefix}padding_mask")
    x = layers.LSTM(hp.lstm_units, name=f"{prefix}lstm")(x, mask=mask)
    if hp.dropout:
        x = layers.Dropout(hp.dropout, name=f"{prefix}dropout")(x)
    return x


def cnn1d_lstm_branch(inputs, hp, prefix: str = ""):
    """(L,) -> (L, 1) -> Conv1D blocks over the coefficients -> LSTM; returns the LSTM output (after dropout)."""
    from keras import layers

    x = layers.Reshape((inputs.shape[1], 1), name=f"{prefix}add_channel")(inputs)
    for i in range(hp.conv_blocks):
        x = conv_block(x, hp.filters_first if i == 0 else hp.filters_next, hp.kernel_size, 1, f"{prefix}block{i + 1}")
    x = layers.LSTM(hp.lstm_units, name=f"{prefix}lstm")(x)
    if hp.dropout:
        x = layers.Dropout(hp.dropout, name=f"{prefix}dropout")(x)
    return x


def _check_shape(input_shape, rank: int, family: str) -> tuple[int, ...]:
    shape = tuple(int(n) for n in input_shape)
    if len(shape) != rank:
        raise ValueError(f"{family} expects {rank}-D inputs per example, got shape {shape}")
    return shape


# --------------------------------------------------------------------------- builders


def build_cnn2d_lstm(input_shape: tuple[int, ...], n_classes: int, hp: CnnLstmHParams | dict | None = None):
    """Log-mel (n_mels, n_frames) -> conv blocks -> LSTM over time -> softmax."""
    import keras

    hp = CnnLstmHParams.coerce(hp)
    inputs = keras.Input(shape=_check_shape(input_shape, 2, "cnn2d_lstm"), name="logmel")
    outputs = classifier_head(cnn2d_lstm_branch(inputs, hp), n_classes)
    return compile_classifier(keras.Model(inputs, outputs, name="cnn2d_lstm"), hp)


def build_cnn1d_lstm(input_shape: tuple[int, ...], n_classes: int, hp: Cnn1dLstmHParams | dict | None = None):
    """1-D vector (L,) -> Conv1D blocks over the coefficients -> LSTM -> softmax."""
    import keras

    hp = Cnn1dLstmHParams.coerce(hp)
    inputs = keras.Input(shape=_check_shape(input_shape, 1, "cnn1d_lstm"), name="vector")
    outputs = classifier_head(cnn1d_lstm_branch(inputs, hp), n_classes)
    return compile_classifier(keras.Model(inputs, outputs, name="cnn1d_lstm"), hp)


def build_cnn_lstm_fused(
    input_shape: tuple[tuple[int, ...], tuple[int, ...]],
    n_classes: int,
    hp: FusedCnnLstmHParams | dict | None = None,
):
    """Two inputs, (MFCC (L,), log-mel (n_mels, n_frames)) in that order: both
    CNN-LSTM branches in parallel, LSTM outputs concatenated, softmax."""
    import keras
    from keras import layers

    hp = FusedCnnLstmHParams.coerce(hp)
    if len(input_shape) != 2:
        raise ValueError(f"cnn_lstm_fused expects two input shapes (mfcc, logmel), got {input_shape!r}")
    vector = keras.Input(shape=_check_shape(input_shape[0], 1, "cnn_lstm_fused (mfcc)"), name="mfcc")
    logmel = keras.Input(shape=_check_shape(input_shape[1], 2, "cnn_lstm_fused (logmel)"), name="logmel")
    x = layers.Concatenate(name="concat")(
        [cnn1d_lstm_branch(vector, hp.branch("cnn1d"), "mfcc_"), cnn2d_lstm_branch(logmel, hp.branch("cnn2d"), "logmel_")]
    )
    if hp.dropout:
        x = layers.Dropout(hp.dropout, name="dropout")(x)
    outputs = classifier_head(x, n_classes)
    return compile_classifier(keras.Model([vector, logmel], outputs, name="cnn_lstm_fused"), hp)
