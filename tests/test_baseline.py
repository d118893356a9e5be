"""The classical baseline: functionals (openSMILE, librosa) and a standardised SVM stored with skops."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio

from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.evaluation import f1_macro
from speech_emotion.models.functionals_svm import (
    GRID,
    FunctionalsExtractor,
    FunctionalsSvmHParams,
    load_model,
    save_model,
    train_functionals_svm,
)


def separable(n: int, seed: int, n_classes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    x = rng.standard_normal((n, 30)) * 5 + 100  # unscaled: the pipeline standardises
    x[np.arange(n), y] += 20
    return x, y


def test_hparams_defaults_and_validation():
    assert FunctionalsSvmHParams().to_dict() == {"features": "compare", "C": 10.0, "gamma": "scale"}
    assert FunctionalsSvmHParams.from_dict({"C": 1, "gamma": 0.01}).C == 1.0
    for bad, words in (({"features": "mfcc"}, "features"), ({"C": 0}, "C must be"), ({"gamma": "big"}, "gamma"),
                       ({"kernel": "rbf"}, "unknown FunctionalsSvmHParams")):
        with pytest.raises(ValueError, match=words):
            FunctionalsSvmHParams.from_dict(bad)


@pytest.mark.parametrize(("kind", "size"), [("compare", 6373), ("egemaps", 88), ("librosa", 4 * (40 + 64))])
def test_functionals_of_a_clip(kind, size):
    t = np.arange(16000) / 16000
    y = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    values = FunctionalsExtractor(kind).signal(y)
    assert values.shape == (size,) and np.isfinite(values).all()
    louder = FunctionalsExtractor(kind).signal(2 * y)
    assert not np.allclose(values, louder)  # the functionals see the signal


def test_svm_learns_gives_seven_class_probabilities_and_round_trips_through_skops(tmp_path):
    x, y = separable(90, 0)
    xv, yv = separable(42, 1)
    model = train_functionals_svm(x, y, xv, yv, FunctionalsSvmHParams(), grid=GRID)
    assert [row["C"] for row in model.history["grid"]] == [1.0] * 3 + [10.0] * 3 + [100.0] * 3
    best = max(model.history["grid"], key=lambda r: r["val_f1_macro"])
    assert model.hparams["C"] == best["C"] and str(model.hparams["gamma"]) == best["gamma"]
    p = model.predict_proba(xv)
    assert p.shape == (42, len(EMOTIONS))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert (p[:, EMOTIONS.index("surprise")] == 0).all()  # never seen in training
    assert f1_macro(yv, p.argmax(1)) > 0.9

    save_model(model, tmp_path / "m")
    assert sorted(f.name for f in (tmp_path / "m").iterdir()) == ["meta.json", "model.skops"]
    assert not sio.get_untrusted_types(file=tmp_path / "m" / "model.skops")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(xv), p)
    assert loaded.hparams == model.hparams


def test_a_stored_file_with_untrusted_types_or_another_model_is_refused(tmp_path):
    from fractions import Fraction

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    x, y = separable(30, 0)
    model = train_functionals_svm(x, y, x[:0], y[:0], FunctionalsSvmHParams(C=1.0))
    save_model(model, tmp_path / "m")
    stored = tmp_path / "m" / "model.skops"
    sio.dump({"weights": Fraction(1, 3)}, stored)  # a type skops does not trust
    with pytest.raises(ValueError, match=r"refusing to load types outside the trusted list: \['fractions.Fraction'\]"):
        load_model(tmp_path / "m")
    sio.dump(make_pipeline(LogisticRegression()), stored)
    with pytest.raises(ValueError, match=r"holds \['LogisticRegression'\], not a StandardScaler \+ SVC pipeline"):
        load_model(tmp_path / "m")


def test_baseline_configuration_is_checked_before_any_step():
    from pipelines.training import check_configuration
    from speech_emotion.config import AblationConfig, FeatureConfig, TuningConfig, check_families

    check_families({"functionals_svm": {"features": "egemaps", "C": 1}})
    with pytest.raises(ValueError, match="features"):
        check_families({"functionals_svm": {"features": "mfcc"}})
    ok = dict(families={"cnn2d_lstm": {}, "functionals_svm": {}}, tuning=TuningConfig(), search_spaces={},
              features=FeatureConfig(), ablation=AblationConfig())
    check_configuration(**{**ok, "search_spaces": {"functionals_svm": {"C": [0.1, 1.0], "gamma": ["scale", 0.01]}}})
    with pytest.raises(ValueError, match=r"search_spaces.functionals_svm.features: functionals_svm has no hyperparameter"):
        check_configuration(**{**ok, "search_spaces": {"functionals_svm": {"features": ["egemaps"]}}})
    with pytest.raises(ValueError, match=r"search_spaces.functionals_svm.C: .*C must be a number > 0"):
        check_configuration(**{**ok, "search_spaces": {"functionals_svm": {"C": [-1.0]}}})
    with pytest.raises(ValueError, match="ablation.families: functionals_svm standardises its own functionals"):
        check_configuration(**{**ok, "ablation": AblationConfig(scaling=True, families=["functionals_svm"])})


def test_the_comparison_states_the_baselines_figures_beside_every_model():
    import pandas as pd

    from speech_emotion.evaluation import compare_to_baseline

    table = pd.DataFrame({"model": ["cnn2d_lstm", "functionals_svm", "cnn2d_lstm", "functionals_svm"],
                          "split": ["val", "val", "test", "test"], "accuracy": [0.6, 0.5, 0.55, 0.45],
                          "f1_macro": [0.5, 0.4, 0.45, 0.5]})
    out = compare_to_baseline(table)
    assert out["baseline_f1_macro"].tolist() == [0.4, 0.4, 0.5, 0.5]
    assert out["f1_macro_vs_baseline"].round(6).tolist() == [0.1, 0.0, -0.05, 0.0]
    assert out["baseline_accuracy"].tolist() == [0.5, 0.5, 0.45, 0.45]
    assert compare_to_baseline(table[table["model"] != "functionals_svm"]).columns.tolist() == list(table.columns)


def test_training_pipeline_wires_the_baseline_into_comparison_and_ensembles(tmp_path):
    from tests.graphs import holdout_graph as training_pipeline  # the training pipeline's holdout graph, static
    from speech_emotion.config import CorporaConfig, TuningConfig
    from tests.test_custom_corpus import folders

    training_pipeline.prepare(corpora=CorporaConfig(custom=[folders(tmp_path)]), tuning=TuningConfig(enabled=True),
                              families={"cnn2d_lstm": {}, "functionals_svm": {"features": "librosa", "C": 1.0}})
    invocations = training_pipeline.invocations
    assert {"extract_train_functionals", "extract_val_functionals", "extract_test_functionals",
            "tune_functionals_svm", "train_functionals_svm_model", "evaluate_functionals_svm"} <= set(invocations)
    assert invocations["extract_train_functionals"].parameters["kind"] == "librosa"
    assert invocations["tune_functionals_svm"].parameters["grid"] == {"gamma": ["scale", 1e-3, 1e-4]}  # C is fixed
    assert invocations["ensemble_models"].parameters["names"] == ["cnn2d_lstm", "functionals_svm"]

    training_pipeline.prepare(corpora=CorporaConfig(custom=[folders(tmp_path)]), tuning=TuningConfig(enabled=True),
                              families={"functionals_svm": {"C": 1.0, "gamma": "scale"}})
    assert "tune_functionals_svm" not in training_pipeline.invocations  # both fixed: no grid to score
    assert "train_functionals_svm_model" in training_pipeline.invocations


def test_opensmile_runs_beside_tensorflow():
    """openSMILE's library corrupts the heap of a process that has loaded TensorFlow, as every pipeline
    step has: the extractor runs it in a fresh interpreter."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = (
        "import numpy as np, tensorflow\n"
        "from speech_emotion.models.functionals_svm import FunctionalsExtractor\n"
        "y = np.sin(np.arange(16000) / 5).astype(np.float32)\n"
        "print('SHAPE', FunctionalsExtractor('egemaps').signals([y, y / 2]).shape)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SHAPE (2, 88)" in proc.stdout


def test_opensmile_in_two_processes_gives_the_rows_of_one_in_the_clips_order(tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(3)
    paths = []
    for i in range(5):  # 5 clips: parts of 2 and 3 (an uneven cut)
        t = np.arange(8000 + 1600 * i) / 16000
        y = 0.2 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.01 * rng.standard_normal(t.size)
        paths.append(str(tmp_path / f"clip{i}.wav"))
        sf.write(paths[-1], y.astype(np.float32), 16000)
    one = FunctionalsExtractor("egemaps", workers=1).files(paths)
    two = FunctionalsExtractor("egemaps", workers=2).files(paths)
    assert one.shape == (5, 88)
    np.testing.assert_array_equal(two, one)
    assert len({row.tobytes() for row in one}) == 5  # each clip its own row, so the order is checked
    with pytest.raises(ValueError, match="workers"):
        FunctionalsExtractor("egemaps", workers=0)
    # a part that fails is reported with its error after the other part has ended
    with pytest.raises(RuntimeError, match=r"(?s)openSMILE \(egemaps\) failed.*missing\.wav"):
        FunctionalsExtractor("egemaps", workers=2).files([paths[0], str(tmp_path / "missing.wav")])
