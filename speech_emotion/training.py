"""Training loop: tf.data input, early stopping on the validation split, optional mixed precision."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from speech_emotion.calibration import apply_temperature, expected_calibration_error, fit_temperature
from speech_emotion.config import ModelConfig, TrainingConfig
from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.datasets import Inputs, make_dataset
from speech_emotion.features import FeatureSet
from speech_emotion.models import get_family
from speech_emotion.models.trained import TrainedModel, model_inputs

logger = logging.getLogger(__name__)


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) and make TensorFlow's ops
    deterministic (``tf.config.experimental.enable_op_determinism``), on GPUs too. Process-wide."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def class_weights(labels: np.ndarray, mode: str, n_classes: int) -> dict[int, float] | None:
    """Keras ``class_weight`` for ``training.class_weights``: None for ``none``; for ``balanced``,
    sklearn's ``compute_class_weight("balanced")`` over the classes present, 1.0 for absent ones."""
    if mode == "none":
        return None
    if mode != "balanced":
        raise ValueError(f"training.class_weights {mode!r}: expected 'none' or 'balanced'")
    from sklearn.utils.class_weight import compute_class_weight

    y = np.asarray(labels).astype(np.int64)
    present = np.unique(y)
    weights = dict.fromkeys(range(n_classes), 1.0)
    if len(present):
        weights.update(zip(present.tolist(), compute_class_weight("balanced", classes=present, y=y).tolist()))
    return weights


def input_shapes(x: Inputs) -> tuple[int, ...] | tuple[tuple[int, ...], ...]:
    """Per-example shape of ``x``, or the tuple of them for a list of arrays (what a family's builder takes)."""
    if isinstance(x, (list, tuple)):
        return tuple(tuple(a.shape[1:]) for a in x)
    return tuple(x.shape[1:])


def train_model(
    train: FeatureSet,
    val: FeatureSet,
    model_config: ModelConfig,
    training: TrainingConfig,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
) -> TrainedModel:
    """Build the configured family and train it, keeping the epoch with the best validation loss."""
    import keras

    if training.deterministic:
        make_deterministic(training.seed)
    keras.utils.set_random_seed(training.seed)
    keras.mixed_precision.set_global_policy("mixed_float16" if training.mixed_precision else "float32")

    family = get_family(model_config.family)
    hp = family.hparams.from_dict(model_config.hparams)
    x_train = model_inputs(train, family.input)
    x_val = model_inputs(val, family.input)
    model = family.build(input_shapes(x_train), len(EMOTIONS), hp)
    logger.info("training %s (%d parameters) on %d clips", family.name, model.count_params(), len(train))

    early = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=training.early_stopping_patience, restore_best_weights=True
    )
    history = model.fit(
        make_dataset(x_train, train.labels, training.batch_size, True, training.seed),
        validation_data=make_dataset(x_val, val.labels, training.batch_size, False, training.seed),
        epochs=training.epochs,
        callbacks=[early, *callbacks],
        class_weight=class_weights(train.labels, training.class_weights, len(EMOTIONS)),
        shuffle=False,  # the training dataset shuffles itself every epoch
        verbose=2 if progress else 0,
    )
    return TrainedModel(
        model=model,
        family=family.name,
        input_name=family.input,
        hparams=hp.to_dict(),
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
        feature_params=dict(train.params),
        scaled=train.scaled,
    )


@dataclass
class Calibration:
    """What :func:`calibrate` fitted, and the validation probabilities before and after it."""

    temperature: float
    ece_before: float
    ece_after: float
    probs_before: np.ndarray
    probs_after: np.ndarray
    labels: np.ndarray


def calibrate(trained: TrainedModel, val: FeatureSet, mode: str) -> Calibration | None:
    """``training.calibration``: for ``temperature``, fit the temperature on the validation split's
    uncalibrated probabilities and set ``trained.temperature``; None (nothing changed) for ``none``
    or an empty validation split. With one class in validation the fit keeps 1.0."""
    if mode == "none" or len(val) == 0:
        return None
    if mode != "temperature":
        raise ValueError(f"training.calibration {mode!r}: expected 'none' or 'temperature'")
    labels = np.asarray(val.labels).astype(np.int64)
    before = trained.predict_proba(val, calibrated=False)
    trained.temperature = fit_temperature(before, labels)
    after = apply_temperature(before, trained.temperature)
    result = Calibration(trained.temperature, expected_calibration_error(before, labels),
                         expected_calibration_error(after, labels), before, after, labels)
    logger.info("%s: temperature %.3f fitted on %d validation clips; ECE %.4f -> %.4f", trained.name,
                result.temperature, len(labels), result.ece_before, result.ece_after)
    return result
