"""Metrics of the seed (section 5 and 7): accuracy, loss, F1-macro, inference time,
accuracy per origin (Table 18), F1 and accuracy per class (Tables 19-20), confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss

from speech_emotion.corpora.common import EMOTIONS


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

    def metrics(self, prefix: str | None = None) -> dict[str, float]:
        """Flat metrics for MLflow, e.g. ``val_accuracy``, ``val_accuracy_crema``, ``val_f1_fear``;
        with a prefix (the model's name), ``cnn2d_lstm.val_accuracy``."""
        out = {
            f"{self.split}_accuracy": self.accuracy,
            f"{self.split}_loss": self.loss,
            f"{self.split}_f1_macro": self.f1_macro,
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
                "f1_macro": f1_score(labels[corpus == c], pred[corpus == c], labels=np.unique(labels[corpus == c]),
                                     average="macro", zero_division=0),
            }
            for c in sorted(set(corpus))
        ]
    ).set_index("corpus")

    cm = confusion_matrix(labels, pred, labels=classes)
    support = cm.sum(axis=1)
    f1_per_class = f1_score(labels, pred, labels=classes, average=None, zero_division=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, np.diag(cm) / support, np.nan)
    per_class = pd.DataFrame(
        {"support": support, "accuracy": recall, "f1": f1_per_class}, index=pd.Index(EMOTIONS, name="emotion")
    )
    present = np.unique(labels)
    return Evaluation(
        name=name,
        split=split,
        n=int(len(labels)),
        accuracy=float(accuracy_score(labels, pred)),
        loss=float(loss),
        f1_macro=float(f1_score(labels, pred, labels=present, average="macro", zero_division=0)),
        inference_time_s=inference_time_s,
        n_params=n_params,
        per_origin=per_origin,
        per_class=per_class,
        confusion=cm,
    )


@dataclass
class ConfusionMatrices:
    """Confusion counts [true, predicted] over ``EMOTIONS``, one per evaluated model and split,
    keyed ``"<model> on <split>"`` in evaluation order: a step's typed artifact (one image each)."""

    matrices: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, ev: Evaluation) -> None:
        self.matrices[f"{ev.name} on {ev.split}"] = np.asarray(ev.confusion)
