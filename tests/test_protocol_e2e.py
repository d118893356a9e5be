"""A real ``zenml pipeline run`` of a protocol: speaker 2-fold on the tiny demo corpus.

One tiny family, the baseline and both voting ensembles per fold; the pooled and per-fold tables
land in the pipeline run's MLflow run; features are extracted once; no Model version is created.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

RUN = "e2e_protocol"


def protocol_config(tmp_path) -> dict:
    """configs/protocol.yaml made tiny: the test profile's corpus, one tiny family, one epoch."""
    config = yaml.safe_load((ROOT / "configs" / "protocol.yaml").read_text())
    assert "model" not in config  # an evaluation run versions nothing
    params = config["parameters"]
    params["evaluation"] = {"protocol": "speaker_kfold", "folds": 2, "bootstrap": 200}
    params["corpora"]["demo"] = {"root": str(tmp_path / "demo"), "per_class": 2, "seed": 0}
    params["features"] = {"cache_dir": str(tmp_path / "cache"), "workers": 1, "scale": True}
    params["families"] = {"cnn2d_lstm": {"kernel_size": 3, "conv_blocks": 1, "filters_first": 4, "filters_next": 4,
                                         "lstm_units": 4},
                          "functionals_svm": {"features": "egemaps"}}
    params["training"] = {"epochs": 1, "batch_size": 16, "early_stopping_patience": 0, "seed": 0}
    params["ensemble"] = {"average": True, "ga_enabled": True, "ga": {"population_size": 6, "generations": 2,
                                                                      "restarts": 1, "seed": 0}}
    config["run_name"] = RUN
    return config


def _models(client):
    return {m.name: len(client.list_model_versions(model_name_or_id=m.id, size=100).items)
            for m in client.list_models(size=100).items}


def _csv(client, run_id: str, path: str) -> pd.DataFrame:
    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path,
                                                tracking_uri=client._tracking_client.tracking_uri)
    with open(local) as f:
        return pd.read_csv(io.StringIO(f.read()))


def test_speaker_kfold_protocol_end_to_end(tmp_path, zenml_home):
    from zenml.client import Client

    from speech_emotion.cli import setup_stack
    from tests.test_pipeline_e2e import _mlflow_run_in

    stack_id = setup_stack(root=None, activate=False)
    before = _models(Client())
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(protocol_config(tmp_path), sort_keys=False))
    zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
    proc = subprocess.run([zenml, "pipeline", "run", "pipelines.training.training_pipeline", "-c", str(path)],
                          cwd=ROOT, env={**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id},
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]

    client = Client()
    run = client.get_pipeline_run(RUN)
    assert run.model_version is None and _models(client) == before  # registers nothing
    steps = set(run.steps)
    assert {"build_predictor", "register_model", "promote_model", "split_dataset"}.isdisjoint(steps)
    # features and functionals once for every utterance; then each fold's own scaler, models, ensembles
    assert {"extract_features", "extract_functionals_egemaps"} <= steps
    assert not any(s.startswith("extract_") for s in steps - {"extract_features", "extract_functionals_egemaps"})
    for k in (1, 2):
        assert {f"scale_features_fold{k}", f"train_cnn2d_lstm_fold{k}", f"train_functionals_svm_model_fold{k}",
                f"ensemble_models_fold{k}", f"collect_predictions_fold{k}"} <= steps

    utterances = run.steps["ingest_corpora"].outputs["utterances"][0].load()
    folds = run.steps["make_protocol_folds"].outputs["protocol_folds_table"][0].load()
    tests = [set(folds[(folds["fold"] == k) & (folds["part"] == "test")]["path"]) for k in (1, 2)]
    assert not tests[0] & tests[1] and tests[0] | tests[1] == set(utterances["path"])
    speakers = utterances.set_index("path")["speaker"]
    for k in (1, 2):  # speaker-disjoint parts in every fold
        parts = {p: set(speakers[folds[(folds["fold"] == k) & (folds["part"] == p)]["path"]]) for p in
                 ("train", "val", "test")}
        assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"] or parts["val"] & parts["test"])
    weights = run.steps["ensemble_models_fold1"].outputs["ga_weights"][0].load()
    assert list(weights["model"]) == ["cnn2d_lstm", "functionals_svm"]

    mlclient, mlrun = _mlflow_run_in("training_pipeline", RUN)
    assert mlrun.info.status == "FINISHED"
    assert mlrun.data.tags["protocol"] == "speaker_kfold"
    assert mlrun.data.params["evaluation.protocol"] == "speaker_kfold"
    pooled = _csv(mlclient, mlrun.info.run_id, "protocol/pooled.csv")
    assert list(pooled.columns) == ["model", "accuracy", "f1_macro", "uar", "n",
                                    "accuracy_ci_low", "accuracy_ci_high", "f1_macro_ci_low", "f1_macro_ci_high",
                                    "uar_ci_low", "uar_ci_high"]
    assert set(pooled["model"]) == {"cnn2d_lstm", "functionals_svm", "average_voting", "ga_ensemble"}
    assert (pooled["n"] == len(utterances)).all()  # every utterance tested once, pooled
    assert ((pooled["accuracy_ci_low"] <= pooled["accuracy"]) & (pooled["accuracy"] <= pooled["accuracy_ci_high"])).all()
    per_fold = _csv(mlclient, mlrun.info.run_id, "protocol/folds.csv")
    assert {"protocol", "fold", "held_out", "model", "n", "accuracy", "f1_macro", "uar",
            "absent_classes"} <= set(per_fold.columns)
    assert len(per_fold) == 2 * 4 and set(per_fold["protocol"]) == {"speaker_kfold"}
    assert per_fold.groupby("model")["n"].sum().eq(len(utterances)).all()
    # the pooled table is what the steps' artifact holds, and what MLflow's metrics say
    artifact = run.steps["pool_protocol"].outputs["protocol_pooled"][0].load().set_index("model")
    svm = pooled.set_index("model").loc["functionals_svm"]
    assert svm["uar"] == pytest.approx(artifact.loc["functionals_svm", "uar"])
    assert mlrun.data.metrics["protocol.functionals_svm.uar"] == pytest.approx(svm["uar"])
    artifacts = {a.path for a in mlclient.list_artifacts(mlrun.info.run_id, "protocol")}
    assert {"protocol/per_gender.csv", "protocol/absent_classes.csv", "protocol/report.html"} <= artifacts
    report = run.steps["pool_protocol"].outputs["protocol_report"][0].load()
    assert "Protocol: speaker_kfold" in report and "stratified 20 %" not in report

    # the same run again: every fold's work comes from the cache; the pooled figures are logged again
    path.write_text(yaml.safe_dump({**protocol_config(tmp_path), "run_name": f"{RUN}_again"}, sort_keys=False))
    proc = subprocess.run([zenml, "pipeline", "run", "pipelines.training.training_pipeline", "-c", str(path)],
                          cwd=ROOT, env={**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id},
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    again = client.get_pipeline_run(f"{RUN}_again")
    status = {name: s.status.value for name, s in again.steps.items()}
    assert status.pop("pool_protocol") == "completed" and set(status.values()) == {"cached"}, status
    _, mlrun = _mlflow_run_in("training_pipeline", f"{RUN}_again")
    assert _csv(mlclient, mlrun.info.run_id, "protocol/pooled.csv").equals(pooled)


def test_a_protocol_run_that_names_a_model_is_refused_before_any_step(tmp_path, zenml_home):
    from zenml.client import Client

    from speech_emotion.cli import setup_stack

    stack_id = setup_stack(root=None, activate=False)
    config = {**protocol_config(tmp_path), "run_name": "e2e_protocol_model", "model": {"name": "speech_emotion"}}
    path = tmp_path / "protocol_model.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
    proc = subprocess.run([zenml, "pipeline", "run", "pipelines.training.training_pipeline", "-c", str(path)],
                          cwd=ROOT, env={**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "evaluation.protocol speaker_kfold is an evaluation run and creates no Model version" in proc.stdout + proc.stderr
    assert not Client().get_pipeline_run("e2e_protocol_model").steps  # refused before any step ran
