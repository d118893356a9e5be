"""CNN-Transformer family (seed section 5.3).

Four convolutional blocks (32, 64, 128, 256 filters by default: the first
block's count doubling at each block; each Conv -> ELU -> BatchNorm -> MaxPool,
the seed's order for this family) on the log-mel spectrogram, then a
transformer encoder block (Vaswani et al.: sinusoidal position encoding added
to the sequence, multi-head self-attention and a feed-forward network, each
with a residual connection and layer normalisation) over the time sequence of
(mel x channels) vectors, global average pooling over time, dropout and
softmax. About 2.0 M parameters on (128, 251) with the defaults (seed: 2.1 M).

Without the position encoding, self-attention cannot tell the frames' order
(it is permutation-equivariant); without a learning-rate warm-up, post-norm
attention at full learning rate from the first step is the usual cause of a
validation loss that diverges early (issue 11 saw it from epoch 2 on real
speech). The learning rate therefore rises linearly over ``warmup_steps``
batches to ``learning_rate`` (:func:`warmup_schedule_class`).

Keras stays lazy: the encoder block and the warm-up schedule are custom Keras
classes created on first use (by the builder and by
:func:`register_custom_objects`), registered as ``speech_emotion>TransformerEncoder``
and ``speech_emotion>LinearWarmup`` so ``.keras`` files load again; a process
that loads such a file without having built one must first call
``speech_emotion.models.register_custom_objects()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from speech_emotion.models.cnn_lstm import HParams, _check_shape, classifier_head, compile_classifier, conv_block
from speech_emotion.models.keras_objects import PACKAGE, custom_class
from speech_emotion.models.masking import padding_mask, time_factor

LAYER_NAME = "TransformerEncoder"
REGISTERED_NAME = f"{PACKAGE}>{LAYER_NAME}"
SCHEDULE_NAME = "LinearWarmup"


@dataclass(frozen=True)
class CnnTransformerHParams(HParams):
    """Defaults: the seed's architecture (5.3); the attention sizes are ours (the seed gives none).

    Block ``i`` (from 0) has ``filters_first * 2**i`` filters. ``d_model`` > 0
    projects the conv features to that width before the encoder (0: no
    projection, the encoder works on mel x channels features).
    ``position_encoding`` and ``warmup_steps`` (batches; 0: none) are not in the
    seed, which gives no training details for this family.
    """

    ZERO_OK: ClassVar[frozenset[str]] = frozenset({"d_model", "warmup_steps"})

    kernel_size: int = 3
    conv_blocks: int = 4
    filters_first: int = 32
    num_heads: int = 4
    key_dim: int = 32
    ff_dim: int = 128
    d_model: int = 0
    dropout: float = 0.1
    learning_rate: float = 1e-4
    optimizer: str = "adam"
    position_encoding: bool = True
    warmup_steps: int = 50

    def block_filters(self) -> list[int]:
        return [self.filters_first * 2**i for i in range(self.conv_blocks)]


def transformer_encoder_class() -> type:
    """The ``TransformerEncoder`` Keras layer (created on first call; imports Keras), registered with Keras."""
    return custom_class(LAYER_NAME, _define_transformer_encoder)


def warmup_schedule_class() -> type:
    """The ``LinearWarmup`` learning-rate schedule (created on first call), registered with Keras."""
    return custom_class(SCHEDULE_NAME, _define_warmup_schedule)


def _define_warmup_schedule(keras) -> type:
    @keras.saving.register_keras_serializable(package=PACKAGE, name=SCHEDULE_NAME)
    class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
        """``learning_rate * min(1, (step + 1) / warmup_steps)``: a linear rise over the first
        ``warmup_steps`` batches, then constant."""

        def __init__(self, learning_rate: float, warmup_steps: int):
            self.learning_rate = float(learning_rate)
            self.warmup_steps = int(warmup_steps)

        def __call__(self, step):
            from keras import ops

            done = (ops.cast(step, "float32") + 1.0) / float(max(1, self.warmup_steps))
            return self.learning_rate * ops.minimum(1.0, done)

        def get_config(self) -> dict[str, Any]:
            return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}

    LinearWarmup.__qualname__ = SCHEDULE_NAME
    LinearWarmup.__module__ = __name__
    return LinearWarmup


def sinusoidal_positions(length, depth: int, dtype="float32"):
    """Vaswani et al.'s position encoding, (length, depth): sin at even feature indices, cos at odd,
    wavelengths from 2 pi to 10000 * 2 pi."""
    from keras import ops

    position = ops.cast(ops.arange(length), "float32")[:, None]
    index = ops.arange(depth)
    rate = ops.power(10000.0, -ops.cast(2 * (index // 2), "float32") / float(depth))[None, :]
    angle = position * rate
    return ops.cast(ops.where((index % 2 == 0)[None, :], ops.sin(angle), ops.cos(angle)), dtype)


def _define_transformer_encoder(keras) -> type:
    from keras import layers

    @keras.saving.register_keras_serializable(package=PACKAGE, name=LAYER_NAME)
    class TransformerEncoder(layers.Layer):
        """Post-norm transformer encoder block over a (batch, time, features) sequence.

        x = inputs + PositionEncoding   (with ``position_encoding``; files saved without it load without)
        x = LayerNorm(x + Dropout(MultiHeadSelfAttention(x)))
        y = LayerNorm(x + Dropout(Dense(features)(Dense(ff_dim, relu)(x))))
        """

        def __init__(self, num_heads: int, key_dim: int, ff_dim: int, dropout: float = 0.0,
                     epsilon: float = 1e-6, position_encoding: bool = False, **kwargs: Any):
            super().__init__(**kwargs)
            self.position_encoding = bool(position_encoding)
            self.num_heads = int(num_heads)
            self.key_dim = int(key_dim)
            self.ff_dim = int(ff_dim)
            self.rate = float(dropout)
            self.epsilon = float(epsilon)
            policy = self.dtype_policy
            self.attention = layers.MultiHeadAttention(
                num_heads=self.num_heads, key_dim=self.key_dim, dropout=self.rate, dtype=policy, name="attention"
            )
            self.ffn_in = layers.Dense(self.ff_dim, activation="relu", dtype=policy, name="ffn_in")
            self.ffn_out = None  # width of the input: created in build()
            self.norm_attention = layers.LayerNormalization(epsilon=self.epsilon, dtype=policy, name="norm_attention")
            self.norm_ffn = layers.LayerNormalization(epsilon=self.epsilon, dtype=policy, name="norm_ffn")
            self.drop_attention = layers.Dropout(self.rate, dtype=policy, name="drop_attention")
            self.drop_ffn = layers.Dropout(self.rate, dtype=policy, name="drop_ffn")

        def build(self, input_shape):
            input_shape = tuple(input_shape)
            features = int(input_shape[-1])
            self.ffn_out = layers.Dense(features, dtype=self.dtype_policy, name="ffn_out")
            self.attention.build(input_shape, input_shape)
            self.norm_attention.build(input_shape)
            self.ffn_in.build(input_shape)
            self.ffn_out.build((*input_shape[:-1], self.ff_dim))
            self.norm_ffn.build(input_shape)
            super().build(input_shape)

        def call(self, inputs, mask=None, training=None):
            from keras import ops

            if self.position_encoding:
                inputs = inputs + sinusoidal_positions(ops.shape(inputs)[1], inputs.shape[-1], inputs.dtype)[None]
            # (batch, steps) bool mask of the clip's steps: no step attends to the padding
            keys = None if mask is None else ops.repeat(ops.expand_dims(mask, 1), ops.shape(inputs)[1], axis=1)
            attended = self.attention(inputs, inputs, attention_mask=keys, training=training)
            x = self.norm_attention(inputs + self.drop_attention(attended, training=training))
            y = self.ffn_out(self.ffn_in(x))
            return self.norm_ffn(x + self.drop_ffn(y, training=training))

        def compute_output_shape(self, input_shape):
            return tuple(input_shape)

        def compute_mask(self, inputs, mask=None):
            return mask

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config.update(
                num_heads=self.num_heads, key_dim=self.key_dim, ff_dim=self.ff_dim,
                dropout=self.rate, epsilon=self.epsilon, position_encoding=self.position_encoding,
            )
            return config

    TransformerEncoder.__qualname__ = LAYER_NAME
    TransformerEncoder.__module__ = __name__
    return TransformerEncoder


def __getattr__(name: str):  # ``from speech_emotion.models.cnn_transformer import TransformerEncoder``
    if name == LAYER_NAME:
        return transformer_encoder_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_custom_objects() -> dict[str, type]:
    """Register this family's custom Keras objects; returns them as ``custom_objects`` for ``load_model``."""
    return {REGISTERED_NAME: transformer_encoder_class(), f"{PACKAGE}>{SCHEDULE_NAME}": warmup_schedule_class()}


def build_cnn_transformer(input_shape: tuple[int, ...], n_classes: int, hp: CnnTransformerHParams | dict | None = None):
    """Log-mel (n_mels, n_frames) -> conv blocks -> transformer encoder over time -> mean over time -> softmax."""
    import keras
    from keras import layers

    hp = CnnTransformerHParams.coerce(hp)
    encoder_cls = transformer_encoder_class()
    inputs = keras.Input(shape=_check_shape(input_shape, 2, "cnn_transformer"), name="logmel")
    x = layers.Reshape((*inputs.shape[1:], 1), name="add_channel")(inputs)
    for i, filters in enumerate(hp.block_filters()):
        x = conv_block(x, filters, hp.kernel_size, 2, f"block{i + 1}", elu_first=True)
    x = layers.Permute((2, 1, 3), name="time_major")(x)
    x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]), name="to_sequence")(x)
    if hp.d_model:
        x = layers.Dense(hp.d_model, name="projection")(x)
    mask = padding_mask(inputs, time_factor(inputs.shape[2], hp.conv_blocks), "padding_mask")
    x = encoder_cls(hp.num_heads, hp.key_dim, hp.ff_dim, hp.dropout, position_encoding=hp.position_encoding,
                    name="transformer")(x, mask=mask)
    x = layers.GlobalAveragePooling1D(name="time_pool")(x, mask=mask)  # the mean over the clip's steps
    if hp.dropout:
        x = layers.Dropout(hp.dropout, name="dropout")(x)
    outputs = classifier_head(x, n_classes)
    schedule = warmup_schedule_class()(hp.learning_rate, hp.warmup_steps) if hp.warmup_steps else None
    return compile_classifier(keras.Model(inputs, outputs, name="cnn_transformer"), hp, learning_rate=schedule)
