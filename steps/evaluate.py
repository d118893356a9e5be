"""Evaluate a trained model on the validation and held-out test splits."""

from __future__ import annotations

import logging
from typing import Annotated

import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from speech_emotion import reports
from speech_emotion.evaluation import Evaluation, evaluate_probabilities
from speech_emotion.features import FeatureSet
from speech_emotion.models.trained import TrainedModel
from steps import _tracking

logger = logging.getLogger(__name__)


def evaluate_on(model: TrainedModel, features: FeatureSet, split: str) -> Evaluation:
    probs, seconds = model.timed_predict_proba(features)
    return evaluate_probabilities(
        model.family, split, probs, features.labels, features.corpus, inference_time_s=seconds, n_params=model.n_params
    )


def log_model_to_mlflow(model: TrainedModel) -> None:
    """The Keras model in MLflow's tensorflow flavour, so it can be served or registered from the UI."""
    if not _tracking.active():
        return
    import mlflow

    try:
        mlflow.tensorflow.log_model(
            model.model,
            name=model.family,
            pip_requirements=[*mlflow.tensorflow.get_default_pip_requirements(), f"keras=={_version('keras')}"],
        )
    except Exception as exc:  # the tracker must never lose the run over a model upload
        logger.warning("could not log %s to MLflow as a model (%s); logging the .keras file instead", model.family, exc)
        import os
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"{model.family}.keras")
            model.model.save(path)
            mlflow.log_artifact(path, "models")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


@step(experiment_tracker=True)
def evaluate_model(
    model: TrainedModel, val: FeatureSet, test: FeatureSet
) -> tuple[Annotated[pd.DataFrame, "metrics"], Annotated[HTMLString, "evaluation_report"]]:
    """Accuracy, loss, F1-macro, inference time, parameters; per origin and per class; confusion matrices."""
    report = reports.HtmlReport(f"Evaluation of {model.family}")
    report.paragraph(
        "Validation is the seed's stratified 20 % of the training data (used for early stopping); "
        "test is held out from everything. Figures come from the data this run was given."
    )
    rows = []
    for split, features in (("val", val), ("test", test)):
        if len(features) == 0:
            continue
        ev = evaluate_on(model, features, split)
        rows.append(ev.summary_row())
        _tracking.log_metrics(ev.metrics())
        log_metadata(metadata={f"{split}_{k}": v for k, v in ev.summary_row().items() if k not in ("model", "split")})
        report.heading(f"{split} split ({ev.n} utterances)")
        report.table(ev.per_origin, "Per origin (seed Table 18)")
        report.table(ev.per_class, "Per class (seed Tables 19-20)")
        fig = reports.confusion_matrix_figure(ev.confusion, f"{model.family} on {split}")
        report.image(reports.figure_png(fig, close=False), f"confusion matrix, {split}")
        _tracking.log_figure(fig, f"evaluation/{model.family}_{split}_confusion.png")
        _tracking.log_table(ev.per_origin, f"evaluation/{model.family}_{split}_per_origin.csv")
        _tracking.log_table(ev.per_class, f"evaluation/{model.family}_{split}_per_class.csv")
        logger.info("%s on %s: accuracy %.4f, F1-macro %.4f, loss %.4f", model.family, split, ev.accuracy, ev.f1_macro, ev.loss)

    metrics = pd.DataFrame(rows)
    report.heading("Summary")
    report.table(metrics.set_index(["model", "split"]) if len(metrics) else metrics, "Metrics (seed Table 4 columns)")
    if model.history:
        fig = reports.training_curves_figure(model.history, model.family)
        report.image(reports.figure_png(fig, close=False), "training curves")
        _tracking.log_figure(fig, f"evaluation/{model.family}_training_curves.png")
    _tracking.log_table(metrics, "evaluation/metrics.csv")
    html = report.render()
    _tracking.log_text(html, "evaluation/report.html")
    log_model_to_mlflow(model)
    return metrics, HTMLString(html)
