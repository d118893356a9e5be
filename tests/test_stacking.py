"""Stacking ensemble (seed 6.2): seven frozen binary CNN2D-LSTMs and an MLP, one .keras file."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from pydantic import ValidationError

from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.models.cnn_lstm import CnnLstmHParams
from speech_emotion.models.stacking import (
    META_LAYERS,
    StackingConfig,
    base_model_name,
    base_probabilities,
    binary_class_weights,
    build_binary_cnn2d_lstm,
    train_stacking,
)
from tests.synthetic import tiny_features

TINY = {"kernel_size": 3, "conv_blocks": 2, "filters_first": 4, "filters_next": 8, "lstm_units": 8, "learning_rate": 1e-2}


_features = tiny_features


class _Recorder:
    """callbacks_factory that records the stages, and each stage's model weights when its training ended
    (after early stopping restored the best) and, for the meta stage, when it began."""

    def __init__(self):
        import keras

        self.stages: list[str] = []
        self.before: dict[str, list] = {}
        self.after: dict[str, dict[str, list]] = {}
        recorder = self

        def snapshot(model):
            return {l.name: [w.copy() for w in l.get_weights()] for l in model.layers}

        class Snap(keras.callbacks.Callback):
            def __init__(self, stage):
                super().__init__()
                self.stage = stage

            def on_train_begin(self, logs=None):
                recorder.before[self.stage] = snapshot(self.model)

            def on_train_end(self, logs=None):
                recorder.after[self.stage] = snapshot(self.model)

        self.snap = Snap

    def __call__(self, stage: str):
        self.stages.append(stage)
        return [self.snap(stage)]


CONFIG = StackingConfig(base_hparams={**TINY, "dropout": 0.3}, meta_units=16, base_epochs=1, meta_epochs=2,
                        batch_size=16, early_stopping_patience=2)


@pytest.fixture(scope="module")
def stacked():
    """One tiny stacking run; the training split has no "surprise" clip (the absent-class guard)."""
    train, val = _features(42, 0, n_classes=6), _features(21, 1)
    config = CONFIG
    recorder = _Recorder()
    logger = logging.getLogger("speech_emotion.models.stacking")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        trained = train_stacking(train, val, config, callbacks_factory=recorder)
    finally:
        logger.removeHandler(handler)
    return trained, val, recorder, records


def test_stacking_structure_frozen_bases_and_meta(stacked):
    trained, val, recorder, records = stacked
    model = trained.model
    assert trained.family == "stacking" and trained.input_name == "logmel"
    assert model.input_shape == (None, 16, 32) and model.output_shape == (None, 7)
    for emotion in EMOTIONS:
        base = model.get_layer(base_model_name(emotion))
        assert not base.trainable and base.trainable_weights == [] and base.non_trainable_weights
        head = base.get_layer("binary_output")
        assert head.units == 1 and head.activation.__name__ == "sigmoid"
        assert base.get_layer("lstm").units == 8
    trainable = {l.name for l in model.layers if l.trainable_weights}
    assert trainable == {"meta_dense", "meta_output"}
    assert model.get_layer("meta_dense").units == 16 and model.get_layer("meta_dropout").rate == 0.4
    assert model.get_layer("representations").output.shape == (None, 7 * 8)
    # the meta stage changed the meta layers of the stacking model, and only those: every base is exactly
    # the binary model its stage ended with (frozen BatchNorm statistics included)
    assert recorder.stages == [base_model_name(e) for e in EMOTIONS] + ["meta"]
    for emotion in EMOTIONS:
        trained_binary = recorder.after[base_model_name(emotion)]
        for layer in model.get_layer(base_model_name(emotion)).layers:
            assert all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), trained_binary[layer.name])), layer.name
    for name in ("meta_dense", "meta_output"):
        assert all(np.array_equal(a, b) for a, b in zip(model.get_layer(name).get_weights(), recorder.after["meta"][name]))
        assert not all(np.array_equal(a, b) for a, b in zip(recorder.before["meta"][name], recorder.after["meta"][name]))
    assert set(META_LAYERS) <= {l.name for l in model.layers}
    # the absent class was trained anyway, with a warning
    assert any("surprise" in r.getMessage() for r in records)


def test_each_base_is_the_binary_model_its_emotion_gives_when_trained_alone(stacked):
    """One model object trains the seven bases (TensorFlow traces its steps once), each from the initial
    weights of its own freshly built binary model and a fresh optimizer: a base late in the order must be
    the model trained alone, from a fresh build with its seed, dropout and optimizer state included."""
    import keras
    import tensorflow as tf

    from speech_emotion.models.stacking import _one_vs_rest_dataset

    trained, val, *_ = stacked
    train = _features(42, 0, n_classes=6)
    x_train, x_val = (np.asarray(f.logmel, np.float32) for f in (train, val))
    y_train, y_val = (np.asarray(f.labels, np.int64) for f in (train, val))
    k = 4
    weights = binary_class_weights(y_train == k)
    keras.utils.set_random_seed(CONFIG.seed + k)
    alone = build_binary_cnn2d_lstm(x_train.shape[1:], CONFIG.base_hp(), name="alone")
    assert any(isinstance(l, keras.layers.Dropout) and l.rate == 0.3 for l in alone.layers)
    alone.fit(_one_vs_rest_dataset(tf.data.Dataset.from_tensor_slices((x_train, y_train)), k, weights,
                                   CONFIG.batch_size, True, CONFIG.seed + k),
              validation_data=_one_vs_rest_dataset(tf.data.Dataset.from_tensor_slices((x_val, y_val)), k, weights,
                                                   CONFIG.batch_size, False, CONFIG.seed + k),
              epochs=CONFIG.base_epochs, verbose=0, shuffle=False,
              callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=CONFIG.early_stopping_patience,
                                                       restore_best_weights=True)])
    base = trained.model.get_layer(base_model_name(EMOTIONS[k]))
    for layer in alone.layers:
        for a, b in zip(layer.get_weights(), base.get_layer(layer.name).get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=layer.name)
    keras.utils.set_random_seed(CONFIG.seed + k)  # the base's own initial weights: training moved them
    initial = build_binary_cnn2d_lstm(x_train.shape[1:], CONFIG.base_hp(), name="untrained")
    assert not all(np.allclose(a, b) for a, b in zip(initial.get_weights(), base.get_weights()))


def test_meta_stage_trained_the_stacking_models_own_layers(stacked):
    """The meta layers train on the representations computed once; the stacking model, running its bases on
    the clips, scores the validation split as the meta stage's best epoch did."""
    trained, val, *_ = stacked
    probs = trained.model.predict(np.asarray(val.logmel, np.float32), verbose=0)
    loss = -np.log(probs[np.arange(len(val)), np.asarray(val.labels)]).mean()
    assert loss == pytest.approx(min(trained.history["val_loss"]), rel=1e-4)


def test_stacking_history_and_hparams(stacked):
    trained, *_ = stacked
    for emotion in EMOTIONS:
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert len(trained.history[f"base_{emotion}_{key}"]) == 1
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert len(trained.history[key]) == 2
    assert trained.hparams["base_hparams"] == CnnLstmHParams.from_dict(CONFIG.base_hparams).to_dict()
    assert StackingConfig(**trained.hparams).base_hp() == CnnLstmHParams.from_dict(CONFIG.base_hparams)


def test_stacking_predicts_and_round_trips_as_one_keras_file(stacked, tmp_path):
    import keras

    trained, val, *_ = stacked
    probs = trained.predict_proba(val)
    assert probs.shape == (21, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    binary = base_probabilities(trained.model, val.logmel)
    assert binary.shape == (21, 7) and ((binary >= 0) & (binary <= 1)).all()

    path = tmp_path / "stacking.keras"
    trained.model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(val.logmel, verbose=0), probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(base_probabilities(loaded, val.logmel), binary, rtol=1e-5, atol=1e-6)
    assert {l.name for l in loaded.layers if l.trainable_weights} == {"meta_dense", "meta_output"}
    assert all(loaded.get_layer(base_model_name(e)).trainable_weights == [] for e in EMOTIONS)


def test_binary_model_and_class_weights():
    model = build_binary_cnn2d_lstm((16, 32), CnnLstmHParams.from_dict(CONFIG.base_hparams), name="binary_fear")
    assert model.output_shape == (None, 1) and model.loss == "binary_crossentropy"
    assert [l.name for l in model.layers if l.name.endswith("_conv")] == ["block1_conv", "block2_conv"]
    # one-vs-rest 1:6 -> balanced weights; an absent class gets weight 1 (no division by zero)
    w = binary_class_weights(np.arange(70) % 7 == 0)
    assert w[1] == pytest.approx(70 / (2 * 10)) and w[0] == pytest.approx(70 / (2 * 60))
    assert binary_class_weights(np.zeros(10, bool)) == {0: 1.0, 1: 1.0}
    assert binary_class_weights(np.arange(70) % 7 == 0, balanced=False) == {0: 1.0, 1: 1.0}


def test_stacking_config_validation():
    assert StackingConfig().meta_units == 512 and StackingConfig().meta_dropout == 0.4
    assert StackingConfig().base_hp() == CnnLstmHParams()  # the seed's Table 3
    with pytest.raises(ValidationError, match="unknown CnnLstmHParams"):
        StackingConfig(base_hparams={"lstm": 3})
    with pytest.raises(ValidationError):
        StackingConfig(epochs=3)
    with pytest.raises(ValueError, match="non-empty"):
        train_stacking(_features(7, 0), _features(0, 1), StackingConfig(base_hparams=TINY))
