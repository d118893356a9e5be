"""The predictor: audio in, emotions out, exactly as training featurised it; a folder round trip;
windows over long clips; a row with the ingestion's reason for every bad file; the promotion gate;
the MLflow pyfunc model and its refusals."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.features import FeatureParams, FeatureScaler
from speech_emotion.predictor import UNCERTAIN, Predictor, choose_model, find_audio_files
from tests.synthetic import demo_features, tiny_trained

#: 5 s (longer than every demo clip) keeps the networks small; the code path is the 8 s one
PARAMS = FeatureParams(duration_s=5.0)
TINY_1D = {"conv_blocks": 1, "filters_first": 4, "filters_next": 4, "lstm_units": 4}
TINY_2D = {"kernel_size": 3, "conv_blocks": 1, "filters_first": 4, "filters_next": 4, "lstm_units": 4}


@pytest.fixture(scope="module")
def trained(demo_corpus):
    """Two tiny families trained one epoch on real features of the demo corpus, and what they saw."""
    utterances, raw = demo_features(demo_corpus, PARAMS)
    scaler = FeatureScaler.fit(raw)
    scaled = scaler.transform(raw)
    m1 = tiny_trained(scaled, "cnn1d_lstm", TINY_1D)
    m2 = tiny_trained(scaled, "cnn2d_lstm", TINY_2D)
    # fitted to its training clips: the promotion tests need a predictor clearly better than the others
    fitted = tiny_trained(scaled, "cnn1d_lstm", {**TINY_1D, "learning_rate": 0.01, "lstm_units": 16}, epochs=60)
    return {"utterances": utterances, "raw": raw, "scaled": scaled, "scaler": scaler, "models": [m1, m2],
            "fitted": fitted}


@pytest.fixture(scope="module")
def single(trained):
    return Predictor(members=[trained["models"][0]], scaler=trained["scaler"], feature_params=PARAMS,
                     info={"reason": "test"})


@pytest.fixture(scope="module")
def ensemble(trained):
    return Predictor(members=trained["models"], scaler=trained["scaler"], feature_params=PARAMS,
                     kind="ga_ensemble", weights=[0.3, 0.7])


def _wav(path, y, sr=16000) -> str:
    sf.write(path, y, sr, subtype="PCM_16")
    return str(path)


def test_predict_paths_equals_the_models_on_training_features(trained, ensemble):
    paths = trained["utterances"]["path"].tolist()[:6]
    table = ensemble.predict_paths(paths)
    assert list(table.columns) == ["path", "emotion", *EMOTIONS, "duration_s", "windows", "error", "error_detail"]
    assert table["error"].isna().all() and (table["windows"] == 1).all()
    m1, m2 = trained["models"]
    sub = trained["scaled"].subset(np.arange(6))
    expected = 0.3 * m1.predict_proba(sub) + 0.7 * m2.predict_proba(sub)
    np.testing.assert_allclose(table[list(EMOTIONS)].to_numpy(float), expected, atol=1e-5)
    assert table["emotion"].tolist() == [EMOTIONS[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(table[list(EMOTIONS)].sum(axis=1), 1.0, atol=1e-5)


def test_a_band_scaled_predictor_scales_as_training_did_after_a_round_trip(tmp_path, trained):
    """The log-mel scaling travels with the scaler (.npz): a saved and loaded predictor applies band scaling."""
    band = FeatureScaler.fit(trained["raw"], logmel_scaling="band")
    m2 = trained["models"][1]  # cnn2d_lstm: reads the log-mel
    loaded = Predictor.load(Predictor(members=[m2], scaler=band, feature_params=PARAMS).save(tmp_path / "band"))
    assert loaded.scaler.logmel_scaling == "band"
    table = loaded.predict_paths(trained["utterances"]["path"].tolist()[:4])
    expected = m2.predict_proba(band.transform(trained["raw"].subset(np.arange(4))))
    np.testing.assert_allclose(table[list(EMOTIONS)].to_numpy(float), expected, atol=1e-5)
    element = m2.predict_proba(trained["scaled"].subset(np.arange(4)))
    assert not np.allclose(expected, element, atol=1e-4)  # the scaling changes what the network sees


def test_save_load_round_trip_gives_identical_probabilities(tmp_path, ensemble, trained):
    folder = ensemble.save(tmp_path / "predictor")
    assert {p.name for p in folder.iterdir()} >= {"manifest.json", "scaler.npz", "member_0.keras", "member_1.keras"}
    loaded = Predictor.load(folder)
    assert (loaded.kind, loaded.name, loaded.weights, loaded.classes) == ("ga_ensemble", "ga_ensemble", [0.3, 0.7], EMOTIONS)
    paths = trained["utterances"]["path"].tolist()[:4]
    pd.testing.assert_frame_equal(loaded.predict_paths(paths), ensemble.predict_paths(paths))
    manifest = ensemble.manifest()
    assert manifest["duration_s"] == PARAMS.duration_s and "keras" in manifest["library_versions"]


def test_an_ensemble_with_the_functionals_baseline_round_trips(tmp_path, trained):
    """The classical baseline is a member like a network: it reads functionals of each window's audio."""
    from speech_emotion.audio import load_audio
    from speech_emotion.models.functionals_svm import FunctionalsExtractor, FunctionalsSvmHParams, train_functionals_svm

    paths = trained["utterances"]["path"].tolist()
    extractor = FunctionalsExtractor("librosa", PARAMS.sample_rate)
    x = extractor.files(paths)
    svm = train_functionals_svm(x, trained["raw"].labels, x, trained["raw"].labels,
                                FunctionalsSvmHParams(features="librosa"))
    net = trained["models"][0]
    mixed = Predictor(members=[net, svm], scaler=trained["scaler"], feature_params=PARAMS, kind="ga_ensemble",
                      weights=[0.25, 0.75])
    assert mixed.needs_audio
    table = mixed.predict_paths(paths[:3])
    # the same clips, shorter than a window: the functionals of the whole clip, the features of training
    expected = 0.25 * net.predict_proba(trained["scaled"].subset(np.arange(3))) + 0.75 * svm.predict_proba(
        extractor.signals([load_audio(p, PARAMS.sample_rate) for p in paths[:3]]))
    np.testing.assert_allclose(table[list(EMOTIONS)].to_numpy(float), expected, atol=1e-5)
    loaded = Predictor.load(mixed.save(tmp_path / "mixed"))
    assert (tmp_path / "mixed" / "member_1" / "model.skops").is_file()
    pd.testing.assert_frame_equal(loaded.predict_paths(paths[:3]), table)


def test_long_clip_is_scored_over_windows_and_averaged(tmp_path, single):
    rng = np.random.default_rng(0)
    sr, n = 16000, PARAMS.n_samples
    y = (0.3 * rng.standard_normal(int(2.5 * n))).astype(np.float32)  # 2.5 windows
    path = _wav(tmp_path / "long.wav", y)
    row = single.predict_paths([path]).iloc[0]
    assert row["windows"] == 3 and row["duration_s"] == pytest.approx(2.5 * PARAMS.duration_s, abs=1e-3)
    # the windows: [0, 1), [1, 2) and the last one, [1.5, 2.5) windows
    parts = [y[:n], y[n : 2 * n], y[-n:]]
    probs = [single.predict_waveform(part, sr) for part in parts]
    windows = np.array([[p[c] for c in EMOTIONS] for p in probs])
    # float32 kernels round differently for a batch of three windows than for one at a time (about 1e-5
    # here); the windows' scores differ from their mean by over 8x the tolerance, so a wrong window set
    # or weighting still fails
    assert np.abs(windows - windows.mean(axis=0)).max() > 4e-4
    np.testing.assert_allclose([row[c] for c in EMOTIONS], windows.mean(axis=0), atol=5e-5)
    timeline = single.timeline(path)
    d = PARAMS.duration_s
    assert timeline["start_s"].tolist() == pytest.approx([0.0, d, 1.5 * d])
    assert timeline["end_s"].tolist() == pytest.approx([d, 2 * d, 2.5 * d])
    assert len(timeline) == 3 and set(timeline["emotion"]) <= set(EMOTIONS)


def test_every_bad_file_gets_its_reason_and_the_others_are_labelled(tmp_path, single, trained):
    good = trained["utterances"]["path"].iloc[0]
    sr = 16000
    tone = (0.5 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
    data = io.BytesIO()
    sf.write(data, tone, sr, format="WAV", subtype="PCM_16")
    (tmp_path / "truncated.wav").write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    (tmp_path / "lfs.wav").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio at all, just some text " * 10)
    _wav(tmp_path / "silent.wav", np.zeros(sr, np.float32))
    _wav(tmp_path / "short.wav", tone[: sr // 10])
    bad = {"truncated.wav": "truncated_audio", "lfs.wav": "git_lfs_pointer", "empty.wav": "empty_audio",
           "text.wav": "not_audio", "silent.wav": "silent_audio", "short.wav": "too_short",
           "missing.wav": "unreadable_audio"}
    paths = [good] + [str(tmp_path / name) for name in bad]
    table = single.predict_paths(paths).set_index("path")
    assert table.loc[good, "error"] is None and table.loc[good, "emotion"] in EMOTIONS
    for name, reason in bad.items():
        row = table.loc[str(tmp_path / name)]
        assert row["error"] == reason, (name, row["error"], row["error_detail"])
        assert row["emotion"] is None and pd.isna(row["fear"]) and row["error_detail"]


def test_ser_predict_names_every_bad_file_and_labels_the_rest(tmp_path, single, trained):
    """`ser predict` with a predictor folder (no ZenML store involved): one error line per bad file."""
    import json
    import os
    import subprocess
    import sys

    folder = single.save(tmp_path / "predictor")
    good = trained["utterances"]["path"].iloc[0]
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    sr = 16000
    (bad_dir / "lfs.wav").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n")
    (bad_dir / "empty.wav").write_bytes(b"")
    (bad_dir / "text.flac").write_text("not audio " * 20)
    _wav(bad_dir / "silent.wav", np.zeros(sr, np.float32))
    _wav(bad_dir / "short.wav", (0.5 * np.ones(sr // 10)).astype(np.float32))
    ser = os.path.join(os.path.dirname(sys.executable), "ser")
    proc = subprocess.run([ser, "predict", good, str(bad_dir), "--model", str(folder), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {os.path.basename(r["path"]): r for r in json.loads(proc.stdout)}  # stdout is only JSON
    assert records[os.path.basename(good)]["emotion"] in EMOTIONS
    expected = {"lfs.wav": "git_lfs_pointer", "empty.wav": "empty_audio", "text.flac": "not_audio",
                "silent.wav": "silent_audio", "short.wav": "too_short"}
    assert {name: records[name]["error"] for name in expected} == expected
    for name, reason in expected.items():
        assert f"{name}: error {reason}:" in proc.stderr
    only_bad = subprocess.run([ser, "predict", str(bad_dir), "--model", str(folder), "-q"],
                              capture_output=True, text=True, timeout=300)
    assert only_bad.returncode == 1 and "0 of 5 files labelled" in only_bad.stderr


def test_narrowband_audio_is_predicted_with_a_warning(tmp_path, single):
    sr = 8000
    y = (0.4 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr)).astype(np.float32)
    row = single.predict_paths([_wav(tmp_path / "phone.wav", y, sr)]).iloc[0]
    assert row["error"] is None and row["emotion"] in EMOTIONS
    assert "8000 Hz" in row["error_detail"]


def test_min_confidence_labels_uncertain_and_keeps_probabilities(trained):
    path = trained["utterances"]["path"].iloc[0]
    sure = Predictor(members=[trained["models"][0]], scaler=trained["scaler"], feature_params=PARAMS)
    unsure = Predictor(members=[trained["models"][0]], scaler=trained["scaler"], feature_params=PARAMS,
                       min_confidence=0.999)
    a, b = sure.predict_paths([path]).iloc[0], unsure.predict_paths([path]).iloc[0]
    assert a["emotion"] in EMOTIONS and b["emotion"] == UNCERTAIN
    assert [a[c] for c in EMOTIONS] == [b[c] for c in EMOTIONS]


def test_find_audio_files_searches_folders_recursively(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.wav", "a/b/y.FLAC", "a/b/notes.txt", "z.ogg"):
        (tmp_path / name).write_bytes(b"")
    found = find_audio_files([tmp_path / "a", tmp_path / "z.ogg"])
    assert [p.split(str(tmp_path))[1] for p in found] == ["/a/b/y.FLAC", "/a/x.wav", "/z.ogg"]


def test_choose_model_on_validation_without_ablation_rows():
    table = pd.DataFrame([
        {"model": "cnn2d_lstm", "split": "val", "f1_macro": 0.5},
        {"model": "cnn2d_lstm_no_scaled", "split": "val", "f1_macro": 0.9},
        {"model": "ga_ensemble", "split": "val", "f1_macro": 0.6},
        {"model": "stacking", "split": "test", "f1_macro": 0.99},
        {"model": "stacking", "split": "val", "f1_macro": 0.1},
    ])
    available = ["cnn2d_lstm", "ga_ensemble", "stacking"]
    name, reason = choose_model(table, "best", available)
    assert name == "ga_ensemble" and "cross-fitted" in reason and "0.6000" in reason
    assert choose_model(table, "stacking", available)[0] == "stacking"
    with pytest.raises(ValueError, match="was not trained"):
        choose_model(table, "cnn_transformer", available)


def test_predictor_refuses_inconsistent_members(trained):
    with pytest.raises(ValueError, match="2 weights for 1 members"):
        Predictor(members=[trained["models"][0]], scaler=trained["scaler"], feature_params=PARAMS, weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="at least two members"):
        Predictor(members=[trained["models"][0]], scaler=trained["scaler"], feature_params=PARAMS, kind="ga_ensemble")


# ----------------------------------------------------------------------------- promotion gate


def test_promotion_first_version_better_worse_and_label_sets(trained, single, ensemble):
    from speech_emotion.promotion import decide, score_on

    test = trained["raw"]
    first = decide(single, test, None)
    assert first.promote and first.reason == "no production version yet"
    better = Predictor(members=[trained["fitted"]], scaler=trained["scaler"], feature_params=PARAMS)
    worse = single
    s_better, s_worse = score_on(better, test)["f1_macro"], score_on(worse, test)["f1_macro"]
    assert s_better > s_worse + 0.2, (s_better, s_worse)
    up = decide(better, test, worse, margin=0.0)
    assert up.promote and up.production_f1_macro == pytest.approx(s_worse) and up.new_f1_macro == pytest.approx(s_better)
    down = decide(worse, test, better, margin=0.0)
    assert not down.promote and "<" in down.reason
    # a margin wider than the gap lets the slightly worse one through
    assert decide(worse, test, better, margin=s_better - s_worse + 1e-6).promote
    other = Predictor(members=[trained["models"][0]], scaler=trained["scaler"], feature_params=PARAMS)
    other.classes = EMOTIONS[:6]
    refused = decide(single, test, other)
    assert not refused.promote and "label sets differ" in refused.reason
    # the new predictor's probabilities from registration are used as given (here the better one's,
    # so the worse one is promoted over the better), and recomputed when they have no row per clip
    from speech_emotion.promotion import probabilities_on

    given = decide(worse, test, better, new_probabilities=probabilities_on(better, test))
    assert given.promote and given.new_f1_macro == pytest.approx(s_better)
    empty = decide(worse, test, better, new_probabilities=np.zeros((0, len(EMOTIONS)), np.float32))
    assert not empty.promote and empty.new_f1_macro == pytest.approx(s_worse)


def test_production_with_other_feature_parameters_is_scored_from_the_audio(trained, single):
    from speech_emotion.promotion import score_on

    test = trained["raw"]
    # features that claim other parameters: the predictor featurises the clips' audio itself, and
    # since its parameters are those the features were really made with, the score is the same
    test_other = test.subset(np.arange(len(test)))
    test_other.params = {**test.params, "top_db": 70.0}
    assert score_on(single, test_other) == score_on(single, test)


# ----------------------------------------------------------------------------- MLflow pyfunc


def test_pyfunc_model_loads_and_refuses_paths_and_oversized_audio(tmp_path, single, trained, monkeypatch):
    import mlflow

    from speech_emotion.pyfunc import log_predictor

    good = trained["utterances"]["path"].iloc[0]
    audio = open(good, "rb").read()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        with mlflow.start_run():
            info = log_predictor(single, example_audio=audio)
        monkeypatch.delenv("SER_ALLOWED_AUDIO_ROOT", raising=False)
        monkeypatch.setenv("SER_MAX_AUDIO_MB", "1")
        model = mlflow.pyfunc.load_model(info.model_uri)
        assert model.metadata.signature.inputs.input_names() == ["path", "audio"]
        out = model.predict(pd.DataFrame({"audio": [audio, b"x" * (2 * 2**20)], "path": [None, None]}))
        assert out.loc[0, "emotion"] in EMOTIONS and out.loc[0, "error"] is None
        assert out.loc[1, "error"] == "too_large" and "SER_MAX_AUDIO_MB" in out.loc[1, "error_detail"]
        refused = model.predict(pd.DataFrame({"path": [good]}))
        assert refused.loc[0, "error"] == "path_refused" and "SER_ALLOWED_AUDIO_ROOT" in refused.loc[0, "error_detail"]

        root = str(trained["utterances"]["path"].iloc[0]).rsplit("/", 2)[0]
        monkeypatch.setenv("SER_ALLOWED_AUDIO_ROOT", root)
        allowed = mlflow.pyfunc.load_model(info.model_uri)
        out = allowed.predict(pd.DataFrame({"path": [good, "/etc/passwd", f"{root}/../../../etc/passwd"]}))
        assert out.loc[0, "emotion"] in EMOTIONS
        assert (out.loc[1:, "error"] == "path_refused").all()
    finally:
        mlflow.set_tracking_uri(None)
