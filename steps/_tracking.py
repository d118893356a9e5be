"""MLflow logging that is a no-op outside an MLflow run.

Steps log through these so that calling ``step.entrypoint(...)`` in a test, or
on a stack without the MLflow tracker, never writes a stray ``./mlruns``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import mlflow


def active() -> bool:
    return mlflow.active_run() is not None


MLFLOW_FIX = ("free space there (`make clean-stores` removes every old run and model), make it writable, or set "
              "the tracker's tracking_uri to another place")
#: what SQLite says when the tracking database's disk is full or read-only (it arrives wrapped, not as OSError)
_SQLITE_FULL, _SQLITE_READ_ONLY = "database or disk is full", "attempt to write a readonly database"


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    """A read-only or full MLflow folder gives one error naming it and the fix (not a deep SQLAlchemy one)."""
    from pathlib import Path

    from speech_emotion.disks import Place, StorageError, writing

    uri = mlflow.get_tracking_uri()
    folder = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else Path(uri)
    place = Place(folder, "the MLflow tracking folder", MLFLOW_FIX)
    try:
        with writing(place):
            yield
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - only SQLite's two storage messages are translated
        text = str(exc)
        if _SQLITE_FULL in text:
            raise StorageError(errno.ENOSPC, place.message("is on a full disk (SQLite: database or disk is full)")) from exc
        if _SQLITE_READ_ONLY in text:
            raise StorageError(errno.EROFS, place.message("is read-only (SQLite: attempt to write a readonly database)")) \
                from exc
        raise


def _flat(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flat(name, value))
        else:
            out[name] = value
    return out


def log_params(prefix: str, values: dict[str, Any]) -> None:
    if active():
        with _writing():
            mlflow.log_params({k: ("" if v is None else v) for k, v in _flat(prefix, values).items()})


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    if active() and metrics:
        with _writing():
            mlflow.log_metrics(metrics, step=step)


def log_figure(fig, artifact_file: str) -> None:
    import matplotlib.pyplot as plt

    if active():
        with _writing():
            mlflow.log_figure(fig, artifact_file)
    plt.close(fig)


def report_figure(report, fig, caption: str, artifact_file: str) -> None:
    """A figure into an HTML report (embedded PNG) and into the MLflow run; closes it."""
    from speech_emotion.reports import figure_png

    report.image(figure_png(fig, close=False), caption)
    log_figure(fig, artifact_file)


def log_table(df, artifact_file: str) -> None:
    """A pandas table as CSV (opens in the MLflow UI's artifact viewer)."""
    if active():
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, os.path.basename(artifact_file))
            df.to_csv(path)
            with _writing():
                mlflow.log_artifact(path, os.path.dirname(artifact_file) or None)


def log_text(text: str, artifact_file: str) -> None:
    if active():
        with _writing():
            mlflow.log_text(text, artifact_file)


def log_dict(values: dict, artifact_file: str) -> None:
    if active():
        with _writing():
            mlflow.log_text(json.dumps(values, indent=2, default=str), artifact_file)


def set_tags(tags: dict[str, str]) -> None:
    if active():
        mlflow.set_tags(tags)


@contextlib.contextmanager
def child_run(name: str, tags: dict[str, str] | None = None) -> Iterator[None]:
    """A nested MLflow run under the active one (a no-op without an active run)."""
    if not active():
        yield
        return
    # not ``with mlflow.start_run(...)``: that ends the child FAILED on any exception, and an
    # interrupted run's children end KILLED, as the run itself does (pipelines/_runs.py)
    child = mlflow.start_run(run_name=name, nested=True, tags=tags or {})
    status = "FINISHED"
    try:
        yield
    except BaseException as exc:
        status = "KILLED" if interrupted(exc) else "FAILED"
        raise
    finally:
        current = mlflow.active_run()
        if current is not None and current.info.run_id == child.info.run_id:  # not ended by a signal's handling
            mlflow.end_run(status=status)


def interrupted(exc: BaseException) -> bool:
    """A signal (SIGTERM, SIGINT) stopped the step, as opposed to an error in it."""
    return isinstance(exc, KeyboardInterrupt) or type(exc).__name__ in ("RunInterruptedException",
                                                                        "RunStoppedException")


def set_experiment_kind() -> None:
    """Open the experiment in MLflow's model-training view (MLflow 3 shows GenAI views for unknown kinds)."""
    if active():
        mlflow.set_experiment_tag("mlflow.experimentKind", "custom_model_development")


def log_dataset(df, name: str, digest: str) -> None:
    """The utterance table as the run's dataset input: the runs table's Dataset column names it."""
    if not active():
        return
    columns = [c for c in ("relpath", "corpus", "speaker", "emotion", "duration_s", "content_hash") if c in df.columns]
    dataset = mlflow.data.from_pandas(df[columns], targets="emotion", name=name, digest=digest)
    mlflow.log_input(dataset, context="training")
