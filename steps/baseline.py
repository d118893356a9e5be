"""The classical baseline (functionals + SVM): functionals per split, the validation grid, training, evaluation."""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from materializers import ConfusionMatricesMaterializer  # noqa: F401  (chosen by type for ConfusionMatrices outputs)
from materializers.functionals_svm import FunctionalsSvmMaterializer
from speech_emotion import reports
from speech_emotion.evaluation import ConfusionMatrices
from speech_emotion.features import FeatureSet
from speech_emotion.models.functionals_svm import (
    FAMILY,
    FunctionalsExtractor,
    FunctionalsSvm,
    FunctionalsSvmHParams,
    train_functionals_svm,
)
from steps import _tracking
from steps.evaluate import evaluate_splits, split_note

logger = logging.getLogger(__name__)


@step
def extract_functionals(utterances: pd.DataFrame, kind: str, sample_rate: int = 16000,
                        workers: int = 1) -> Annotated[np.ndarray, "functionals"]:
    """openSMILE ComParE / eGeMAPS or librosa functionals of every utterance, in the table's order;
    openSMILE in ``workers`` processes side by side (the pipeline passes ``features.workers``)."""
    return FunctionalsExtractor(kind, sample_rate, workers).files(utterances["path"].tolist(), progress=True)


def _aligned(x: np.ndarray, features: FeatureSet, split: str) -> FeatureSet:
    """The rows of ``features`` that ``x`` describes: the clips themselves (the baseline's functionals
    are of the original audio; augmented copies train the networks only)."""
    features = features.originals()
    if len(x) != len(features):
        raise ValueError(f"{FAMILY}: {len(x)} functionals for {len(features)} {split} utterances")
    return features


@step(experiment_tracker=True)
def tune_functionals_svm(
    train_x: np.ndarray, train: FeatureSet, val_x: np.ndarray, val: FeatureSet,
    fixed_hparams: dict, grid: dict[str, list], seed: int = 0,
) -> tuple[Annotated[dict, "best_hparams"], Annotated[pd.DataFrame, "tuning_trials"]]:
    """The validation grid over C and gamma (Hyperband does not apply): the pair with the best F1-macro."""
    train = _aligned(train_x, train, "train")
    val = _aligned(val_x, val, "val")
    model = train_functionals_svm(train_x, train.labels, val_x, val.labels,
                                  FunctionalsSvmHParams.from_dict(fixed_hparams), grid=grid, seed=seed)
    trials = pd.DataFrame(model.history["grid"])
    _tracking.log_table(trials, f"tuning/{FAMILY}_trials.csv")
    _tracking.log_metrics({f"{FAMILY}.tuning_best_val_f1_macro": float(trials["val_f1_macro"].max())})
    log_metadata(metadata={"best_hparams": model.hparams, "n_trials": len(trials)})
    return model.hparams, trials


@step(experiment_tracker=True, output_materializers=FunctionalsSvmMaterializer)
def train_functionals_svm_model(
    train_x: np.ndarray, train: FeatureSet, hparams: dict, seed: int = 0
) -> Annotated[FunctionalsSvm, "functionals_svm_model"]:
    train = _aligned(train_x, train, "train")
    hp = FunctionalsSvmHParams.from_dict(hparams)
    _tracking.log_params(f"model.{FAMILY}", {"family": FAMILY, **hp.to_dict()})
    model = train_functionals_svm(train_x, train.labels, train_x[:0], train.labels[:0], hp, seed=seed)
    _tracking.log_metrics({f"{FAMILY}.n_params": float(model.n_params)})
    return model


@step(experiment_tracker=True)
def evaluate_functionals_svm(
    model: FunctionalsSvm, val_x: np.ndarray, test_x: np.ndarray, val: FeatureSet, test: FeatureSet,
    split_description: str = "",
) -> tuple[
    Annotated[pd.DataFrame, "metrics"],
    Annotated[np.ndarray, "val_probabilities"],
    Annotated[np.ndarray, "test_probabilities"],
    Annotated[HTMLString, "evaluation_report"],
    Annotated[ConfusionMatrices, "confusion_matrices"],
]:
    """The same figures as a network's evaluation, so the baseline sits in the comparison and the ensembles."""
    report = reports.HtmlReport(f"Evaluation of {model.name} (baseline: functionals + SVM)")
    report.paragraph(split_note(split_description))
    val = _aligned(val_x, val, "val")
    test = _aligned(test_x, test, "test")
    rows, probs, confusion = evaluate_splits(report, model, [("val", val, val_x), ("test", test, test_x)])
    metrics = pd.DataFrame(rows)
    html = report.render()
    _tracking.log_text(html, f"evaluation/{model.name}/report.html")
    return metrics, probs["val"], probs["test"], HTMLString(html), confusion
