"""The CNN2D-LSTM builds as the seed describes, trains, and round-trips through the Keras 3 materializer."""

from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.config import ModelConfig, TrainingConfig
from speech_emotion.models import get_family
from speech_emotion.models.cnn_lstm import CnnLstmHParams, build_cnn2d_lstm
from speech_emotion.training import train_model
from tests.synthetic import tiny_features

TINY = {"kernel_size": 3, "conv_blocks": 2, "filters_first": 4, "filters_next": 8, "lstm_units": 8, "learning_rate": 1e-2}


_features = tiny_features


def test_paper_cnn2d_lstm_matches_the_seed_size():
    model = build_cnn2d_lstm((128, 251), 7, CnnLstmHParams())
    assert model.output_shape == (None, 7)
    assert [l.name for l in model.layers if l.name.endswith("_conv")] == ["block1_conv", "block2_conv", "block3_conv"]
    assert model.get_layer("block1_conv").filters == 128 and model.get_layer("block3_conv").filters == 256
    assert model.get_layer("lstm").units == 48
    assert 3.0e6 < model.count_params() < 4.0e6  # seed: "3.3 M" (DESIGN) / "3.8 M" (Table 12)


def test_hparams_round_trip_and_unknown_keys():
    hp = CnnLstmHParams.from_dict(TINY)
    assert CnnLstmHParams.from_dict(hp.to_dict()) == hp
    with pytest.raises(ValueError, match="unknown CnnLstmHParams hyperparameters"):
        CnnLstmHParams.from_dict({"lstm": 3})
    assert get_family("cnn2d_lstm").input == "logmel"
    with pytest.raises(KeyError, match="unknown model family"):
        get_family("resnet")


def test_train_learns_and_materializer_round_trips(tmp_path):
    from materializers import TrainedModelMaterializer

    train, val = _features(70), _features(21, seed=1)
    trained = train_model(train, val, ModelConfig(hparams=TINY), TrainingConfig(epochs=8, batch_size=8, early_stopping_patience=8),
                          progress=False)
    assert len(trained.history["loss"]) == 8
    assert trained.history["loss"][-1] < trained.history["loss"][0]
    probs = trained.predict_proba(val)
    assert probs.shape == (21, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)

    mat = TrainedModelMaterializer(uri=str(tmp_path / "artifact"))
    (tmp_path / "artifact").mkdir()
    mat.save(trained)
    assert (tmp_path / "artifact" / "model.keras").exists()
    loaded = mat.load(type(trained))
    assert loaded.family == "cnn2d_lstm" and loaded.hparams == trained.hparams and loaded.history == trained.history
    np.testing.assert_allclose(loaded.predict_proba(val), probs, rtol=1e-5, atol=1e-6)
    assert mat.extract_metadata(trained)["n_params"] == trained.n_params


def test_trained_model_normalises_multi_input_names():
    from speech_emotion.models.trained import TrainedModel, model_inputs

    class _Model:  # predict_proba must not call the model on an empty set
        def predict(self, *args, **kwargs):
            raise AssertionError("not called")

    feats = _features(3)
    single = TrainedModel(model=_Model(), family="cnn2d_lstm", input_name="logmel", hparams={})
    assert single.input_name == "logmel" and single.inputs(feats).shape == (3, 16, 32)
    # meta.json gives a list back for the fused model's tuple of inputs
    fused = TrainedModel(model=_Model(), family="cnn_lstm_fused", input_name=["mfcc", "logmel"], hparams={},
                         classes=["a", "b"])
    assert fused.input_name == ("mfcc", "logmel") and fused.classes == ("a", "b")
    arrays = model_inputs(feats, fused.input_name)
    assert [a.shape for a in arrays] == [(3, 40), (3, 16, 32)] and all(a.dtype == np.float32 for a in arrays)
    assert fused.predict_proba(feats.subset(np.arange(0))).shape == (0, 2)
    assert get_family("cnn_lstm_fused").input == ("mfcc", "logmel")
