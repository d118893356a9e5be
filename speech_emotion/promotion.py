"""The promotion gate: does a new predictor replace the one in production?

Both predictors are scored on the same clips (the new run's held-out test
split). The new one is promoted when there is no production predictor, or
when its F1-macro is at least production's minus ``margin``. Predictors with
different label sets are not comparable: the gate says so and does not promote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.evaluation import evaluate_probabilities
from speech_emotion.predictor import Predictor

__all__ = ["PromotionDecision", "decide", "probabilities_on", "score_on"]


def probabilities_on(predictor: Predictor, test) -> np.ndarray:
    """(N, 7) probabilities of ``predictor`` on an unscaled test FeatureSet, columns in ``EMOTIONS`` order.

    Features are reused when the predictor was trained with the same feature
    parameters (and needs no functionals of the audio); otherwise it labels the
    clips' audio itself.
    """
    same = predictor.feature_params.model_dump() == {k: test.params.get(k) for k in predictor.feature_params.model_dump()}
    if same and not predictor.needs_audio:
        probs = predictor.predict_features(test)
    else:
        # 256 files a pass: each pass starts openSMILE's process (a baseline member) and runs every
        # network once, so a test split of a few hundred clips goes through in one or two passes
        table = predictor.predict_paths(list(map(str, test.utterance_ids)), batch_files=256)
        if table["error"].notna().any():
            bad = table[table["error"].notna()]
            raise ValueError(f"{len(bad)} test clips could not be scored, e.g. {bad.iloc[0]['path']}: {bad.iloc[0]['error']}")
        probs = table[list(predictor.classes)].to_numpy(dtype=np.float32)
    if set(predictor.classes) != set(EMOTIONS):
        raise ValueError(f"{predictor.name} predicts {predictor.classes}, not the label set {EMOTIONS}")
    return probs[:, [predictor.classes.index(e) for e in EMOTIONS]]  # columns in the labels' order


def score_on(predictor: Predictor, test, probabilities: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy and F1-macro of ``predictor`` on an unscaled test FeatureSet (labels index EMOTIONS).

    ``probabilities``: :func:`probabilities_on` of this predictor and ``test``, when the caller has
    them already (registration computes them for the model card); otherwise they are computed."""
    if len(test) == 0:
        raise ValueError("the test split is empty: nothing to score the predictors on")
    if probabilities is None or len(probabilities) != len(test):
        probabilities = probabilities_on(predictor, test)
    ev = evaluate_probabilities(predictor.name, "test", probabilities, test.labels, test.corpus)
    return {"accuracy": ev.accuracy, "f1_macro": ev.f1_macro, "n": float(ev.n)}


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    new_f1_macro: float | None = None
    new_accuracy: float | None = None
    production_f1_macro: float | None = None
    production_accuracy: float | None = None
    production_version: str | None = None
    margin: float = 0.0

    def metadata(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def decide(
    new: Predictor,
    test,
    production: Predictor | None,
    margin: float = 0.0,
    production_version: str | None = None,
    new_probabilities: np.ndarray | None = None,
) -> PromotionDecision:
    """Score both predictors on ``test`` and decide (``new_probabilities``: the new one's, if known)."""
    if tuple(new.classes) != EMOTIONS:
        return PromotionDecision(False, f"the new predictor's classes {new.classes} are not the label set {EMOTIONS}",
                                 margin=margin)
    if len(test) == 0:
        if production is None:
            return PromotionDecision(True, "no production version yet (this run has no test split to score on)",
                                     margin=margin)
        return PromotionDecision(False, "this run has no test split (split.test_fraction is 0): the gate cannot "
                                 "compare it with production", margin=margin, production_version=production_version)
    scores = score_on(new, test, new_probabilities)
    common = dict(new_f1_macro=scores["f1_macro"], new_accuracy=scores["accuracy"], margin=margin,
                  production_version=production_version)
    if production is None:
        return PromotionDecision(True, "no production version yet", **common)
    if set(production.classes) != set(new.classes):
        return PromotionDecision(
            False, f"label sets differ: production {sorted(production.classes)}, new {sorted(new.classes)}; "
            "the two cannot be compared, so nothing is promoted", **common)
    prod = score_on(production, test)
    common.update(production_f1_macro=prod["f1_macro"], production_accuracy=prod["accuracy"])
    if scores["f1_macro"] >= prod["f1_macro"] - margin:
        return PromotionDecision(
            True, f"test F1-macro {scores['f1_macro']:.4f} >= production's {prod['f1_macro']:.4f} - margin {margin:g}",
            **common)
    return PromotionDecision(
        False, f"test F1-macro {scores['f1_macro']:.4f} < production's {prod['f1_macro']:.4f} - margin {margin:g}",
        **common)
