"""Batch inference: a folder of audio through the production predictor into a predictions table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import pandas as pd
from zenml import get_step_context, log_metadata, step
from zenml.types import HTMLString

from speech_emotion import reports
from speech_emotion.predictor import Predictor, find_audio_files
from steps import _tracking

logger = logging.getLogger(__name__)


@step(enable_cache=False, experiment_tracker=True)
def predict_folder(
    folder: str, out_csv: str | None = None
) -> tuple[Annotated[pd.DataFrame, "predictions"], Annotated[HTMLString, "predictions_report"]]:
    """Label every audio file under ``folder`` with the predictor of the run's Model version
    (``model: {name: speech_emotion, version: production}`` in the config). Bad files are rows with their error."""
    from tqdm.auto import tqdm

    model = get_step_context().model
    predictor: Predictor = model.load_artifact("predictor")
    paths = find_audio_files([folder])
    logger.info("%d audio files under %s; model %s version %s: %s", len(paths), folder, model.name, model.version,
                predictor.describe())
    with tqdm(total=len(paths), desc="predict", unit="file") as bar:
        table = predictor.predict_paths(paths, progress=bar.update)
    failed = table[table["error"].notna()]
    for _, row in failed.iterrows():
        logger.warning("%s: %s: %s", row["path"], row["error"], row["error_detail"])

    counts = table["emotion"].value_counts().rename_axis("emotion").to_frame("files")
    report = reports.HtmlReport(f"Predictions for {folder}")
    report.paragraph(f"{len(table)} files, {len(table) - len(failed)} labelled, {len(failed)} could not be read. "
                     f"Model: {model.name} version {model.version} ({predictor.describe()}).")
    if len(counts):
        report.table(counts, "Files per predicted emotion")
        fig = reports.class_distribution_figure(table.dropna(subset=["emotion"]), "Predicted emotions")
        _tracking.report_figure(report, fig, "predicted emotions", "predictions/emotions.png")
    if len(failed):
        report.table(failed.set_index("path")[["error", "error_detail"]], "Files that could not be labelled")
    report.table(table.set_index("path").drop(columns=["error_detail"]), "Every file")

    _tracking.log_params("inference", {"folder": folder, "model_version": str(model.version),
                                       "deployed_model": predictor.name})
    _tracking.log_metrics({"files": float(len(table)), "files_failed": float(len(failed))})
    _tracking.log_table(table.set_index("path"), "predictions/predictions.csv")
    log_metadata(metadata={"files": len(table), "files_failed": len(failed),
                           "per_emotion": {str(k): int(v) for k, v in counts["files"].items()}})
    if out_csv:
        Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out_csv, index=False)
        logger.info("predictions written to %s", out_csv)
    return table, HTMLString(report.render())
