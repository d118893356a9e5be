"""The training pipeline on a stack beyond one machine's disk, all on loopback: a real S3 API (moto) holds the
corpora, the per-clip feature cache, ZenML's artifact store and MLflow's artifacts; a real MLflow tracking server
(started here) is the stack's experiment tracker. The cheapest variant of ``configs/test.yaml`` runs end to end,
then again, served from ZenML's cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import fsspec
import pytest
import yaml

from tests.conftest import ROOT
from tests.servers import free_port, running

pytestmark = pytest.mark.slow


def _config(name: str, corpora: dict[str, str], bucket: str, model: str) -> dict:
    """configs/test.yaml cut to one small family, no tuning, ensembles, stacking or ablation; corpora and the
    feature cache on s3://."""
    config = yaml.safe_load((ROOT / "configs" / "test.yaml").read_text())
    config["run_name"] = name
    config["model"]["name"] = model
    params = config["parameters"]
    params["corpora"] = dict(corpora)
    params["features"]["cache_dir"] = f"{bucket}/cache/features"
    params["families"] = {"cnn1d_lstm": params["families"]["cnn1d_lstm"]}
    params["tuning"] = {"enabled": False}
    params.pop("search_spaces")
    params["ensemble"] = {"average": False, "ga_enabled": False}
    params["stacking"] = {"enabled": False}
    params["ablation"] = {"scaling": False}
    params["promotion"]["registered_model"] = model
    return config


def _run(tmp: Path, config: dict, env: dict) -> subprocess.CompletedProcess:
    path = tmp / f"{config['run_name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
    return subprocess.run([zenml, "pipeline", "run", "pipelines.training.training_pipeline", "-c", str(path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def s3_stack(s3_server, demo_corpus, tmp_path_factory):
    """A bucket holding the demo corpus; an MLflow tracking server whose artifacts go to the bucket; a ZenML stack
    (local orchestrator, S3 artifact store, that MLflow server as tracker) in the private store."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    tmp = tmp_path_factory.mktemp("s3stack")
    bucket = f"s3://ser-e2e-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("s3")
    fs.mkdir(bucket.removeprefix("s3://"))
    corpora = {}
    for corpus, root in demo_corpus.items():
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            fs.pipe_file(f"{bucket}/corpora/{corpus}/{path.relative_to(root).as_posix()}".removeprefix("s3://"),
                         path.read_bytes())
        corpora[corpus] = f"{bucket}/corpora/{corpus}"

    port = free_port()
    tracking = f"http://127.0.0.1:{port}"
    mlflow = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
              "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", f"{bucket}/mlflow"]
    with running(mlflow, f"{tracking}/health", env={**os.environ}, cwd=tmp, timeout=180):
        client = Client()
        suffix = uuid.uuid4().hex[:6]
        store = client.create_stack_component(
            f"s3_store_{suffix}", "s3", StackComponentType.ARTIFACT_STORE,
            configuration={"path": f"{bucket}/zenml",
                           "client_kwargs": {"endpoint_url": s3_server["AWS_ENDPOINT_URL_S3"],
                                             "region_name": "us-east-1"}})
        # a remote tracking server needs credentials; as in the recipes, they live in a ZenML secret (this
        # server has no authentication and ignores them)
        secret = f"mlflow_{suffix}"
        client.create_secret(secret, values={"username": "ser", "password": "unused"})
        tracker = client.create_stack_component(
            f"mlflow_remote_{suffix}", "mlflow", StackComponentType.EXPERIMENT_TRACKER,
            configuration={"tracking_uri": tracking, "tracking_username": f"{{{{{secret}.username}}}}",
                           "tracking_password": f"{{{{{secret}.password}}}}"})
        stack = client.create_stack(f"s3_stack_{suffix}", components={
            StackComponentType.ORCHESTRATOR: "default",
            StackComponentType.ARTIFACT_STORE: store.name,
            StackComponentType.EXPERIMENT_TRACKER: tracker.name,
        })
        env = {**os.environ, "ZENML_ACTIVE_STACK_ID": str(stack.id)}
        previous = client.active_stack_model.id
        client.activate_stack(stack.id)  # this process loads the runs' artifacts from the bucket
        try:
            yield {"bucket": bucket, "corpora": corpora, "tracking": tracking, "env": env, "tmp": tmp,
                   "model": f"speech_emotion_s3_{suffix}"}
        finally:
            client.activate_stack(previous)


def test_training_pipeline_on_s3_with_remote_mlflow(s3_stack, demo_corpus):
    import mlflow
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    from speech_emotion.corpora.fingerprint import data_fingerprint
    from speech_emotion.corpora.ingest import ingest_corpora

    bucket, env, tmp = s3_stack["bucket"], s3_stack["env"], s3_stack["tmp"]
    fs = fsspec.filesystem("s3")
    first = _config("s3_first", s3_stack["corpora"], bucket, s3_stack["model"])
    proc = _run(tmp, first, env)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]

    client = Client()
    run = client.get_pipeline_run("s3_first")
    assert run.status == ExecutionStatus.COMPLETED

    # the corpora were read from the bucket; ids (corpus, relpath) and the data fingerprint are the local copy's
    utterances = run.steps["ingest_corpora"].outputs["utterances"][0]
    assert utterances.uri.startswith(f"{bucket}/zenml/")
    table = utterances.load()
    assert len(table) > 0 and table["path"].str.startswith(f"{bucket}/corpora/").all()
    assert data_fingerprint(table) == data_fingerprint(ingest_corpora(demo_corpus, progress=False).utterances)

    # feature sets are stored in the bucket and load without leaving their download behind
    features = run.steps["scale_features"].outputs["train_features"][0]
    assert features.uri.startswith(f"{bucket}/zenml/")
    before = set(Path(tempfile.gettempdir()).glob("zenml-*"))
    train = features.load()
    params = run.steps["resolve_feature_params"].outputs["feature_params"][0].load()  # duration_s: auto
    assert train.logmel.shape[1:] == (128, params.n_frames) and len(train) > 0
    assert set(Path(tempfile.gettempdir()).glob("zenml-*")) <= before
    # the per-clip feature cache is in the bucket: one entry per clip extracted and per augmented copy
    cached = [k for k in fs.find(f"{bucket}/cache/features".removeprefix("s3://")) if k.endswith(".npz")]
    copies = len(train) - len(train.originals())  # configs/test.yaml: one augmented copy of each training clip
    assert copies > 0 and len(cached) == len(table) + copies

    predictor = run.steps["build_predictor"].outputs["predictor"][0]
    assert predictor.uri.startswith(f"{bucket}/zenml/")
    assert predictor.load().predict_paths([table["path"].iloc[0]])["error"].isna().all()

    # MLflow: the run on the tracking server, its artifacts (figures, models) in the bucket
    ml = mlflow.MlflowClient(tracking_uri=s3_stack["tracking"])
    runs = ml.search_runs([ml.get_experiment_by_name("training_pipeline").experiment_id],
                          filter_string='tags.mlflow.runName = "s3_first"')
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert "cnn1d_lstm.test_f1_macro" in runs[0].data.metrics
    assert fs.find(f"{bucket}/mlflow".removeprefix("s3://")), "no MLflow artifact reached the bucket"
    assert ml.get_model_version_by_alias(s3_stack["model"], "champion").version == "1"

    # the same configuration again: everything up to the predictor comes from ZenML's cache
    second = {**first, "run_name": "s3_second"}
    proc = _run(tmp, second, env)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    again = client.get_pipeline_run("s3_second")
    assert again.status == ExecutionStatus.COMPLETED
    for step in ("ingest_corpora", "split_dataset", "extract_train_features", "extract_val_features",
                 "extract_test_features", "scale_features", "train_cnn1d_lstm", "build_predictor"):
        assert again.steps[step].status == ExecutionStatus.CACHED, step
