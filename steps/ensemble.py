"""Average voting and GA-weighted voting over the trained families (seed section 6.1)."""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from materializers import ConfusionMatricesMaterializer  # noqa: F401  (chosen by type for ConfusionMatrices outputs)
from speech_emotion import reports
from speech_emotion.config import EnsembleConfig
from speech_emotion.ensemble import (
    average_probabilities,
    cross_fitted_probabilities,
    fitness_figure,
    ga_search_weights,
    member_uar,
    stack_probabilities,
)
from speech_emotion.evaluation import ConfusionMatrices, evaluate_probabilities
from speech_emotion.features import FeatureSet
from steps import _tracking
from steps.evaluate import report_evaluation, split_note


def _member_seconds(member_metrics: list[pd.DataFrame], split: str) -> float:
    """Inference time of an ensemble: its members run one after the other."""
    total = 0.0
    for df in member_metrics:
        rows = df[df["split"] == split]
        total += float(rows["inference_time_s"].sum()) if len(rows) else 0.0
    return total


@step(experiment_tracker=True)
def ensemble_models(
    names: list[str],
    val_probabilities: list[np.ndarray],
    test_probabilities: list[np.ndarray],
    member_metrics: list[pd.DataFrame],
    val: FeatureSet,
    test: FeatureSet,
    config: EnsembleConfig,
    split_description: str = "",
) -> tuple[
    Annotated[pd.DataFrame, "ensemble_metrics"],
    Annotated[pd.DataFrame, "ga_weights"],
    Annotated[pd.DataFrame, "ga_history"],
    Annotated[HTMLString, "ensemble_report"],
    Annotated[ConfusionMatrices, "confusion_matrices"],
]:
    """Weights are searched on validation and reported on the held-out test split too: the
    seed reported its GA ensemble on the split it tuned the weights on, which flatters it."""
    if not (len(names) == len(val_probabilities) == len(test_probabilities)):
        raise ValueError(f"{len(names)} names for {len(val_probabilities)}/{len(test_probabilities)} probability sets")
    report = reports.HtmlReport("Ensembles")
    report.paragraph(split_note(split_description) + " GA weights are searched on the whole validation split and reported on "
                     "test. The GA ensemble's validation row is cross-fitted: each validation fold is scored "
                     "with weights searched on the other folds, so it is out-of-sample like the single models' "
                     "(the seed reported the in-sample figure, logged here as ga.fitness_val_f1).")
    rows, confusion = [], ConfusionMatrices()
    weights_table = pd.DataFrame({"model": names, "weight": np.full(len(names), np.nan)})
    history = pd.DataFrame(columns=["restart", "generation", "best", "mean"])

    def evaluate(name: str, weights, val_override: np.ndarray | None = None) -> None:
        for split, probs, features in (("val", val_probabilities, val), ("test", test_probabilities, test)):
            if len(features) == 0:
                continue
            start = time.perf_counter()
            p = average_probabilities(probs, weights)
            if split == "val" and val_override is not None:
                p = val_override
            seconds = _member_seconds(member_metrics, split) + time.perf_counter() - start
            ev = evaluate_probabilities(name, split, p, features.labels, features.corpus, inference_time_s=seconds)
            rows.append(ev.summary_row())
            report_evaluation(report, ev)
            confusion.add(ev)

    if config.average:
        evaluate("average_voting", None)
    if config.ga_enabled:
        result = ga_search_weights(val_probabilities, val.labels, config.ga)
        weights_table["weight"] = result.weights
        weights_table["val_uar"] = member_uar(stack_probabilities(val_probabilities), val.labels)
        weights_table["in_search"] = result.eligible
        history = result.history
        _tracking.log_params("ga", config.ga.model_dump())
        for restart, part in result.history.groupby("restart"):
            for _, row in part.iterrows():
                _tracking.log_metrics({f"ga.restart{restart}.best_f1": float(row["best"]),
                                       f"ga.restart{restart}.mean_f1": float(row["mean"])}, step=int(row["generation"]))
        _tracking.log_metrics({"ga.fitness_val_f1": result.fitness})
        _tracking.log_table(weights_table.set_index("model"), "ensemble/ga_weights.csv")
        fig = fitness_figure(result.history)
        report.heading("Genetic algorithm")
        report.table(weights_table.set_index("model"), "GA weights (seed Table 15)")
        if config.ga.min_uar_over_chance is not None:
            report.paragraph(f"Only members whose validation UAR beats chance (1 / the classes present) by more than "
                             f"{config.ga.min_uar_over_chance} join the search (in_search); the others keep weight 0.")
        _tracking.report_figure(report, fig, "GA fitness (validation F1-macro) per generation", "ensemble/ga_fitness.png")
        log_metadata(metadata={"ga_weights": dict(zip(names, map(float, result.weights))), "ga_val_f1": result.fitness})
        # its validation row is cross-fitted (weights from the other folds), so that it can be compared
        # with the single models' when the deployed model is chosen on validation
        crossfit = cross_fitted_probabilities(val_probabilities, val.labels, config.ga)
        evaluate("ga_ensemble", result.weights, val_override=crossfit)
    metrics = pd.DataFrame(rows)
    html = report.render()
    _tracking.log_text(html, "ensemble/report.html")
    return metrics, weights_table, history, HTMLString(html), confusion
