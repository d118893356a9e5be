"""Dataset analysis of the seed's section 2.3 (Table 1 and Figures 1-3) and its section 4: log-mel
spectrograms and chromagrams over time of two clips per class."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step
from zenml.types import HTMLString

from speech_emotion import reports
from speech_emotion.features import FeatureParams
from steps import _tracking


@step(experiment_tracker=True)
def analyse_dataset(
    utterances: pd.DataFrame,
    rejected: pd.DataFrame,
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    params: FeatureParams | None = None,
) -> tuple[Annotated[pd.DataFrame, "duration_table"], Annotated[HTMLString, "dataset_report"]]:
    splits = {"train": train, "val": val, "test": test}
    durations = reports.duration_table(splits)
    figures = {
        "class_distribution_train.png": reports.class_distribution_figure(train, "Class distribution (train)"),
        "class_distribution_per_corpus.png": reports.per_corpus_class_figure(utterances),
        "origin_distribution.png": reports.origin_distribution_figure(splits),
    }

    report = reports.HtmlReport("Dataset analysis")
    report.paragraph(
        f"{len(utterances)} utterances ingested, {len(rejected)} files rejected. "
        "Figures describe the data this run was given (the synthetic demo corpus "
        "unless real corpora were configured)."
    )
    report.table(durations, "Durations in seconds per split and origin (seed Table 1)")
    report.table(pd.crosstab(utterances["corpus"], utterances["emotion"], margins=True), "Utterances per origin and class")
    if len(rejected):
        report.table(pd.crosstab(rejected["corpus"], rejected["reason"], margins=True), "Rejected files per origin and reason")
    for name, fig in figures.items():
        _tracking.report_figure(report, fig, name.removesuffix(".png").replace("_", " "), f"dataset/{name}")
    _tracking.log_table(durations, "dataset/duration_table.csv")
    if params is not None and len(utterances):
        report_inputs(report, utterances, params)
    return durations, HTMLString(report.render())


def report_inputs(report: reports.HtmlReport, utterances: pd.DataFrame, params: FeatureParams) -> None:
    """The seed's section 4: log-mel and chromagram over time of two clips per class (computed here for
    these clips only; the pipeline keeps only the chroma's mean per clip)."""
    examples, logmel, chroma = reports.input_visualisations(utterances, params)
    report.heading("Inputs over time (seed section 4)")
    report.paragraph("Two clips of similar duration per class, from TESS where it has them (as in the seed), "
                     "else from the first corpus that does; the log-mel as the CNN2D inputs see it before "
                     "scaling (dB relative to the clip's maximum), the chromagram per frame.")
    shown = examples.drop(columns=["path"]).set_index("emotion")
    report.table(shown, "Clips plotted")
    _tracking.log_table(shown, "dataset/input_examples.csv")
    for fig, name, caption in ((logmel, "inputs_logmel.png", "log-mel spectrograms over time, two clips per class"),
                               (chroma, "inputs_chromagram.png", "chromagrams over time, two clips per class")):
        if fig is not None:
            _tracking.report_figure(report, fig, caption, f"dataset/{name}")
