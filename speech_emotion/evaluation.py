"""Metrics of the seed (section 5 and 7): accuracy, loss, F1-macro, inference time,
accuracy per origin (Table 18), F1 and accuracy per class (Tables 19-20), confusion matrix,
and the expected calibration error of the probabilities (issue 11, not in the seed).

F1-macro is defined once, here (:func:`f1_macro_from_confusion`): the mean F1
over the classes that have true examples, as ``sklearn.metrics.f1_score(y,
pred, labels=np.unique(y), average="macro", zero_division=0)``. A class only
predicted (surprise on CREMA-D) counts as false positives, not as a class.
The evaluation tables, the GA's fitness (``ensemble``) and the tuning metric
(``models.hypermodels.SparseF1Macro``, in Keras ops) all use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss

from speech_emotion.calibration import expected_calibration_error
from speech_emotion.corpora.common import EMOTIONS


def f1_per_class_from_confusion(confusion: Any, xp: Any = np) -> Any:
    """Per-class F1 of confusion counts ``(..., C, C)`` [true, predicted]; 0 where a class is
    neither true nor predicted. ``xp`` is the array namespace: numpy, or ``keras.ops`` in a graph."""
    tp = xp.diagonal(confusion, axis1=-2, axis2=-1)
    denom = xp.sum(confusion, axis=-1) + xp.sum(confusion, axis=-2)  # 2 tp + fp + fn
    return xp.where(denom > 0, 2.0 * tp / xp.where(denom > 0, denom, 1.0), 0.0)


def f1_macro_from_confusion(confusion: Any, xp: Any = np) -> Any:
    """F1-macro of confusion counts ``(..., C, C)`` over the classes with true examples
    (0 when there is none); batched over leading axes. ``xp`` as in :func:`f1_per_class_from_confusion`."""
    f1 = f1_per_class_from_confusion(confusion, xp)
    present = xp.sum(confusion, axis=-1) > 0
    n_present = xp.sum(xp.where(present, 1.0, 0.0), axis=-1)
    return xp.sum(xp.where(present, f1, 0.0), axis=-1) / xp.maximum(n_present, 1.0)


def check_labels(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Integer class indices in ``[0, n_classes)`` as int64, or a ValueError saying what is wrong."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("labels must be integer class indices")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}); got range [{y.min()}, {y.max()}]")
    return y


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(EMOTIONS)) -> float:
    """F1-macro of predicted against true class indices (:func:`f1_macro_from_confusion`); NaN for empty labels."""
    y_true = check_labels(y_true, n_classes)
    y_pred = check_labels(y_pred, n_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    if y_true.size == 0:
        return float("nan")
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    return float(f1_macro_from_confusion(counts))


@dataclass
class Evaluation:
    name: str  # model or ensemble name
    split: str  # "val" | "test"
    n: int
    accuracy: float
    loss: float  # categorical cross-entropy of the probabilities; NaN when undefined
    f1_macro: float
    inference_time_s: float | None = None
    n_params: int | None = None
    per_origin: pd.DataFrame = field(default_factory=pd.DataFrame)  # corpus -> n, accuracy, f1_macro
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)  # emotion -> support, accuracy (recall), f1
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((len(EMOTIONS), len(EMOTIONS)), int))
    #: expected calibration error of the probabilities (:func:`speech_emotion.calibration.expected_calibration_error`)
    ece: float = float("nan")

    def metrics(self, prefix: str | None = None) -> dict[str, float]:
        """Flat metrics for MLflow, e.g. ``val_accuracy``, ``val_accuracy_crema``, ``val_f1_fear``;
        with a prefix (the model's name), ``cnn2d_lstm.val_accuracy``."""
        out = {
            f"{self.split}_accuracy": self.accuracy,
            f"{self.split}_loss": self.loss,
            f"{self.split}_f1_macro": self.f1_macro,
            f"{self.split}_ece": self.ece,
        }
        if self.inference_time_s is not None:
            out[f"{self.split}_inference_time_s"] = self.inference_time_s
        if self.n_params is not None:
            out["n_params"] = float(self.n_params)
        for corpus, row in self.per_origin.iterrows():
            out[f"{self.split}_accuracy_{corpus}"] = float(row["accuracy"])
        for emotion, row in self.per_class.iterrows():
            if row["support"] > 0:
                out[f"{self.split}_f1_{emotion}"] = float(row["f1"])
                out[f"{self.split}_accuracy_{emotion}"] = float(row["accuracy"])
        lead = f"{prefix}." if prefix else ""
        return {f"{lead}{k}": float(v) for k, v in out.items() if v is not None and np.isfinite(v)}

    def summary_row(self) -> dict:
        return {
            "model": self.name,
            "split": self.split,
            "n": self.n,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "f1_macro": self.f1_macro,
            "ece": self.ece,
            "inference_time_s": self.inference_time_s,
            "n_params": self.n_params,
        }


def evaluate_probabilities(
    name: str,
    split: str,
    probs: np.ndarray,
    labels: np.ndarray,
    corpus: np.ndarray,
    inference_time_s: float | None = None,
    n_params: int | None = None,
) -> Evaluation:
    """Evaluate class probabilities (N x 7) against integer labels."""
    labels = np.asarray(labels, dtype=int)
    corpus = np.asarray(corpus, dtype=str)
    classes = np.arange(len(EMOTIONS))
    if len(labels) == 0:
        return Evaluation(name, split, 0, float("nan"), float("nan"), float("nan"), inference_time_s, n_params)
    pred = probs.argmax(axis=1)
    clipped = np.clip(probs, 1e-7, 1.0)
    loss = log_loss(labels, clipped / clipped.sum(axis=1, keepdims=True), labels=classes)

    per_origin = pd.DataFrame(
        [
            {
                "corpus": c,
                "n": int((corpus == c).sum()),
                "accuracy": accuracy_score(labels[corpus == c], pred[corpus == c]),
                "f1_macro": f1_macro(labels[corpus == c], pred[corpus == c], len(EMOTIONS)),
            }
            for c in sorted(set(corpus))
        ]
    ).set_index("corpus")

    cm = confusion_matrix(labels, pred, labels=classes)
    support = cm.sum(axis=1)
    f1_per_class = f1_per_class_from_confusion(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, np.diag(cm) / support, np.nan)
    per_class = pd.DataFrame(
        {"support": support, "accuracy": recall, "f1": f1_per_class}, index=pd.Index(EMOTIONS, name="emotion")
    )
    return Evaluation(
        name=name,
        split=split,
        n=int(len(labels)),
        accuracy=float(accuracy_score(labels, pred)),
        loss=float(loss),
        f1_macro=float(f1_macro_from_confusion(cm)),
        inference_time_s=inference_time_s,
        n_params=n_params,
        per_origin=per_origin,
        per_class=per_class,
        confusion=cm,
        ece=expected_calibration_error(probs, labels),
    )


def compare_to_baseline(table: pd.DataFrame, baseline: str = "functionals_svm") -> pd.DataFrame:
    """The comparison table with the baseline's figures beside every model's, per split:
    ``baseline_accuracy``, ``baseline_f1_macro`` and ``f1_macro_vs_baseline`` (the model's F1-macro
    minus the baseline's). Unchanged when the baseline is not in the table."""
    rows = table[table["model"] == baseline].set_index("split")
    if rows.empty:
        return table
    out = table.copy()
    out["baseline_accuracy"] = out["split"].map(rows["accuracy"])
    out["baseline_f1_macro"] = out["split"].map(rows["f1_macro"])
    out["f1_macro_vs_baseline"] = out["f1_macro"] - out["baseline_f1_macro"]
    return out
@dataclass
class ConfusionMatrices:
    """Confusion counts [true, predicted] over ``EMOTIONS``, one per evaluated model and split,
    keyed ``"<model> on <split>"`` in evaluation order: a step's typed artifact (one image each)."""

    matrices: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, ev: Evaluation) -> None:
        self.matrices[f"{ev.name} on {ev.split}"] = np.asarray(ev.confusion)
