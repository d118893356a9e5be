"""One real ``zenml pipeline run`` of the training pipeline, end to end, on the embedded stack.

A private ZenML store (conftest), a tiny demo corpus, a tiny model, one epoch.
Asserts the run completed, its artifacts load, and MLflow holds the run's
parameters, metrics and figures; then a run that fails leaves its MLflow run FAILED.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

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
    import mlflow
    from zenml.client import Client

    tracker = Client().get_stack_component("experiment_tracker", "mlflow_tracker")
    from zenml.stack.stack_component import StackComponent

    uri = StackComponent.from_model(tracker).get_tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("training_pipeline").experiment_id],
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
    assert train.scaled and train.logmel.shape[1:] == (128, 251)
    assert isinstance(train.logmel, np.memmap)  # .npy, memory-mapped, not a pickle

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
    expected = {"cnn2d_lstm", "cnn1d_lstm", "functionals_svm", "cnn2d_lstm_no_scaled", "average_voting",
                "ga_ensemble", "stacking"}
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
    assert 0.0 <= m["cnn2d_lstm.val_accuracy"] <= 1.0
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
        e2e_tmp, stack_id, {"tuning": {"enabled": False}, "stacking": {"enabled": False}, "ablation": {"scaling": False}},
        "e2e_single", replace={"families": {"cnn2d_lstm": {"conv_blocks": 1, "filters_first": 4, "lstm_units": 8}},
                               "search_spaces": {}},
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]

    from zenml.client import Client

    run = Client().get_pipeline_run("e2e_single")
    assert "ensemble_models" not in run.steps and "train_stacking_model" not in run.steps
    comparison = run.steps["compare_models"].outputs["comparison"][0].load()
    assert set(comparison["model"]) == {"cnn2d_lstm"} and set(comparison["split"]) == {"val", "test"}
