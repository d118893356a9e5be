"""Temperature scaling (issue 11): fitted on validation, keeps the predicted classes, lowers ECE;
the temperature travels with the model through the materializer and the predictor folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speech_emotion.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    reliability_figure,
)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def overconfident(n: int = 4000, n_classes: int = 7, sharpen: float = 3.0, seed: int = 0):
    """Labels drawn from well-calibrated probabilities ``softmax(z)``, and the over-confident
    ``softmax(sharpen * z)`` a model would report for them."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, n_classes)) * 1.5
    calibrated = _softmax(z)
    labels = np.array([rng.choice(n_classes, p=p) for p in calibrated])
    return _softmax(sharpen * z).astype(np.float32), labels, calibrated


def test_overconfident_probabilities_get_t_above_one_and_a_lower_ece():
    probs, labels, _ = overconfident()
    t = fit_temperature(probs, labels)
    assert 2.5 < t < 3.5  # the sharpening it undoes
    after = apply_temperature(probs, t)
    before_ece, after_ece = expected_calibration_error(probs, labels), expected_calibration_error(after, labels)
    assert after_ece < before_ece / 2
    assert after_ece < 0.03
    # fitted on one half, it helps on the other (what fitting on validation and reporting on test does)
    held_probs, held_labels, _ = overconfident(seed=1)
    assert expected_calibration_error(apply_temperature(held_probs, t), held_labels) < \
        expected_calibration_error(held_probs, held_labels)


def test_underconfident_probabilities_get_t_below_one():
    probs, labels, _ = overconfident(sharpen=0.4)
    assert fit_temperature(probs, labels) < 1.0


def test_temperature_keeps_predicted_classes_and_sums():
    probs, _, _ = overconfident(n=500)
    for t in (0.3, 0.9, 1.7, 5.0, 20.0):
        out = apply_temperature(probs, t)
        assert out.dtype == probs.dtype and out.shape == probs.shape
        np.testing.assert_array_equal(out.argmax(axis=1), probs.argmax(axis=1))
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_temperature_one_is_identity():
    probs, _, _ = overconfident(n=50)
    assert apply_temperature(probs, 1.0) is probs
    assert apply_temperature(probs[:0], 2.0).shape == (0, 7)
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(probs, 0.0)


def test_fit_falls_back_to_one_without_labels_or_with_one_class():
    probs, _, _ = overconfident(n=40)
    assert fit_temperature(probs[:0], np.zeros(0, int)) == 1.0
    assert fit_temperature(probs, np.zeros(40, int)) == 1.0
    # one-hot 0/1 probabilities survive the log (clipped)
    onehot = np.eye(7, dtype=np.float32)[np.arange(40) % 7]
    assert np.isfinite(fit_temperature(onehot, np.arange(40) % 7))


def test_ece_by_hand_and_empty():
    assert np.isnan(expected_calibration_error(np.zeros((0, 3)), np.zeros(0, int)))
    # two clips at 0.9 (one right), two at 0.6 (both right): |0.5-0.9|*2/4 + |1-0.6|*2/4 = 0.4
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.4)
    _, counts, confidence, accuracy = reliability_bins(probs, labels, n_bins=10)
    assert counts.sum() == 4 and counts[8] == 2 and counts[5] == 2
    assert confidence[8] == pytest.approx(0.9) and accuracy[8] == pytest.approx(0.5)
    # perfectly confident and right: no calibration error
    assert expected_calibration_error(np.eye(3), np.arange(3)) == pytest.approx(0.0)


def test_reliability_figure_draws():
    from speech_emotion.reports import figure_png

    probs, labels, _ = overconfident(n=300)
    png = figure_png(reliability_figure(probs, apply_temperature(probs, 3.0), labels, "test"))
    assert png[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- the model carries its temperature


def _tiny_keras(n_in: int = 4, n_classes: int = 3):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((n_in,))
    outputs = keras.layers.Dense(n_classes, activation="softmax")(keras.layers.Dense(8, activation="relu")(inputs))
    return keras.Model(inputs, outputs)


class _Features:
    """The least a TrainedModel reads: ``input(name)`` and ``len``."""

    def __init__(self, x):
        self.x = x

    def input(self, name):
        return self.x

    def __len__(self):
        return len(self.x)


def _tiny_trained(temperature: float = 1.0):
    from speech_emotion.models.trained import TrainedModel

    return TrainedModel(model=_tiny_keras(), family="tiny", input_name="mfcc", hparams={}, classes=("a", "b", "c"),
                        temperature=temperature)


def test_predict_proba_applies_the_temperature():
    features = _Features(np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32) * 4)
    trained = _tiny_trained(2.5)
    raw = np.asarray(trained.model.predict(features.x, verbose=0), dtype=np.float32)
    out = trained.predict_proba(features)
    np.testing.assert_allclose(out, apply_temperature(raw, 2.5), rtol=1e-5, atol=1e-6)
    assert not np.allclose(out, raw)
    np.testing.assert_array_equal(out.argmax(1), raw.argmax(1))
    # the uncalibrated probabilities stay available
    np.testing.assert_allclose(trained.predict_proba(features, calibrated=False), raw, rtol=1e-5, atol=1e-6)


def test_materializer_round_trip_keeps_the_temperature(artifact_uri):
    from materializers import TrainedModelMaterializer

    features = _Features(np.random.default_rng(1).standard_normal((10, 4)).astype(np.float32))
    trained = _tiny_trained(1.8)
    mat = TrainedModelMaterializer(uri=artifact_uri)
    mat.save(trained)
    loaded = mat.load(type(trained))
    assert loaded.temperature == pytest.approx(1.8)
    np.testing.assert_allclose(loaded.predict_proba(features), trained.predict_proba(features), rtol=1e-5, atol=1e-6)
    assert mat.extract_metadata(trained)["temperature"] == pytest.approx(1.8)


def test_old_meta_without_temperature_loads_as_one(tmp_path):
    from speech_emotion.models.trained import load_trained, save_trained

    save_trained(_tiny_trained(2.0), str(tmp_path))
    meta_path = tmp_path / "model.json"
    meta = json.loads(meta_path.read_text())
    assert meta["temperature"] == 2.0
    del meta["temperature"]  # an artifact written before calibration existed
    meta_path.write_text(json.dumps(meta))
    assert load_trained(str(tmp_path)).temperature == 1.0


def test_predictor_folder_keeps_the_members_temperature(tmp_path):
    import keras

    from speech_emotion.features import FeatureParams, FeatureScaler
    from speech_emotion.models.trained import TrainedModel
    from speech_emotion.predictor import Predictor
    from tests.synthetic import tiny_features

    keras.utils.set_random_seed(0)
    inputs = keras.Input((40,))
    net = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(inputs))
    member = TrainedModel(model=net, family="tiny", input_name="mfcc", hparams={}, temperature=0.7)
    predictor = Predictor(members=[member], scaler=FeatureScaler(), feature_params=FeatureParams())
    loaded = Predictor.load(predictor.save(tmp_path / "predictor"))
    assert loaded.members[0].temperature == pytest.approx(0.7)
    features = tiny_features(9)
    served = loaded.predict_features(features)
    raw = np.asarray(net.predict(features.mfcc, verbose=0), np.float32)
    np.testing.assert_allclose(served, apply_temperature(raw, 0.7), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- training and evaluation


def test_calibrate_fits_on_validation_and_sets_the_temperature():
    from speech_emotion.training import calibrate
    from tests.synthetic import tiny_features

    val = tiny_features(70, seed=3)

    class _Overconfident:  # a "network" whose softmax is over-confident on val
        def __init__(self):
            self.probs, self.labels, _ = overconfident(n=70, seed=3)

        def predict(self, ds, verbose=0):
            return self.probs

    from speech_emotion.models.trained import TrainedModel

    net = _Overconfident()
    val.labels[:] = net.labels
    trained = TrainedModel(model=net, family="tiny", input_name="mfcc", hparams={})
    assert calibrate(trained, val, "none") is None and trained.temperature == 1.0
    result = calibrate(trained, val, "temperature")
    assert trained.temperature == result.temperature > 1.0
    assert result.ece_after < result.ece_before
    np.testing.assert_allclose(trained.predict_proba(val), result.probs_after, rtol=1e-6)
    assert calibrate(trained, val.subset(np.arange(0)), "temperature") is None
    with pytest.raises(ValueError, match="calibration"):
        calibrate(trained, val, "platt")


def test_evaluation_reports_ece_and_the_reliability_diagram():
    from speech_emotion import reports
    from speech_emotion.evaluation import evaluate_probabilities
    from steps.evaluate import report_evaluation

    probs, labels, _ = overconfident(n=300)
    corpus = np.array(["tess"] * 300)
    ev = evaluate_probabilities("m", "test", probs, labels, corpus)
    assert ev.ece == pytest.approx(expected_calibration_error(probs, labels)) and ev.ece > 0.05
    assert ev.metrics()["test_ece"] == pytest.approx(ev.ece) and ev.summary_row()["ece"] == ev.ece
    assert np.isnan(evaluate_probabilities("m", "val", probs[:0], labels[:0], corpus[:0]).ece)

    plain = reports.HtmlReport("t")
    report_evaluation(plain, ev)
    assert "ECE" in plain.render() and "reliability" not in plain.render()
    calibrated = evaluate_probabilities("m", "test", apply_temperature(probs, 3.0), labels, corpus)
    scaled = reports.HtmlReport("t")
    report_evaluation(scaled, calibrated, probs, labels, 3.0)
    html = scaled.render()
    assert "reliability diagram" in html and "T = 3.000" in html and "does not change the predicted classes" in html


def test_calibration_is_on_by_default_and_off_in_the_paper_profile():
    import yaml

    from speech_emotion.config import TrainingConfig
    from tests.conftest import ROOT

    assert TrainingConfig().calibration == "temperature"
    paper = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())["parameters"]["training"]
    assert TrainingConfig(**paper).calibration == "none"
    with pytest.raises(ValueError):
        TrainingConfig(calibration="platt")
