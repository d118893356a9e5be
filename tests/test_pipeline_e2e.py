"""One real ``zenml pipeline run`` of the training pipeline, end to end, on the embedded stack.

A private ZenML store (conftest), a tiny demo corpus, a tiny model, one epoch.
Asserts the run completed, its artifacts load, and MLflow holds the run's
parameters, metrics and figures; then a run that fails leaves its MLflow run FAILED.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.servers import free_port, running

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack_id(zenml_home) -> str:
    from speech_emotion.cli import setup_stack

    return setup_stack(root=None, activate=False)


def _run_pipeline(tmp_path, stack_id: str, overrides: dict, name: str, replace: dict | None = None) -> subprocess.CompletedProcess:
    config = yaml.safe_load((ROOT / "configs" / "test.yaml").read_text())
    config["run_name"] = name
    params = config["parameters"]
    params["corpora"]["demo"]["root"] = str(tmp_path / "demo")
    params["features"]["cache_dir"] = str(tmp_path / "cache")
    for section, values in overrides.items():
        params.setdefault(section, {}).update(values)
    params.update(replace or {})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id}
    zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
    return subprocess.run(
        [zenml, "pipeline", "run", "pipelines.training.training_pipeline", "-c", str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )


def _mlflow_run(run_name: str):
    return _mlflow_run_in("training_pipeline", run_name)


def _mlflow_run_in(experiment: str, run_name: str):
    import mlflow
    from zenml.client import Client

    tracker = Client().get_stack_component("experiment_tracker", "mlflow_tracker")
    from zenml.stack.stack_component import StackComponent

    uri = StackComponent.from_model(tracker).get_tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [client.get_experiment_by_name(experiment).experiment_id],
        filter_string=f'tags.mlflow.runName = "{run_name}"',
    )
    assert len(runs) == 1, f"expected one MLflow run named {run_name}, found {len(runs)}"
    return client, runs[0]


@pytest.fixture(scope="module")
def e2e_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


def test_training_pipeline_end_to_end(e2e_tmp, stack_id):
    proc = _run_pipeline(e2e_tmp, stack_id, {}, "e2e_ok")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]

    import numpy as np
    from zenml.client import Client

    run = Client().get_pipeline_run("e2e_ok")
    assert str(run.status) in ("completed", "ExecutionStatus.COMPLETED")

    utterances = run.steps["ingest_corpora"].outputs["utterances"][0].load()
    rejected = run.steps["ingest_corpora"].outputs["rejected"][0].load()
    assert len(utterances) > 0
    assert set(utterances["corpus"]) == {"tess", "savee", "ravdess", "crema"}
    # the demo RAVDESS holds calm, dropped by default: rejected with its reason, not lost
    assert (rejected["reason"] == "excluded_label").any()

    train = run.steps["scale_features"].outputs["train_features"][0].load()
    # features.duration_s auto (configs/test.yaml): the longest training clip, in whole hops, not the seed's 8 s
    params = run.steps["resolve_feature_params"].outputs["feature_params"][0].load()
    train_utt = run.steps["split_dataset"].outputs["train_utterances"][0].load()
    assert train_utt["duration_s"].max() <= params.duration_s < train_utt["duration_s"].max() + 512 / 16000
    assert train.scaled and train.logmel.shape[1:] == (128, params.n_frames) and params.n_frames < 251
    assert train.params["duration_s"] == params.duration_s
    # augmentation (configs/test.yaml: one copy) after the split, on the training split only
    assert len(train) == 2 * len(train_utt)
    assert [str(u) for u in train.utterance_ids[len(train_utt):]] == [f"{p}#aug1" for p in train.utterance_ids[:len(train_utt)]]
    for part in ("val_features", "test_features"):
        held = run.steps["scale_features"].outputs[part][0].load()
        assert not any("#aug" in str(u) for u in held.utterance_ids)
    assert isinstance(train.logmel, np.memmap)  # .npy, memory-mapped, not a pickle
    # streamed into the artifacts' own folders: the arrays, meta.json, the visualization; no scratch left
    for step, output in (("extract_train_features", "features"), ("augment_train_features", "features"),
                         ("scale_features", "train_features")):
        folder = Path(run.steps[step].outputs[output][0].uri)
        assert sorted(p.name for p in folder.iterdir() if p.suffix != ".png") == sorted(
            [f"{name}.npy" for name in train.ARRAYS] + ["meta.json"]), step

    best = run.steps["tune_cnn2d_lstm"].outputs["best_hparams"][0].load()
    assert best["lstm_units"] in (8, 12) and best["filters_first"] == 4  # searched / fixed by the config
    trials = run.steps["tune_cnn2d_lstm"].outputs["tuning_trials"][0].load()
    assert len(trials) >= 2

    model = run.steps["train_cnn2d_lstm"].outputs["cnn2d_lstm_model"][0].load()
    assert model.family == "cnn2d_lstm" and model.hparams["lstm_units"] == best["lstm_units"]
    val = run.steps["scale_features"].outputs["val_features"][0].load()
    assert model.predict_proba(val).shape == (len(val), 7)
    stacked = run.steps["train_stacking_model"].outputs["stacking_model"][0].load()
    assert stacked.predict_proba(val).shape == (len(val), 7)

    comparison = run.steps["compare_models"].outputs["comparison"][0].load()
    expected = {"cnn2d_lstm", "cnn1d_lstm", "functionals_svm", "cnn2d_lstm_no_scaled", "cnn2d_lstm_logmel_band",
                "average_voting", "ga_ensemble", "stacking"}
    assert set(comparison[comparison["split"] == "test"]["model"]) == expected
    assert set(comparison["split"]) == {"val", "test"}
    baseline_rows = comparison[comparison["model"] == "functionals_svm"].set_index("split")
    assert (comparison["baseline_f1_macro"] == comparison["split"].map(baseline_rows["f1_macro"])).all()
    weights = run.steps["ensemble_models"].outputs["ga_weights"][0].load()
    assert list(weights["model"]) == ["cnn2d_lstm", "cnn1d_lstm", "functionals_svm"]  # the baseline is a member

    # the classical baseline: eGeMAPS functionals, a validation grid, an SVM stored with skops
    svm = run.steps["train_functionals_svm_model"].outputs["functionals_svm_model"][0].load()
    val_functionals = run.steps["extract_val_functionals"].outputs["functionals"][0].load()
    assert val_functionals.shape == (len(val), 88)
    assert svm.predict_proba(val_functionals).shape == (len(val), 7)
    grid = run.steps["tune_functionals_svm"].outputs["tuning_trials"][0].load()
    assert len(grid) == 9 and svm.hparams["features"] == "egemaps"
    assert weights["weight"].sum() == pytest.approx(1.0)
    report = run.steps["analyse_dataset"].outputs["dataset_report"][0].load()
    assert "Table 1" in report and "data:image/png;base64" in report
    assert "Inputs over time (seed section 4)" in report  # log-mel and chromagram of two clips per class
    assert train.n_frames.shape == (len(train),) and 0 < train.n_frames.min() <= train.n_frames.max() <= params.n_frames
    band = run.steps["scale_features_logmel_band"].outputs["scaler"][0].load()
    assert band.logmel_scaling == "band" and band.scalers["logmel"].mean_.shape == (128,)

    client, mlrun = _mlflow_run("e2e_ok")
    assert mlrun.info.status == "FINISHED"
    # the best model is chosen on validation, never on the held-out test split
    val_rows = comparison[comparison["split"] == "val"].sort_values("f1_macro", ascending=False)
    assert mlrun.data.tags["best_model"] == val_rows.iloc[0]["model"]
    assert mlrun.data.tags["best_model_selected_on"] == "val"
    m = mlrun.data.metrics
    for key in ("cnn2d_lstm.val_accuracy", "cnn2d_lstm.val_loss", "cnn2d_lstm.val_f1_macro",
                "cnn2d_lstm.val_inference_time_s", "cnn2d_lstm.n_params", "cnn2d_lstm.test_accuracy",
                "cnn2d_lstm.val_accuracy_crema", "cnn1d_lstm.test_f1_macro", "cnn2d_lstm_no_scaled.val_accuracy",
                "average_voting.test_f1_macro", "ga_ensemble.test_f1_macro", "stacking.test_accuracy",
                "functionals_svm.test_f1_macro", "functionals_svm.val_accuracy_crema",
                "files_found", "ga.fitness_val_f1"):
        assert key in m, f"{key} missing from MLflow metrics {sorted(m)}"
    assert m["files_found"] == len(utterances) + len(rejected)
    for part in ("train", "val", "test"):  # each feature step's throughput: clips/s x seconds = its clips
        n_clips = len(run.steps["split_dataset"].outputs[f"{part}_utterances"][0].load())
        rate, seconds = m[f"extract_{part}_features_clips_per_s"], m[f"extract_{part}_features_time_s"]
        assert rate * seconds == pytest.approx(n_clips, rel=1e-6) and seconds > 0
    val_2d = comparison[(comparison["split"] == "val") & (comparison["model"] == "cnn2d_lstm")].iloc[0]
    assert m["cnn2d_lstm.val_accuracy"] == pytest.approx(float(val_2d["accuracy"]))  # MLflow says what the table says
    history = client.get_metric_history(mlrun.info.run_id, "ga.restart0.best_f1")
    assert [h.step for h in history] == list(range(4))  # generation 0 and 3 more
    assert [h.value for h in history] == sorted(h.value for h in history)  # elitism: never worse
    assert mlrun.data.params["model.cnn2d_lstm.filters_first"] == "4"
    assert mlrun.data.params["split.strategy"] == "stratified"
    artifacts = {a.path for a in client.list_artifacts(mlrun.info.run_id, "evaluation/cnn2d_lstm")}
    assert "evaluation/cnn2d_lstm/val_confusion.png" in artifacts
    assert {a.path for a in client.list_artifacts(mlrun.info.run_id, "dataset")} >= {
        "dataset/class_distribution_train.png", "dataset/origin_distribution.png"}
    assert "comparison/f1_macro.png" in {a.path for a in client.list_artifacts(mlrun.info.run_id, "comparison")}

    # tuning: a child run per family, a grandchild run per trial
    experiment = mlrun.info.experiment_id
    tune_runs = client.search_runs([experiment], f'tags.mlflow.parentRunId = "{mlrun.info.run_id}"')
    by_name = {r.info.run_name: r for r in tune_runs}
    assert {"tune/cnn2d_lstm", "tune/cnn1d_lstm"} <= set(by_name)
    tune2d = by_name["tune/cnn2d_lstm"]
    trial_runs = client.search_runs([experiment], f'tags.mlflow.parentRunId = "{tune2d.info.run_id}"')
    assert len(trial_runs) == len(trials)
    assert all(r.data.params["lstm_units"] in ("8", "12") for r in trial_runs)
    assert any("val_f1_macro" in r.data.metrics for r in trial_runs)


def test_ser_report_writes_the_runs_report_and_the_model_card(e2e_tmp, stack_id, tmp_path):
    """`ser report` on the finished run: every expected file, tables equal to the run's artifacts, where each
    comes from, the synthetic-data warning; the model card is the registered versions' description; a
    protocol table logged to the MLflow run appears in the report."""
    import pandas as pd
    from zenml.client import Client

    out = tmp_path / "report"
    proc = _ser(stack_id, "report", "e2e_ok", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for rel in ("index.html", "README.md", "model_card.md", "comparison/val.csv", "comparison/test.csv",
                "comparison/f1_macro.png", "comparison/scaling_ablation.csv", "ensemble/ga_weights.csv",
                "ensemble/ga_fitness.png", "dataset/duration_table.csv", "dataset/corpora.csv",
                "dataset/class_distribution_train.png", "dataset/dataset_report.html", "inputs/input_examples.csv",
                "inputs/inputs_logmel.png", "inputs/inputs_chromagram.png",
                "evaluation/cnn2d_lstm/test_per_origin.csv", "evaluation/ga_ensemble/val_per_class.csv",
                "confusion/cnn2d_lstm_test.png", "confusion/stacking_val.png"):
        assert (out / rel).is_file(), f"{rel} missing from the report: {sorted(p.name for p in out.rglob('*'))}"
    run = Client().get_pipeline_run("e2e_ok")
    comparison = run.steps["compare_models"].outputs["comparison"][0].load()
    test_table = pd.read_csv(out / "comparison" / "test.csv", index_col=0)
    zen = comparison[comparison["split"] == "test"].set_index("model")
    assert set(test_table.index) == set(zen.index) - {"cnn2d_lstm_no_scaled", "cnn2d_lstm_logmel_band"}
    assert test_table.loc["cnn2d_lstm", "f1_macro"] == pytest.approx(zen.loc["cnn2d_lstm", "f1_macro"])
    baseline = float(zen.loc["functionals_svm", "f1_macro"])
    assert test_table["baseline_f1_macro"].tolist() == pytest.approx([baseline] * len(test_table))
    ablation = pd.read_csv(out / "comparison" / "scaling_ablation.csv")
    assert {"cnn2d_lstm", "cnn2d_lstm_no_scaled", "cnn2d_lstm_logmel_band"} == set(ablation["model"])
    index = (out / "index.html").read_text()
    assert "Synthetic demo corpus: tess, savee, ravdess, crema are synthesised speech" in index
    assert "From ZenML step compare_models, artifact comparison" in index
    assert "From MLflow run " in index and "artifact dataset/inputs_logmel.png" in index
    assert 'id="protocols"' not in index  # a hold-out run has no protocol tables
    assert "model_card.md" in (out / "README.md").read_text()

    card = (out / "model_card.md").read_text()
    assert "**Synthetic data.**" in card and "Art. 5(1)(f)" in card and "not validated on spontaneous speech" in card
    assert "Test split, per speaker gender" in card and "| female |" in card and "| male |" in card
    version = run.model_version
    assert Client().get_model_version(version.model.id, version.id).description == card
    client, mlrun = _mlflow_run("e2e_ok")
    mv = client.get_model_version("speech_emotion", str(version.run_metadata["mlflow_model_version"]))
    assert mv.description.startswith("# Model card: speech emotion recognition") and len(mv.description) <= 5000

    # a cross-validated run's tables (logged here by hand) join the report; no RUN: the latest training run
    pooled = tmp_path / "pooled.csv"
    pd.DataFrame({"model": ["cnn2d_lstm"], "accuracy": [0.5], "f1_macro": [0.4], "uar": [0.45], "n": [20]}).to_csv(
        pooled, index=False)
    client.log_artifact(mlrun.info.run_id, str(pooled), "protocol")
    again = _ser(stack_id, "report", "--out", str(tmp_path / "latest"))
    assert again.returncode == 0 and "report of run e2e_ok" in again.stdout, again.stderr[-3000:]
    index = (tmp_path / "latest" / "index.html").read_text()
    assert 'id="protocols"' in index and "artifact protocol/pooled.csv" in index
    assert pd.read_csv(tmp_path / "latest" / "protocol" / "pooled.csv").loc[0, "uar"] == 0.45


def test_failed_run_is_marked_failed_in_mlflow(e2e_tmp, stack_id):
    # every file shorter than 100 s: ingest (tracked) runs, then the split step fails
    proc = _run_pipeline(e2e_tmp, stack_id, {"ingest": {"min_duration_s": 100}}, "e2e_fail")
    assert proc.returncode != 0
    assert "no file was ingested" in proc.stdout + proc.stderr

    from zenml.client import Client

    run = Client().get_pipeline_run("e2e_fail")
    assert "failed" in str(run.status).lower()
    _, mlrun = _mlflow_run("e2e_fail")
    assert mlrun.info.status == "FAILED"


def test_bad_configuration_is_refused_before_any_step(e2e_tmp, stack_id):
    proc = _run_pipeline(e2e_tmp, stack_id, {"families": {"resnet": {}}}, "e2e_bad_config")
    assert proc.returncode != 0
    assert "unknown model family 'resnet'" in proc.stdout + proc.stderr


def test_single_family_run_has_no_ensemble_and_still_compares(e2e_tmp, stack_id):
    """The pipeline's default shape: one family, no tuning, no ensembles, no stacking."""
    proc = _run_pipeline(
        e2e_tmp, stack_id, {"tuning": {"enabled": False}, "stacking": {"enabled": False},
                    "ablation": {"scaling": False, "logmel_scaling": False}},
        "e2e_single", replace={"families": {"cnn2d_lstm": {"conv_blocks": 1, "filters_first": 4, "lstm_units": 8}},
                               "search_spaces": {}},
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]

    from zenml.client import Client

    run = Client().get_pipeline_run("e2e_single")
    assert "ensemble_models" not in run.steps and "train_stacking_model" not in run.steps
    comparison = run.steps["compare_models"].outputs["comparison"][0].load()
    assert set(comparison["model"]) == {"cnn2d_lstm"} and set(comparison["split"]) == {"val", "test"}


# ----------------------------------------------------------------------------- using what was trained


def _ser(stack_id: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    ser = os.path.join(os.path.dirname(sys.executable), "ser")
    env = {**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id}
    return subprocess.run([ser, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _demo_clips(e2e_tmp) -> list[str]:
    return sorted(str(p) for p in (e2e_tmp / "demo" / "TESS").rglob("*.wav"))


def test_runs_create_model_versions_and_ser_predict_labels_a_clip(e2e_tmp, stack_id):
    """Runs after e2e_ok: a Model version per run, linked to its predictor, registered in MLflow;
    the first became production (alias champion); `ser predict` labels a demo clip with it."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    from speech_emotion.corpora.common import EMOTIONS

    client = Client()
    versions = client.list_model_versions(model_name_or_id="speech_emotion", size=100, hydrate=True).items
    first = client.get_pipeline_run("e2e_ok").model_version
    assert first is not None and first.name in {v.name for v in versions}
    meta = first.run_metadata
    assert len(meta["data_fingerprint"]) == 32 and meta["split_strategy"] == "stratified"
    assert set(meta["corpora"]) == {"tess", "savee", "ravdess", "crema"}
    assert 0 < meta["test_f1_macro"] <= 1 and meta["deployed_model"]
    assert {"predictor", "utterances", "comparison", "scaler"} <= set(first.data_artifact_ids) | set(first.model_artifact_ids)
    production = client.get_model_version("speech_emotion", ModelStages.PRODUCTION)
    assert production.run_metadata["promotion_promote"] is True

    mlclient, mlrun = _mlflow_run("e2e_ok")
    assert mlrun.data.tags["deployed_model"] == meta["deployed_model"]
    assert [d.dataset.digest for d in mlrun.inputs.dataset_inputs] == [meta["data_fingerprint"]]
    experiment = mlclient.get_experiment(mlrun.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    champion = mlclient.get_model_version_by_alias("speech_emotion", "champion")
    assert int(champion.version) == int(production.run_metadata["mlflow_model_version"])

    clip = _demo_clips(e2e_tmp)[0]
    proc = _ser(stack_id, "predict", clip, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    assert len(records) == 1 and records[0]["emotion"] in EMOTIONS and records[0]["error"] is None
    assert sum(records[0][c] for c in EMOTIONS) == pytest.approx(1.0, abs=1e-4)
    assert f"version {production.name}" in proc.stderr

    listing = _ser(stack_id, "model", "list")
    assert listing.returncode == 0 and "production" in listing.stdout


def test_ser_model_promote_and_rollback_keep_zenml_and_mlflow_in_step(e2e_tmp, stack_id):
    from zenml.client import Client
    from zenml.enums import ModelStages

    client = Client()
    production = client.get_model_version("speech_emotion", ModelStages.PRODUCTION)
    others = [v for v in client.list_model_versions(model_name_or_id="speech_emotion", size=100, hydrate=True).items
              if v.id != production.id and (v.run_metadata or {}).get("mlflow_model_version")]
    assert others, "the single-family run must have created a second version"
    target = others[0]
    proc = _ser(stack_id, "model", "promote", target.name)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mlclient, _ = _mlflow_run("e2e_ok")
    assert client.get_model_version("speech_emotion", ModelStages.PRODUCTION).id == target.id
    assert int(mlclient.get_model_version_by_alias("speech_emotion", "champion").version) == int(
        target.run_metadata["mlflow_model_version"])
    proc = _ser(stack_id, "model", "rollback")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert client.get_model_version("speech_emotion", ModelStages.PRODUCTION).id == production.id
    assert int(mlclient.get_model_version_by_alias("speech_emotion", "champion").version) == int(
        production.run_metadata["mlflow_model_version"])


def test_ser_predict_reports_bad_files_and_a_missing_model(e2e_tmp, stack_id, tmp_path):
    clip = _demo_clips(e2e_tmp)[0]
    (tmp_path / "notes.wav").write_text("not audio")
    proc = _ser(stack_id, "predict", clip, str(tmp_path / "notes.wav"), "--csv", str(tmp_path / "out.csv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "notes.wav: error not_audio" in proc.stderr
    import pandas as pd

    table = pd.read_csv(tmp_path / "out.csv")
    assert table["error"].isna().tolist() == [True, False]
    only_bad = _ser(stack_id, "predict", str(tmp_path / "notes.wav"))
    assert only_bad.returncode == 1
    missing = _ser(stack_id, "predict", clip, "--model", "9999")
    assert missing.returncode == 2 and "make demo" in missing.stderr


def test_batch_inference_pipeline_labels_a_folder_with_a_bad_file(e2e_tmp, stack_id, tmp_path):
    import shutil

    import pandas as pd

    folder = tmp_path / "incoming"
    folder.mkdir()
    for clip in _demo_clips(e2e_tmp)[:3]:
        shutil.copy(clip, folder)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    config = {"run_name": "e2e_inference", "model": {"name": "speech_emotion", "version": "production"},
              "parameters": {"folder": str(folder), "out_csv": str(tmp_path / "predictions.csv")}}
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(config))
    zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
    proc = subprocess.run([zenml, "pipeline", "run", "pipelines.inference.inference_pipeline", "-c", str(path)],
                          cwd=ROOT, env={**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id}, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    from zenml.client import Client

    run = Client().get_pipeline_run("e2e_inference")
    table = run.steps["predict_folder"].outputs["predictions"][0].load()
    assert len(table) == 4
    broken = table[table["path"].str.endswith("broken.wav")].iloc[0]
    assert broken["error"] in ("truncated_audio", "unreadable_audio", "empty_audio") and pd.isna(broken["emotion"])
    assert table[~table["path"].str.endswith("broken.wav")]["error"].isna().all()
    report = run.steps["predict_folder"].outputs["predictions_report"][0].load()
    assert "Files per predicted emotion" in report and "broken.wav" in report
    assert (tmp_path / "predictions.csv").is_file()


def test_mlflow_models_serve_answers_with_the_champion(e2e_tmp, stack_id):
    """The real `mlflow models serve` on a free loopback port, posted a demo clip as base64."""
    import base64
    import urllib.request

    from speech_emotion.corpora.common import EMOTIONS

    uri = _ser(stack_id, "mlflow-ui", "--print-uri").stdout.strip()
    port = free_port()
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    # the venv's bin on PATH, as after `source .venv/bin/activate`: MLflow execs `uvicorn` by name
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri,
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    cmd = [mlflow_bin, "models", "serve", "-m", "models:/speech_emotion@champion", "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    with running(cmd, f"http://127.0.0.1:{port}/ping", env=env, cwd=ROOT):
        clip = _demo_clips(e2e_tmp)[0]
        body = json.dumps({"dataframe_split": {"columns": ["audio"],
                                               "data": [[base64.b64encode(open(clip, "rb").read()).decode()]]}})
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as r:
            answer = json.loads(r.read())
        row = answer["predictions"][0]
        assert row["emotion"] in EMOTIONS and row["error"] is None
        assert sum(row[c] for c in EMOTIONS) == pytest.approx(1.0, abs=1e-4)


def test_ser_serve_follows_promotions(e2e_tmp, stack_id):
    """The live service answers with the production version, and after a promotion with the new one."""
    import urllib.request

    from zenml.client import Client
    from zenml.enums import ModelStages

    client = Client()
    production = client.get_model_version("speech_emotion", ModelStages.PRODUCTION)
    other = next(v for v in client.list_model_versions(model_name_or_id="speech_emotion", size=100, hydrate=True).items
                 if v.id != production.id and (v.run_metadata or {}).get("mlflow_model_version"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ser = os.path.join(os.path.dirname(sys.executable), "ser")
    clip = open(_demo_clips(e2e_tmp)[0], "rb").read()

    def predict() -> dict:
        request = urllib.request.Request(f"{url}/predict", data=clip, headers={"Content-Type": "audio/wav"})
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.loads(r.read())

    env = {**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id}
    with running([ser, "serve", "--port", str(port)], f"{url}/health", env=env, cwd=ROOT):
        assert predict()["model_version"] == production.name
        try:
            assert _ser(stack_id, "model", "promote", other.name).returncode == 0
            urllib.request.urlopen(urllib.request.Request(f"{url}/reload", method="POST"), timeout=60).close()
            answer = predict()
            assert answer["model_version"] == other.name and answer["error"] is None
        finally:
            assert _ser(stack_id, "model", "rollback").returncode == 0


def test_retraining_skips_unchanged_data_and_trains_on_new_files(e2e_tmp, stack_id, tmp_path):
    """A first retrain trains (no production yet); a second with the same files ends early with no new
    Model version; a third, after a file was added, trains again and says what changed."""
    import numpy as np
    import soundfile as sf
    from zenml.client import Client

    from speech_emotion.demo_corpus import generate_demo_corpus

    corpus = tmp_path / "corpus"
    generate_demo_corpus(corpus, per_class=2, seed=0, progress=False)
    model = "ser_retrain_test"  # its own Model: independent of the other tests' versions
    config = yaml.safe_load((ROOT / "configs" / "test.yaml").read_text())
    config.pop("model")
    params = config["parameters"]
    params["corpora"] = {c: str(corpus / d) for c, d in
                         (("tess", "TESS"), ("savee", "SAVEE"), ("ravdess", "RAVDESS"), ("crema", "CREMA-D"))}
    params["features"]["cache_dir"] = str(tmp_path / "cache")
    params.update(families={"cnn2d_lstm": {"conv_blocks": 1, "filters_first": 4, "lstm_units": 8}}, search_spaces={},
                  retrain={"force": False, "keep_versions": 5, "model": model})
    params["tuning"]["enabled"] = False
    params["stacking"]["enabled"] = False
    params["ablation"].update(scaling=False, logmel_scaling=False)
    params["promotion"]["registered_model"] = model
    zenml = os.path.join(os.path.dirname(sys.executable), "zenml")

    def retrain(name: str):
        config["run_name"] = name
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        proc = subprocess.run([zenml, "pipeline", "run", "pipelines.retraining.retraining_pipeline", "-c", str(path)],
                              cwd=ROOT, env={**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id},
                              capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
        run = Client().get_pipeline_run(name)
        return run, run.steps["check_for_new_data"].outputs["retrain_decision"][0].load()

    def n_versions() -> int:
        return len(Client().list_model_versions(model_name_or_id=model, size=100).items)

    run, decision = retrain("e2e_retrain_first")
    assert decision["train"] and decision["reason"] == "no production version yet"
    assert "promote_model" in run.steps and n_versions() == 1

    # the unchanged run goes through the crontab line's command, as cron would run it
    from speech_emotion.schedule import STATE_ENV, command_of

    config["run_name"] = "e2e_retrain_unchanged"
    path = tmp_path / "e2e_retrain_unchanged.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id, STATE_ENV: str(tmp_path / "schedule")}
    ser = os.path.join(os.path.dirname(sys.executable), "ser")
    line = subprocess.run([ser, "schedule", "install", "--print", "--config", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True).stdout.strip()
    cron = subprocess.run(["bash", "-c", command_of(line)], env=env, capture_output=True, text=True, timeout=1200)
    log = (tmp_path / "schedule" / "retrain.log").read_text()
    assert cron.returncode == 0, log[-5000:]
    assert "no new data" in log
    run = Client().get_pipeline_run("e2e_retrain_unchanged")
    decision = run.steps["check_for_new_data"].outputs["retrain_decision"][0].load()
    assert not decision["train"] and decision["reason"].startswith("no new data")
    assert set(run.steps) == {"check_for_new_data"} and n_versions() == 1
    _, mlrun = _mlflow_run_in("retraining_pipeline", "e2e_retrain_unchanged")
    assert mlrun.data.tags["retrain"] == "no new data"

    clip = next((corpus / "TESS").rglob("OAF_*_angry.wav"))
    y, sr = sf.read(clip)
    sf.write(clip.parent / "OAF_newword_angry.wav", (0.8 * y).astype(np.float32), sr, subtype="PCM_16")
    run, decision = retrain("e2e_retrain_changed")
    assert decision["train"] and "changed" in decision["reason"]
    changes = run.steps["check_for_new_data"].outputs["data_changes"][0].load()
    assert changes.to_dict("records") == [{"corpus": "tess", "emotion": "angry", "added": 1, "removed": 0, "changed": 0}]
    assert n_versions() == 2
    version = Client().get_pipeline_run("e2e_retrain_changed").steps["register_model"].model_version
    assert version.run_metadata["data_fingerprint"] == decision["fingerprint"]

    # a schedule is the orchestrator's job: the local one refuses it before anything runs
    config["schedule"] = {"cron_expression": "0 3 * * 1"}
    config["run_name"] = "e2e_retrain_scheduled"
    path = tmp_path / "scheduled.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = subprocess.run([zenml, "pipeline", "run", "pipelines.retraining.retraining_pipeline", "-c", str(path)],
                          cwd=ROOT, env={**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "does not support scheduling" in proc.stdout + proc.stderr
