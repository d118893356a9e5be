"""Evaluate a trained model on the validation and held-out test splits."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import numpy as np
import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from materializers import ConfusionMatricesMaterializer  # noqa: F401  (chosen by type for ConfusionMatrices outputs)
from speech_emotion import reports
from speech_emotion.calibration import apply_temperature, expected_calibration_error, reliability_figure
from speech_emotion.evaluation import ConfusionMatrices, Evaluation, evaluate_probabilities
from speech_emotion.features import FeatureSet
from speech_emotion.models.trained import TrainedModel
from steps import _tracking

logger = logging.getLogger(__name__)

#: what every evaluation report says about its data; the pipeline passes the run's own split or
#: protocol (:func:`speech_emotion.protocols.describe`) as ``split_note``
DATA_NOTE = ("Figures come from the data this run was given: the synthetic demo corpus unless real corpora "
             "were configured.")
SPLIT_NOTE = ("Validation is part of the training data (early stopping and tuning look at it); test is held out "
              "from everything. " + DATA_NOTE)


def split_note(description: str) -> str:
    """A report's note on its data: the split or protocol that produced it, then where the data comes from."""
    return f"{description} {DATA_NOTE}" if description else SPLIT_NOTE


def log_model_to_mlflow(model: TrainedModel) -> None:
    """The Keras model in MLflow's tensorflow flavour, so it can be served or registered from the UI."""
    if not _tracking.active():
        return
    import mlflow

    try:
        mlflow.tensorflow.log_model(
            model.model,
            name=model.name,
            pip_requirements=[*mlflow.tensorflow.get_default_pip_requirements(), f"keras=={_version('keras')}"],
        )
    except Exception as exc:  # the tracker must never lose the run over a model upload
        logger.warning("could not log %s to MLflow as a model (%s); logging the .keras file instead", model.name, exc)
        import os
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"{model.name}.keras")
            model.model.save(path)
            mlflow.log_artifact(path, "models")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def report_evaluation(report: reports.HtmlReport, ev: Evaluation, uncalibrated: np.ndarray | None = None,
                      labels: np.ndarray | None = None, temperature: float = 1.0) -> None:
    """Tables and confusion matrix of one evaluation, into the HTML report and MLflow; with the
    ``uncalibrated`` probabilities of a temperature-scaled model (and the ``labels``), its
    reliability diagram before and after calibration too."""
    report.heading(f"{ev.name} on {ev.split} ({ev.n} utterances)")
    report_calibration(report, ev, uncalibrated, labels, temperature)
    report.table(ev.per_origin, "Per origin (seed Table 18)")
    report.table(ev.per_class, "Per class (seed Tables 19-20)")
    fig = reports.confusion_matrix_figure(ev.confusion, f"{ev.name} on {ev.split}")
    _tracking.report_figure(report, fig, f"confusion matrix, {ev.name}, {ev.split}",
                            f"evaluation/{ev.name}/{ev.split}_confusion.png")
    _tracking.log_table(ev.per_origin, f"evaluation/{ev.name}/{ev.split}_per_origin.csv")
    _tracking.log_table(ev.per_class, f"evaluation/{ev.name}/{ev.split}_per_class.csv")
    _tracking.log_metrics(ev.metrics(prefix=ev.name))
    logger.info("%s on %s: accuracy %.4f, F1-macro %.4f, loss %.4f", ev.name, ev.split, ev.accuracy, ev.f1_macro, ev.loss)


def report_calibration(report: reports.HtmlReport, ev: Evaluation, uncalibrated: np.ndarray | None,
                       labels: np.ndarray | None, temperature: float) -> None:
    """The evaluation's ECE; for a temperature-scaled model, the ECE of its network's own softmax
    beside it and the reliability diagram of both."""
    if uncalibrated is None or labels is None or temperature == 1.0:
        report.paragraph(f"Expected calibration error (ECE, 15 confidence bins): {ev.ece:.4f}.")
        return
    before = expected_calibration_error(uncalibrated, labels)
    report.paragraph(f"Expected calibration error (ECE, 15 confidence bins): {ev.ece:.4f} with the temperature "
                     f"T = {temperature:.3f} fitted on validation, {before:.4f} without it. Calibration does not "
                     "change the predicted classes.")
    fig = reliability_figure(uncalibrated, apply_temperature(uncalibrated, temperature), labels,
                             f"{ev.name} on {ev.split}, T = {temperature:.3f}")
    _tracking.report_figure(report, fig, f"reliability diagram, {ev.name}, {ev.split}, before and after calibration",
                            f"evaluation/{ev.name}/{ev.split}_reliability.png")
    _tracking.log_metrics({f"{ev.name}.{ev.split}_ece_uncalibrated": before})


def evaluate_splits(report: reports.HtmlReport, model: Any, splits: list[tuple[str, FeatureSet, Any]]):
    """Each ``(split, features, inputs)``: ``model.timed_predict_proba(inputs)`` evaluated against the
    features' labels and origins, into the report, MLflow and the step's metadata. Returns the summary
    rows, the probabilities per split (those of an empty split too, for the ensembles) and the
    confusion matrices."""
    rows, probs, confusion = [], {}, ConfusionMatrices()
    for split, features, inputs in splits:
        p, seconds = model.timed_predict_proba(inputs)
        probs[split] = p
        if len(features) == 0:
            continue
        ev = evaluate_probabilities(model.name, split, p, features.labels, features.corpus,
                                    inference_time_s=seconds, n_params=model.n_params)
        rows.append(ev.summary_row())
        temperature = float(getattr(model, "temperature", 1.0))
        # the network's own softmax, predicted again rather than undone from the calibrated output
        raw = model.predict_proba(inputs, calibrated=False) if temperature != 1.0 else None
        report_evaluation(report, ev, raw, features.labels, temperature)
        confusion.add(ev)
        log_metadata(metadata={f"{split}_{k}": v for k, v in ev.summary_row().items() if k not in ("model", "split")})
    return rows, probs, confusion


@step(experiment_tracker=True)
def evaluate_model(
    model: TrainedModel, val: FeatureSet, test: FeatureSet, split_description: str = ""
) -> tuple[
    Annotated[pd.DataFrame, "metrics"],
    Annotated[np.ndarray, "val_probabilities"],
    Annotated[np.ndarray, "test_probabilities"],
    Annotated[HTMLString, "evaluation_report"],
    Annotated[ConfusionMatrices, "confusion_matrices"],
]:
    """Accuracy, loss, F1-macro, inference time, parameters; per origin and per class; confusion
    matrices (in the report, and as their own artifact: counts plus one image each). The
    probabilities feed the ensembles. ``split_description`` says which split or protocol made the data."""
    report = reports.HtmlReport(f"Evaluation of {model.name}")
    report.paragraph(split_note(split_description))
    rows, probs, confusion = evaluate_splits(report, model, [("val", val, val), ("test", test, test)])

    metrics = pd.DataFrame(rows)
    report.heading("Summary")
    report.table(metrics.set_index(["model", "split"]) if len(metrics) else metrics, "Metrics (seed Table 4 columns)")
    if model.history:
        fig = reports.training_curves_figure(model.history, model.name)
        _tracking.report_figure(report, fig, "training curves", f"evaluation/{model.name}/training_curves.png")
    html = report.render()
    _tracking.log_text(html, f"evaluation/{model.name}/report.html")
    log_model_to_mlflow(model)
    return metrics, probs["val"], probs["test"], HTMLString(html), confusion
