"""`ser clean` and `make clean`: caches go, the stores stay; `ser clean --stores` counts what the ZenML and
MLflow stores hold and deletes them only when confirmed.

The stores are real: a fresh ZenML config folder (its own SQLite store, local artifact store and the
MLflow tracker's database) filled in a subprocess with two pipeline runs, two models with three versions,
and MLflow runs and registered versions; ZenML binds to ``ZENML_CONFIG_PATH`` when it is imported, so
every step runs in its own process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SER = str(Path(sys.executable).with_name("ser"))

FILL = textwrap.dedent('''
    import mlflow
    from zenml import pipeline, step
    from zenml.client import Client

    from speech_emotion.cli import mlflow_tracking_uri, setup_stack

    @step
    def one() -> int:
        return 1

    @pipeline(enable_cache=False)
    def tiny():
        one()

    if __name__ == "__main__":
        setup_stack(None)
        tiny()
        tiny()
        client = Client()
        for name, versions in (("speech_emotion", ["v1", "v2"]), ("other", ["a"])):
            client.create_model(name)
            for version in versions:
                client.create_model_version(name, version)
        mlflow.set_tracking_uri(mlflow_tracking_uri())
        mlflow.set_experiment("training_pipeline")
        with mlflow.start_run() as run:
            with mlflow.start_run(nested=True):  # a tuning trial: a child run counts too
                pass
        with mlflow.start_run():
            pass
        registry = mlflow.MlflowClient()
        registry.create_registered_model("speech_emotion")
        for _ in range(2):
            registry.create_model_version("speech_emotion", f"runs:/{run.info.run_id}/predictor", run.info.run_id)
''')


@pytest.fixture
def store(tmp_path) -> tuple[Path, dict]:
    home = tmp_path / "zenml-home"
    env = {**os.environ, "ZENML_CONFIG_PATH": str(home), "ZENML_REPOSITORY_PATH": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("ZENML_ACTIVE_STACK_ID", None)
    (tmp_path / "fill.py").write_text(FILL)
    subprocess.run([sys.executable, "fill.py"], cwd=tmp_path, env=env, check=True, capture_output=True)
    return home, env


def _clean(env: dict, cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([SER, "clean", "--stores", *args], cwd=cwd, env=env, input=stdin, text=True,
                          capture_output=True)


def test_clean_stores_counts_what_it_would_delete_and_refuses_without_confirmation(store, tmp_path):
    home, env = store
    refused = _clean(env, tmp_path, stdin="")  # no answer (as in CI, or `make clean-stores` with no terminal)
    assert refused.returncode == 1, refused.stderr
    out = refused.stdout
    assert "ZenML: 2 model(s) with 3 version(s), 2 pipeline run(s)" in out, out
    assert "2 registered model(s)" not in out
    assert "1 registered model(s) with 2 version(s), 3 run(s) in " in out, out
    assert "nothing deleted" in refused.stderr and "CONFIRM=1" in refused.stderr
    assert home.is_dir() and any(home.rglob("zenml.db")) and any(home.rglob("mlflow.db"))

    no = _clean(env, tmp_path, stdin="no\n")
    assert no.returncode == 1 and home.is_dir()

    confirmed = _clean(env, tmp_path, stdin="yes\n")
    assert confirmed.returncode == 0, confirmed.stderr
    assert not home.exists()
    again = _clean(env, tmp_path, "--yes")
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_make_clean_removes_caches_and_keeps_the_stores(tmp_path):
    """`make clean` in a copy of the Makefile: data/cache goes; .zenml-home and the demo corpus stay."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for rel in ("data/cache/features/ab/x.npz", "data/cache/content-hashes/h.json", ".zenml-home/zenml.db",
                "data/demo/TESS/a.wav", "pkg/__pycache__/m.pyc"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    subprocess.run(["make", "-s", "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert not (tmp_path / "data/cache").exists() and not (tmp_path / "pkg/__pycache__").exists()
    assert (tmp_path / ".zenml-home/zenml.db").is_file() and (tmp_path / "data/demo/TESS/a.wav").is_file()


def test_ser_clean_removes_only_the_caches(tmp_path, monkeypatch, capsys):
    from speech_emotion.cli import main

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "speech-emotion"\n')
    for rel in ("data/cache/features/x.npz", ".pytest_cache/v", ".zenml-home/zenml.db", "data/demo/a.wav",
                "data/schedule/retrain.log"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    monkeypatch.chdir(tmp_path)
    assert main(["clean"]) == 0
    assert "removed data/cache, .pytest_cache" in capsys.readouterr().out
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        ".zenml-home/zenml.db", "data/demo/a.wav", "data/schedule/retrain.log", "pyproject.toml"]
