"""Cross-validated evaluation protocols: speaker k-fold, leave one speaker out, leave one corpus out.

A protocol run answers "how well does this work on speakers (or a corpus) it never heard?":

- :func:`make_folds` cuts the utterance table into test folds (``speaker_kfold``: K folds
  over speaker groups, stratified by class as far as possible, with sklearn's
  ``StratifiedGroupKFold``, or the speakers listed per fold; ``loso``: one fold per
  speaker; ``loco``: one fold per corpus). Each fold's validation comes from its training
  speakers, grouped by speaker (``split.val_fraction``), and every fold passes the leakage
  checks of :func:`speech_emotion.splits.check_leakage` with all three parts kept free of
  shared speakers and shared audio.
- :func:`folds_table` / :func:`fold_paths` store the folds as one table (``fold, held_out,
  part, path``) so that features extracted once for every utterance are cut per fold.
- :func:`pooled_table` scores the test predictions of all folds together, per model:
  accuracy, F1-macro (:func:`speech_emotion.evaluation.f1_macro_from_confusion`) and UAR
  (unweighted average recall: the mean recall over the classes with examples), with
  percentile bootstrap 95 % intervals over utterances (the same resamples for every model).
- :func:`fold_table`, :func:`gender_table`, :func:`cross_corpus_table` and
  :func:`absent_classes_table` give the per-fold figures, accuracy per known gender, the
  leave-one-corpus-out matrix and the classes a test fold or corpus has no example of
  (reported, never averaged in: per-fold F1 and UAR are over the classes present).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from speech_emotion.config import EvaluationConfig, SplitConfig
from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.evaluation import f1_macro_from_confusion
from speech_emotion.splits import SPLITS, canonical_order, check_leakage, split_by_speaker

logger = logging.getLogger(__name__)

N_CLASSES = len(EMOTIONS)
METRICS = ("accuracy", "f1_macro", "uar")
PROTOCOL_TEXT = {
    "holdout": "a single held-out split",
    "speaker_kfold": "speaker-independent k-fold cross-validation (folds over speaker groups)",
    "loso": "leave one speaker out",
    "loco": "leave one corpus out",
}


@dataclass
class Fold:
    """One test fold: what it holds out, and its train / val / test utterance tables."""

    index: int  # 1-based
    held_out: str  # "ravdess_03", "tess", "crema_1001 crema_1002 ..."
    parts: dict[str, pd.DataFrame]


def describe(evaluation: EvaluationConfig, split: SplitConfig) -> str:
    """One sentence saying which protocol (or holdout split) produced a run's figures."""
    if evaluation.protocol == "holdout":
        strategy = {
            "stratified": "stratified by class and origin (speakers and sentences are shared between the splits, "
                          "so figures are optimistic)",
            "speaker": "by speaker (no speaker in two splits)",
            "corpus": f"leaving corpus {split.test_corpus!r} out for test (never seen in training)",
        }[split.strategy]
        test = (f"the held-out corpus {split.test_corpus!r}" if split.strategy == "corpus"
                else f"{split.test_fraction:.0%} of the data" if split.test_fraction > 0 else "none")
        return (f"Protocol: holdout, split.strategy {split.strategy}: split {strategy}; test: {test}, held out from "
                f"everything; validation: {split.val_fraction:.0%} of the rest (early stopping, tuning and ensemble "
                "weights look at it).")
    folds = (f"{len(evaluation.speaker_folds)} listed speaker folds" if evaluation.speaker_folds
             else f"{evaluation.folds} folds" if evaluation.protocol == "speaker_kfold" else "one fold each")
    return (f"Protocol: {evaluation.protocol}, {PROTOCOL_TEXT[evaluation.protocol]} ({folds}); every utterance is "
            f"tested once, by models that never saw its speaker; each fold's validation is "
            f"{split.val_fraction:.0%} of its training speakers (early stopping, tuning and ensemble weights look "
            "at it); figures are pooled over the test folds.")


def _validation(rest: pd.DataFrame, split: SplitConfig, where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if rest["speaker"].nunique() < 2:
        raise ValueError(f"{where}: its training part holds {rest['speaker'].nunique()} speaker(s) "
                         f"({len(rest)} utterances); validation by speaker needs at least 2")
    return split_by_speaker(rest, split.val_fraction, split.seed + 1, "val")


def _test_groups(df: pd.DataFrame, evaluation: EvaluationConfig, seed: int) -> list[tuple[str, np.ndarray]]:
    """(what is held out, boolean mask of the test utterances) per fold."""
    speakers = df["speaker"].to_numpy()
    if evaluation.protocol == "loco":
        corpora = sorted(df["corpus"].unique())
        if len(corpora) < 2:
            raise ValueError(f"evaluation.protocol loco needs utterances of at least 2 corpora; only {corpora} were "
                             "ingested")
        return [(c, (df["corpus"] == c).to_numpy()) for c in corpora]
    if evaluation.protocol == "loso":
        ids = sorted(df["speaker"].unique())
        if len(ids) < 3:
            raise ValueError(f"evaluation.protocol loso needs at least 3 speakers (one to test, two to train and "
                             f"validate on); {len(ids)} were ingested: {ids}")
        return [(s, speakers == s) for s in ids]
    if evaluation.speaker_folds:
        known = set(speakers)
        listed = [s for fold in evaluation.speaker_folds for s in fold]
        if unknown := sorted(set(listed) - known):
            raise ValueError(f"evaluation.speaker_folds: speaker(s) {unknown} have no ingested utterance; speakers are "
                             f"prefixed with their corpus, e.g. {sorted(known)[:3]}")
        if unlisted := sorted(known - set(listed)):
            logger.warning("evaluation.speaker_folds: %d speaker(s) in no fold are only ever trained on: %s",
                           len(unlisted), unlisted)
        return [(" ".join(fold), np.isin(speakers, fold)) for fold in evaluation.speaker_folds]
    n_speakers = df["speaker"].nunique()
    if n_speakers < evaluation.folds:
        raise ValueError(f"evaluation.folds is {evaluation.folds} but only {n_speakers} speakers were ingested: "
                         "a fold needs at least one speaker; lower evaluation.folds or use protocol loso")
    cv = StratifiedGroupKFold(n_splits=evaluation.folds, shuffle=True, random_state=seed)
    out = []
    for _, test_idx in cv.split(df, df["emotion"], groups=speakers):
        mask = np.zeros(len(df), bool)
        mask[test_idx] = True
        out.append((" ".join(sorted(set(speakers[test_idx]))), mask))
    return out


def make_folds(utterances: pd.DataFrame, evaluation: EvaluationConfig, split: SplitConfig) -> list[Fold]:
    """The protocol's folds, each with its train / val / test tables, leakage-checked."""
    if not evaluation.cross_validated:
        raise ValueError("make_folds: evaluation.protocol holdout has no folds (split.strategy makes its split)")
    if utterances.empty:
        raise ValueError("cannot make folds of an empty utterance table: no file was ingested")
    df = canonical_order(utterances)
    folds = []
    for i, (held_out, is_test) in enumerate(_test_groups(df, evaluation, split.seed), start=1):
        where = f"evaluation.protocol {evaluation.protocol}, fold {i} (test: {held_out})"
        test, rest = df[is_test], df[~is_test]
        if rest.empty:
            raise ValueError(f"{where}: holds out every utterance; nothing is left to train on")
        train, val = _validation(rest, split, where)
        parts = {name: part.sort_values("path").reset_index(drop=True)
                 for name, part in zip(SPLITS, (train, val, test))}
        check_leakage(parts, [("train", "val"), ("train", "test"), ("val", "test")], where=where)
        folds.append(Fold(i, held_out, parts))
    tested = pd.concat([f.parts["test"]["path"] for f in folds])
    if tested.duplicated().any():  # folds are a partition of the tested utterances
        raise ValueError(f"evaluation.protocol {evaluation.protocol}: utterances tested in two folds: "
                         f"{sorted(tested[tested.duplicated()])[:5]}")
    logger.info("%s: %d folds, test sizes %s", evaluation.protocol, len(folds), [len(f.parts["test"]) for f in folds])
    return folds


def folds_table(folds: list[Fold]) -> pd.DataFrame:
    """One row per utterance and fold it takes part in: ``fold, held_out, part, path``."""
    rows = [pd.DataFrame({"fold": f.index, "held_out": f.held_out, "part": part, "path": table["path"].to_numpy()})
            for f in folds for part, table in f.parts.items()]
    return pd.concat(rows, ignore_index=True)


def fold_paths(table: pd.DataFrame, fold: int, part: str) -> np.ndarray:
    """The paths of one fold's part, in the table's order."""
    if fold not in set(table["fold"]):
        raise ValueError(f"no fold {fold}; the folds are {sorted(set(table['fold']))}")
    return table.loc[(table["fold"] == fold) & (table["part"] == part), "path"].to_numpy()


def positions(ids: np.ndarray, wanted: np.ndarray, what: str = "features") -> np.ndarray:
    """Row positions of ``wanted`` ids among ``ids`` (every one must be there)."""
    index = pd.Index(np.asarray(ids).astype(str))
    pos = index.get_indexer(np.asarray(wanted).astype(str))
    if (pos < 0).any():
        missing = np.asarray(wanted)[pos < 0]
        raise ValueError(f"{len(missing)} utterance(s) of the fold have no {what}: {list(missing[:5])}")
    return pos


# --------------------------------------------------------------------------- scores


def confusions(y: np.ndarray, pred: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """Confusion counts [true, predicted]; with ``index`` (B, n) one matrix per row of resampled positions."""
    codes = np.asarray(y, np.int64) * N_CLASSES + np.asarray(pred, np.int64)
    if index is None:
        return np.bincount(codes, minlength=N_CLASSES ** 2).reshape(N_CLASSES, N_CLASSES)
    b = index.shape[0]
    flat = (np.arange(b)[:, None] * N_CLASSES ** 2 + codes[index]).ravel()
    return np.bincount(flat, minlength=b * N_CLASSES ** 2).reshape(b, N_CLASSES, N_CLASSES)


def scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, F1-macro and UAR of confusion counts ``(..., C, C)``; F1 and UAR over the classes
    with true examples (NaN when there is no example at all)."""
    confusion = np.asarray(confusion, float)
    total = confusion.sum(axis=(-2, -1))
    support = confusion.sum(axis=-1)
    present = support > 0
    recall = np.diagonal(confusion, axis1=-2, axis2=-1) / np.where(present, support, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.trace(confusion, axis1=-2, axis2=-1) / total
        uar = np.where(present, recall, 0.0).sum(axis=-1) / present.sum(axis=-1)
    f1 = np.where(total > 0, f1_macro_from_confusion(confusion), np.nan)
    return {"accuracy": accuracy, "f1_macro": f1, "uar": uar}


def _absent(labels: np.ndarray) -> str:
    present = set(np.asarray(labels, int).tolist())
    return ";".join(e for i, e in enumerate(EMOTIONS) if i not in present)


def _score_row(part: pd.DataFrame) -> dict:
    s = scores(confusions(part["label"], part["pred"]))
    return {"n": len(part), **{m: float(s[m]) for m in METRICS}}


def pooled_table(predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per model, over the test predictions of all folds: ``model, accuracy, f1_macro, uar, n`` then
    ``<metric>_ci_low`` / ``<metric>_ci_high`` (percentile bootstrap over utterances, ``n_boot``
    resamples, NaN when ``n_boot`` is 0). Every model is resampled with the same positions of its
    (fold, path)-sorted predictions, so the intervals of models tested on the same utterances are paired."""
    rows = []
    for model, part in predictions.groupby("model", sort=False):
        part = part.sort_values(["fold", "path"])
        y, pred = part["label"].to_numpy(), part["pred"].to_numpy()
        row = {"model": model, **{m: float(v) for m, v in scores(confusions(y, pred)).items()}, "n": len(part)}
        if n_boot > 0 and len(part):
            index = np.random.default_rng(seed).integers(0, len(part), size=(n_boot, len(part)))
            boot = scores(confusions(y, pred, index))
            for m in METRICS:
                low, high = np.nanpercentile(boot[m], [100 * (1 - level) / 2, 100 * (1 + level) / 2])
                row[f"{m}_ci_low"], row[f"{m}_ci_high"] = float(low), float(high)
        else:
            row.update({f"{m}_ci_{end}": float("nan") for m in METRICS for end in ("low", "high")})
        rows.append(row)
    columns = ["model", *METRICS, "n", *[f"{m}_ci_{end}" for m in METRICS for end in ("low", "high")]]
    return pd.DataFrame(rows, columns=columns)


def fold_table(predictions: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """Per fold and model: ``protocol, fold, held_out, model, n, accuracy, f1_macro, uar,
    absent_classes`` (the classes without a test example in the fold, ';'-separated; F1 and UAR
    are over the others)."""
    rows = []
    for (fold, held_out, model), part in predictions.groupby(["fold", "held_out", "model"], sort=False):
        rows.append({"protocol": protocol, "fold": int(fold), "held_out": held_out, "model": model,
                     **_score_row(part), "absent_classes": _absent(part["label"])})
    return pd.DataFrame(rows).sort_values(["fold", "model"], kind="stable").reset_index(drop=True)


def gender_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per model and known gender (``unknown`` left out): ``model, gender, n, accuracy, f1_macro, uar``."""
    known = predictions[predictions["gender"].isin(["female", "male"])]
    rows = [{"model": model, "gender": gender, **_score_row(part)}
            for (model, gender), part in known.groupby(["model", "gender"], sort=False)]
    return pd.DataFrame(rows, columns=["model", "gender", "n", *METRICS])


CROSS_CORPUS_COLUMNS = ["tested_on", "trained_on", "model", "n", *METRICS, "absent_classes"]


def cross_corpus_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """Leave one corpus out: per held-out corpus and model, trained on the others and tested on it."""
    corpora = sorted(predictions["corpus"].unique())
    rows = []
    for (corpus, model), part in predictions.groupby(["held_out", "model"], sort=False):
        rows.append({"tested_on": corpus, "trained_on": " ".join(c for c in corpora if c != corpus), "model": model,
                     **_score_row(part), "absent_classes": _absent(part["label"])})
    table = pd.DataFrame(rows, columns=CROSS_CORPUS_COLUMNS)
    return table.sort_values(["tested_on", "model"], kind="stable").reset_index(drop=True)


def absent_classes_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per test fold, the classes with no test example (``absent``) and how often a model still
    predicted them (``predicted``: those predictions are all errors). One row per fold and absent class."""
    rows = []
    for (fold, held_out), part in predictions.groupby(["fold", "held_out"], sort=False):
        present = set(part["label"].astype(int))
        for i, emotion in enumerate(EMOTIONS):
            if i in present:
                continue
            predicted = part[part["pred"] == i].groupby("model").size()
            rows.append({"fold": int(fold), "held_out": held_out, "absent": emotion,
                         "predicted": "; ".join(f"{m} {n}" for m, n in predicted.items()) or "never"})
    return pd.DataFrame(rows, columns=["fold", "held_out", "absent", "predicted"])


def fold_predictions(fold: int, held_out: str, ids: np.ndarray, labels: np.ndarray,
                     probabilities: dict[str, np.ndarray]) -> pd.DataFrame:
    """A fold's test predictions in long form: ``fold, held_out, model, path, label, pred, p_<emotion>``."""
    frames = []
    for model, probs in probabilities.items():
        probs = np.asarray(probs, float)
        if probs.shape != (len(ids), N_CLASSES):
            raise ValueError(f"fold {fold}: {model} gave probabilities of shape {probs.shape} for {len(ids)} test "
                             "utterances")
        frames.append(pd.DataFrame({"fold": fold, "held_out": held_out, "model": model, "path": np.asarray(ids, str),
                                    "label": np.asarray(labels, int), "pred": probs.argmax(axis=1),
                                    **{f"p_{e}": probs[:, i] for i, e in enumerate(EMOTIONS)}}))
    return pd.concat(frames, ignore_index=True)


def attach_utterances(predictions: pd.DataFrame, utterances: pd.DataFrame) -> pd.DataFrame:
    """Speaker, gender and corpus of every prediction (by path)."""
    info = utterances.set_index("path")[["corpus", "speaker", "gender"]]
    missing = ~predictions["path"].isin(info.index)
    if missing.any():
        raise ValueError(f"{int(missing.sum())} prediction(s) for utterances not in the table: "
                         f"{sorted(predictions.loc[missing, 'path'].unique())[:5]}")
    return predictions.join(info, on="path")
