"""Batch inference: label a folder of audio with the production model.

    zenml pipeline run pipelines.inference.inference_pipeline -c configs/inference.yaml

The Model version comes from the config (``model: {name: speech_emotion, version: production}``),
through ZenML's Model Control Plane. The output is a predictions table (one row per file, bad files
with their error), an HTML report with the counts per emotion, a CSV, and an MLflow run.
"""

from __future__ import annotations

from pathlib import Path

from zenml import pipeline

from pipelines._runs import RUN_HOOKS
from pipelines.disk_check import check_storage
from steps.inference import predict_folder


def _absolute(path: str) -> str:
    from zenml.utils import source_utils

    p = Path(path).expanduser()
    return str(p if p.is_absolute() else Path(source_utils.get_source_root()) / p)


@pipeline(enable_cache=False, **RUN_HOOKS)
def inference_pipeline(folder: str = "data/demo", out_csv: str | None = None) -> None:
    """``folder`` and ``out_csv`` are relative to the project root unless absolute."""
    check_storage()
    predict_folder(folder=_absolute(folder), out_csv=_absolute(out_csv) if out_csv else None)
