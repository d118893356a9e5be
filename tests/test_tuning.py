"""Hyperband tuning of a family: the seed's search spaces, the F1-macro objective, trial records, the table."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from pydantic import ValidationError

from speech_emotion.config import ModelConfig, TrainingConfig
from speech_emotion.tuning import TrialRecord, TuningConfig, tune_family
import functools
from tests.synthetic import tiny_features

#: a tiny space: two choices per tuned hyperparameter, everything else fixed small
TINY_SPACE = {"kernel_size": [3], "conv_blocks": [1, 2], "filters_first": [4, 8], "filters_next": [8],
              "lstm_units": [8, 12], "learning_rate": [1e-2, 1e-3], "optimizer": ["adam"]}


_features = functools.partial(tiny_features, frames=24)


def test_f1_macro_metric_matches_the_project_definition():
    """Tuning, evaluation and the GA share one F1-macro: over the classes present in the labels."""
    from sklearn.metrics import f1_score

    from speech_emotion.evaluation import evaluate_probabilities, f1_macro
    from speech_emotion.models.hypermodels import SparseF1Macro

    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 50)  # class 6 never occurs in the labels (surprise on CREMA-D)...
    probs = rng.random((50, 7)).astype(np.float32)
    probs[:25, 6] = 2  # ...but is predicted: its errors count as false positives, not as a class
    metric = SparseF1Macro(7)
    metric.update_state(y[:20], probs[:20])  # accumulated over batches
    metric.update_state(y[20:], probs[20:])
    expected = f1_score(y, probs.argmax(1), labels=np.unique(y), average="macro")
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    assert f1_macro(y, probs.argmax(1)) == pytest.approx(expected, abs=1e-12)
    ev = evaluate_probabilities("m", "val", probs, y, np.array(["crema"] * 50))
    assert ev.f1_macro == pytest.approx(expected, abs=1e-12)
    assert ev.per_origin.loc["crema", "f1_macro"] == pytest.approx(expected, abs=1e-12)
    per_class = f1_score(y, probs.argmax(1), labels=np.arange(7), average=None, zero_division=0)
    np.testing.assert_allclose(ev.per_class["f1"].to_numpy(), per_class, atol=1e-12)
    assert expected != pytest.approx(f1_score(y, probs.argmax(1), average="macro"))  # the case matters
    metric.reset_state()
    metric.update_state(y[:5], np.eye(7, dtype=np.float32)[y[:5]])
    assert float(metric.result()) == pytest.approx(1.0)


def test_search_spaces_are_the_seeds_and_scale_down():
    from speech_emotion.models import FAMILIES
    from speech_emotion.models.hypermodels import IntRange, search_space, space_values

    space = search_space("cnn2d_lstm")  # seed 5.1.2
    assert space == {
        "kernel_size": (3, 5), "conv_blocks": IntRange(1, 4, 1), "filters_first": (32, 64, 128),
        "filters_next": (64, 128, 256), "lstm_units": IntRange(32, 64, 4), "learning_rate": (1e-3, 1e-4, 1e-5),
        "optimizer": ("adam", "rmsprop"),
    }
    assert space_values(space)["lstm_units"] == list(range(32, 65, 4))
    for name, family in FAMILIES.items():  # the seed's best values lie in every default space
        values = space_values(search_space(name))
        for key, default in family.hparams().to_dict().items():
            if key in values:
                assert default in values[key], (name, key, default)
    assert "dropout" in search_space("cnn1d_lstm") and "dropout" in search_space("lstm_cnn_1d")

    small = search_space("cnn1d_lstm", {"filters_first": [4, 8], "dropout": [0, 0.5], "lstm_units": 8,
                                        "conv_blocks": {"min": 1, "max": 2}, "optimizer": None})
    assert small["filters_first"] == (4, 8) and small["dropout"] == (0.0, 0.5) and small["lstm_units"] == (8,)
    assert small["conv_blocks"] == IntRange(1, 2, 1) and "optimizer" not in small
    assert search_space("cnn2d_lstm", {"dropout": [0.0, 0.3]})["dropout"] == (0.0, 0.3)  # not tuned by default
    with pytest.raises(ValueError, match="unknown CnnLstmHParams hyperparameter 'units'"):
        search_space("cnn2d_lstm", {"units": [8]})
    with pytest.raises(ValueError, match="dropout"):
        search_space("cnn1d_lstm", {"dropout": [0.2, 1.0]})
    with pytest.raises(ValueError, match="integer"):
        search_space("cnn1d_lstm", {"learning_rate": {"min": 1e-4, "max": 1e-2}})


def test_tuning_config():
    config = TuningConfig()
    assert (config.enabled, config.objective, config.max_epochs, config.factor, config.hyperband_iterations,
            config.batch_size, config.seed, config.space, config.executions_per_trial) == (
        True, "val_f1_macro", 10, 3, 1, 32, 0, {}, 1)
    with pytest.raises(ValidationError):
        TuningConfig(objective="accuracy")
    with pytest.raises(ValidationError):
        TuningConfig(max_epoch=3)
    with pytest.raises(ValueError, match="disabled"):
        tune_family("cnn2d_lstm", _features(7), _features(7), TuningConfig(enabled=False), "unused")


def test_hyperband_on_f1_macro_records_every_trial_and_feeds_training(tmp_path):
    from speech_emotion.models.hypermodels import search_space, space_values
    from speech_emotion.training import train_model

    train, val = _features(28), _features(14, seed=1)
    config = TuningConfig(max_epochs=2, factor=2, batch_size=14, space=TINY_SPACE, seed=1)
    records: list[TrialRecord] = []
    frozen: list[int] = []

    def on_trial_end(record: TrialRecord) -> None:
        records.append(record)
        frozen.append(gc.get_freeze_count())

    result = tune_family("cnn2d_lstm", train, val, config, tmp_path / "tuning", on_trial_end=on_trial_end)
    # the objects from before the search sit out keras-tuner's per-trial collections, and only during it
    assert min(frozen) > 0 and gc.get_freeze_count() == 0

    # max_epochs=2, factor=2: brackets of 2 configs (1 epoch, then the best for 2) and 2 configs (2 epochs)
    assert len(records) == len(result.trials) == 5
    assert [r.trial_id for r in records] == list(result.trials["trial_id"])
    assert all(r.status == "COMPLETED" and r.score is not None for r in records)
    for r in records:
        assert r.score == pytest.approx(r.metrics["val_f1_macro"])
        assert {"loss", "val_loss", "val_accuracy", "f1_macro"} <= set(r.metrics)
        assert r.epochs in (1, 2) and r.initial_epoch in (0, 1)
    assert any(r.resumed_from is not None for r in records)  # Hyperband continues the best of round 0

    allowed = space_values(search_space("cnn2d_lstm", TINY_SPACE))
    assert set(result.best_hparams) == {"kernel_size", "conv_blocks", "filters_first", "filters_next", "lstm_units",
                                        "dropout", "learning_rate", "optimizer"}
    for key, values in allowed.items():
        assert result.best_hparams[key] in values
    assert result.best_score == pytest.approx(max(r.score for r in records))
    assert result.best_hparams == next(r.hparams for r in records if r.trial_id == result.best_trial_id)

    table = result.trials
    assert {"trial_id", "status", "score", "epochs", *allowed} <= set(table.columns)
    assert table["score"].notna().all()

    trained = train_model(train, val, ModelConfig(family="cnn2d_lstm", hparams=result.best_hparams),
                          TrainingConfig(epochs=1, batch_size=14, early_stopping_patience=0), progress=False)
    assert trained.hparams == result.best_hparams


def test_hyperband_on_val_loss_tunes_the_two_input_model(tmp_path):
    space = {
        "cnn1d_kernel_size": [3], "cnn1d_conv_blocks": [1], "cnn1d_filters_first": [4], "cnn1d_filters_next": [4], "cnn1d_lstm_units": [4, 8],
        "cnn1d_dropout": [0.0], "cnn2d_kernel_size": [3], "cnn2d_conv_blocks": [1], "cnn2d_filters_first": [4],
        "cnn2d_filters_next": [4], "cnn2d_lstm_units": [4], "dropout": [0.0], "learning_rate": [1e-2, 1e-3],
        "optimizer": ["adam"],
    }
    config = TuningConfig(objective="val_loss", max_epochs=2, factor=2, batch_size=14, space=space)
    seen: list[TrialRecord] = []
    result = tune_family("cnn_lstm_fused", _features(21), _features(14, seed=1), config, tmp_path,
                         on_trial_end=seen.append)
    assert len(seen) == len(result.trials) >= 2
    assert result.best_score == pytest.approx(min(r.score for r in seen))
    assert all(r.score == pytest.approx(r.metrics["val_loss"]) for r in seen)
    assert result.best_hparams["cnn1d_lstm_units"] in (4, 8) and result.best_hparams["learning_rate"] in (1e-2, 1e-3)
    assert result.best_hparams["cnn2d_filters_next"] == 4 and result.best_hparams["cnn1d_kernel_size"] == 3


def test_every_family_searches_its_learning_rate():
    """The learning rate decides whether a family converges on real speech (issue 11): every default
    search space holds it, and overriding other hyperparameters keeps it."""
    from speech_emotion.models import FAMILIES
    from speech_emotion.models.hypermodels import search_space

    for name in FAMILIES:
        assert len(search_space(name)["learning_rate"]) > 1, name
        assert "learning_rate" in search_space(name, {"optimizer": ["adam"]}), name
