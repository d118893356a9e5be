"""Two runs at once on a fresh store, and a run killed during training then resumed from the cache.

A smaller profile than configs/test.yaml (one network family, tuning on so that keras-tuner's
folders are exercised, no stacking, no ablation), each scenario on its own fresh ZenML store
created by `ser setup` (which also creates MLflow's database), as on a fresh clone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# figures not compared between runs: timings and throughputs are measured, not computed; and only a run
# that finds another's version already in production scores it (runs started together promote in either order)
NOT_COMPARED = re.compile(r"time|clips_per_s|^promotion\.production_")

INSPECT = '''
import json, sys
import mlflow
from zenml.client import Client

client = Client()
ml = mlflow.MlflowClient(client.active_stack.experiment_tracker.get_tracking_uri())
experiments = [e.experiment_id for e in ml.search_experiments()]
out = {}
for name in sys.argv[1:]:
    run = client.get_pipeline_run(name)
    found = ml.search_runs(experiments, filter_string=f'tags.mlflow.runName = "{name}"') if experiments else []
    found = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    comparison = None
    if "compare_models" in run.steps and run.steps["compare_models"].status.value in ("completed", "cached"):
        comparison = run.steps["compare_models"].outputs["comparison"][0].load().to_dict("records")
    out[name] = {
        "status": run.status.value, "reason": run.get_body().status_reason,
        "steps": {s: st.status.value for s, st in run.steps.items()},
        "mlflow": [{"status": r.info.status, "metrics": r.data.metrics, "tags": r.data.tags} for r in found],
        "comparison": comparison,
        "versions": len(client.list_model_versions(model_name_or_id="speech_emotion", size=100).items),
    }
print("INSPECT" + json.dumps(out, default=str))
'''


class Store:
    """A fresh ZenML store (and MLflow database) made by `ser setup`, and runs on it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.home = folder / "zenml-home"
        self.env = {k: v for k, v in os.environ.items() if k != "ZENML_ACTIVE_STACK_ID"}
        # no .zen in the repository path: the source root stays the project (cwd)
        self.env.update(ZENML_CONFIG_PATH=str(self.home), ZENML_REPOSITORY_PATH=str(self.home))
        setup = subprocess.run([str(BIN / "ser"), "setup", "--root", str(folder / "repo")], cwd=ROOT, env=self.env,
                               capture_output=True, text=True, timeout=600)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        # MLflow's database exists and is migrated before any run (runs started together would race on it)
        uri = re.search(r"MLflow tracking URI: sqlite:///(\S+)", setup.stdout)
        assert uri, setup.stdout
        import sqlite3

        with sqlite3.connect(uri.group(1)) as db:
            assert db.execute("select version_num from alembic_version").fetchall()
            assert db.execute("select count(*) from experiments").fetchone()[0] >= 1
        (folder / "inspect_runs.py").write_text(INSPECT)

    def config(self, name: str, cache: bool) -> Path:
        config = yaml.safe_load((ROOT / "configs" / "test.yaml").read_text())
        config["run_name"] = name
        config["enable_cache"] = cache
        params = config["parameters"]
        # one demo corpus and one feature cache for every run: concurrent writers to both
        params["corpora"]["demo"]["root"] = str(self.folder.parent / "demo")
        params["features"]["cache_dir"] = str(self.folder / "features")
        params["families"] = {"cnn2d_lstm": params["families"]["cnn2d_lstm"]}
        params["search_spaces"] = {"cnn2d_lstm": params["search_spaces"]["cnn2d_lstm"]}
        params["stacking"]["enabled"] = False
        params["ablation"].update(scaling=False, logmel_scaling=False)
        path = self.folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self, name: str, cache: bool = True) -> tuple[subprocess.Popen, Path]:
        log = self.folder / f"{name}.log"
        proc = subprocess.Popen([str(BIN / "zenml"), "pipeline", "run", "pipelines.training.training_pipeline",
                                 "-c", str(self.config(name, cache))], cwd=ROOT, env=self.env,
                                stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        return proc, log

    def inspect(self, *names: str) -> dict:
        proc = subprocess.run([sys.executable, str(self.folder / "inspect_runs.py"), *names], cwd=self.folder,
                              env=self.env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        line = next(x for x in proc.stdout.splitlines() if x.startswith("INSPECT"))
        return json.loads(line[len("INSPECT"):])


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 1500) -> None:
    try:
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 0, log.read_text()[-6000:]


def _figures(run: dict) -> dict[str, float]:
    (mlflow_run,) = run["mlflow"]
    return {k: v for k, v in mlflow_run["metrics"].items() if not NOT_COMPARED.search(k)}


def _table(run: dict) -> list[dict]:
    return [{k: v for k, v in row.items() if not NOT_COMPARED.search(k)} for row in run["comparison"]]


@pytest.fixture(scope="module")
def runs_at_once(tmp_path_factory) -> dict:
    """Two uncached runs started together, the first ever on a fresh store."""
    store = Store(tmp_path_factory.mktemp("faults") / "at-once")
    started = [store.start(name, cache=False) for name in ("at_once_a", "at_once_b")]
    for proc, log in started:
        _finish(proc, log)
    return store.inspect("at_once_a", "at_once_b")


def test_two_runs_started_together_on_a_fresh_store_both_complete_alike(runs_at_once):
    a, b = runs_at_once["at_once_a"], runs_at_once["at_once_b"]
    for run in (a, b):
        assert run["status"] == "completed"
        assert "completed" == run["steps"]["tune_cnn2d_lstm"]  # keras-tuner ran in both, side by side
        assert [r["status"] for r in run["mlflow"]] == ["FINISHED"]
    assert a["versions"] == 2  # one Model version each
    figures = _figures(a)
    assert len(figures) > 20 and "cnn2d_lstm.test_f1_macro" in figures
    assert figures == _figures(b)
    assert _table(a) == _table(b)


def test_a_run_killed_during_training_resumes_from_the_cache(tmp_path_factory, runs_at_once):
    store = Store(tmp_path_factory.mktemp("faults") / "killed")
    proc, log = store.start("killed")
    started = re.compile(r"tune_cnn2d_lstm\S* has started")
    try:
        deadline = time.time() + 1200
        while not started.search(re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())):
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-5000:]
            time.sleep(0.5)
        time.sleep(3)  # inside Hyperband's first trials
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = store.inspect("killed")["killed"]
    assert killed["status"] == "running" and killed["steps"]["tune_cnn2d_lstm"] == "running"
    finished = {step for step, status in killed["steps"].items() if status == "completed"}
    assert {"ingest_corpora", "split_dataset", "scale_features"} <= finished

    proc, log = store.start("resumed")
    _finish(proc, log)
    found = store.inspect("killed", "resumed")
    killed, resumed = found["killed"], found["resumed"]
    assert resumed["status"] == "completed"
    assert {step for step, status in resumed["steps"].items() if status == "cached"} == finished
    # the results equal those of the runs that were never interrupted
    assert _table(resumed) == _table(runs_at_once["at_once_a"])
    uninterrupted = _figures(runs_at_once["at_once_a"])
    assert _figures(resumed).items() <= uninterrupted.items()  # cached steps logged to the killed run
    # the killed run no longer claims to be running, and says who found it
    assert killed["status"] == "failed" and "run 'resumed'" in killed["reason"]
    (mlflow_killed,) = killed["mlflow"]
    assert mlflow_killed["status"] == "KILLED" and "run 'resumed'" in mlflow_killed["tags"]["ser.end_reason"]
