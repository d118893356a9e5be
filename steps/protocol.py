"""Cross-validated protocols: the folds, each fold's slice of the features extracted once, its test
predictions, and the pooled report (``protocol/pooled.csv``, ``protocol/folds.csv`` in MLflow)."""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
import pandas as pd
from zenml import get_step_context, log_metadata, step
from zenml.types import HTMLString

from materializers import FeatureSetMaterializer
from materializers.feature_set import output_folder
from speech_emotion import protocols, reports
from speech_emotion.config import EvaluationConfig, SplitConfig
from speech_emotion.ensemble import average_probabilities
from speech_emotion.features import FeatureSet
from speech_emotion.splits import SPLITS
from steps import _tracking

logger = logging.getLogger(__name__)


def _metadata(values: dict) -> None:
    """The step run's metadata (a no-op when the step's function is called directly, as in unit tests)."""
    try:
        get_step_context()
    except RuntimeError:
        return
    log_metadata(metadata=values)


@step(experiment_tracker=True)
def make_protocol_folds(
    utterances: pd.DataFrame, evaluation: EvaluationConfig, split: SplitConfig
) -> Annotated[pd.DataFrame, "protocol_folds_table"]:
    """The protocol's test folds and each fold's validation from its training speakers, leakage-checked:
    one row per utterance and fold (``fold, held_out, part, path``)."""
    folds = protocols.make_folds(utterances, evaluation, split)
    table = protocols.folds_table(folds)
    _tracking.set_tags({"protocol": evaluation.protocol})
    _tracking.log_params("evaluation", evaluation.model_dump(exclude={"speaker_folds"}))
    _tracking.log_params("split", split.model_dump(include={"val_fraction", "seed"}))
    _tracking.log_metrics({"protocol.n_folds": float(len(folds))})
    counts = table.groupby(["fold", "part"]).size().unstack("part").reindex(columns=list(SPLITS))
    counts.insert(0, "held_out", [f.held_out for f in folds])
    _tracking.log_table(counts, "protocol/fold_sizes.csv")
    _metadata({"protocol": evaluation.protocol, "n_folds": len(folds)})
    return table


# a dict in declared order: given one class for all outputs, ZenML lists them in a per-process set
# order, and that order enters the cache key (an unchanged re-run would miss the cache)
@step(output_materializers={name: FeatureSetMaterializer for name in ("train_raw", "val_raw", "test_raw")})
def fold_features(
    features: FeatureSet, folds: pd.DataFrame, fold: int
) -> tuple[
    Annotated[FeatureSet, "train_raw"],
    Annotated[FeatureSet, "val_raw"],
    Annotated[FeatureSet, "test_raw"],
]:
    """One fold's train / val / test rows of the features extracted once for every utterance."""
    parts = [features.subset(protocols.positions(features.utterance_ids, protocols.fold_paths(folds, fold, part)),
                             folder=output_folder(f"{part}_raw"))
             for part in SPLITS]
    return parts[0], parts[1], parts[2]


@step
def fold_functionals(
    functionals: np.ndarray, utterances: pd.DataFrame, folds: pd.DataFrame, fold: int
) -> tuple[
    Annotated[np.ndarray, "train_functionals"],
    Annotated[np.ndarray, "val_functionals"],
    Annotated[np.ndarray, "test_functionals"],
]:
    """One fold's rows of the baseline's functionals (extracted once, in the utterance table's order)."""
    ids = utterances["path"].to_numpy()
    parts = [functionals[protocols.positions(ids, protocols.fold_paths(folds, fold, part), "functionals")]
             for part in SPLITS]
    return parts[0], parts[1], parts[2]


@step
def collect_fold_predictions(
    test: FeatureSet,
    probabilities: list[np.ndarray],
    names: list[str],
    folds: pd.DataFrame,
    fold: int,
    members: list[str],
    average_voting: bool = False,
    ga_weights: pd.DataFrame | None = None,
) -> Annotated[pd.DataFrame, "fold_predictions"]:
    """The fold's test predictions of every model (``names``, in the order of ``probabilities``) and of
    the voting ensembles over ``members`` (average; GA with the fold's weights, searched on its validation)."""
    if len(names) != len(probabilities):
        raise ValueError(f"{len(names)} names for {len(probabilities)} probability sets")
    probs = dict(zip(names, probabilities))
    member_probs = [probs[m] for m in members]
    if average_voting and len(members) >= 2:
        probs["average_voting"] = average_probabilities(member_probs)
    if ga_weights is not None and len(members) >= 2 and ga_weights["weight"].notna().all():
        if list(ga_weights["model"]) != list(members):
            raise ValueError(f"GA weights for {list(ga_weights['model'])}, members {members}")
        probs["ga_ensemble"] = average_probabilities(member_probs, ga_weights["weight"].to_numpy())
    held_out = folds.loc[folds["fold"] == fold, "held_out"].iloc[0]
    return protocols.fold_predictions(fold, held_out, test.utterance_ids, test.labels, probs)


@step(experiment_tracker=True, enable_cache=False)  # cheap, and every run's MLflow run gets its figures
def pool_protocol(
    predictions: list[pd.DataFrame],
    utterances: pd.DataFrame,
    evaluation: EvaluationConfig,
    split: SplitConfig,
) -> tuple[
    Annotated[pd.DataFrame, "protocol_pooled"],
    Annotated[pd.DataFrame, "protocol_folds"],
    Annotated[pd.DataFrame, "protocol_per_gender"],
    Annotated[pd.DataFrame, "protocol_cross_corpus"],
    Annotated[pd.DataFrame, "protocol_absent_classes"],
    Annotated[pd.DataFrame, "protocol_predictions"],
    Annotated[HTMLString, "protocol_report"],
]:
    """Pooled over every test fold, per model and ensemble, with bootstrap intervals; per fold; per
    gender; the cross-corpus matrix (loco); the classes a fold has no example of. Logged to the
    pipeline run's MLflow run under ``protocol/``, tagged with the protocol."""
    preds = protocols.attach_utterances(pd.concat(predictions, ignore_index=True), utterances)
    pooled = protocols.pooled_table(preds, n_boot=evaluation.bootstrap, seed=split.seed)
    per_fold = protocols.fold_table(preds, evaluation.protocol)
    genders = protocols.gender_table(preds)
    cross = (protocols.cross_corpus_table(preds) if evaluation.protocol == "loco"
             else pd.DataFrame(columns=protocols.CROSS_CORPUS_COLUMNS))
    absent = protocols.absent_classes_table(preds)

    text = protocols.describe(evaluation, split)
    report = reports.HtmlReport(f"Protocol {evaluation.protocol}")
    report.paragraph(text + " Figures come from the data this run was given: the synthetic demo corpus unless "
                     "real corpora were configured.")
    report.table(pooled.set_index("model"), f"Pooled over {per_fold['fold'].nunique()} test folds "
                 f"({evaluation.protocol}; bootstrap 95 % intervals over utterances, {evaluation.bootstrap} resamples)")
    report.table(per_fold.set_index(["fold", "model"]), "Per fold (F1-macro and UAR over the classes present; "
                 "absent_classes lists the others)")
    if len(absent):
        report.table(absent.set_index(["fold", "absent"]), "Classes without a test example in a fold (not averaged "
                     "into its F1-macro or UAR); predictions of them are errors")
    if len(genders):
        report.table(genders.set_index(["model", "gender"]), "Per gender (speakers of known gender)")
    else:
        report.paragraph("No test speaker has a known gender: no per-gender figures.")
    if len(cross):
        for metric in ("accuracy", "uar"):
            report.table(cross.pivot(index="model", columns="tested_on", values=metric),
                         f"Cross-corpus {metric}: trained on the other corpora, tested on the column's")
    html = report.render()

    _tracking.set_tags({"protocol": evaluation.protocol, "protocol_description": text[:5000]})
    _tracking.log_params("evaluation", evaluation.model_dump(exclude={"speaker_folds"}))
    _tracking.log_dict(evaluation.model_dump(), "protocol/evaluation.json")
    _tracking.log_table(pooled.set_index("model"), "protocol/pooled.csv")
    _tracking.log_table(per_fold.set_index("protocol"), "protocol/folds.csv")
    if len(genders):
        _tracking.log_table(genders.set_index("model"), "protocol/per_gender.csv")
    if len(cross):
        _tracking.log_table(cross.set_index("tested_on"), "protocol/cross_corpus.csv")
        _tracking.log_table(cross.pivot(index="model", columns="tested_on", values="accuracy"),
                            "protocol/cross_corpus_accuracy.csv")  # the matrix: model x held-out corpus
    _tracking.log_table(absent.set_index("fold"), "protocol/absent_classes.csv")
    _tracking.log_text(html, "protocol/report.html")
    _tracking.log_metrics({f"protocol.{row['model']}.{m}": float(row[m])
                           for _, row in pooled.iterrows() for m in protocols.METRICS if np.isfinite(row[m])})
    _metadata({"protocol": evaluation.protocol,
               "pooled": {row["model"]: {m: float(row[m]) for m in protocols.METRICS} for _, row in pooled.iterrows()}})
    for _, row in pooled.iterrows():
        logger.info("%s (%s, pooled over %d utterances): accuracy %.4f, F1-macro %.4f, UAR %.4f", row["model"],
                    evaluation.protocol, row["n"], row["accuracy"], row["f1_macro"], row["uar"])
    return pooled, per_fold, genders, cross, absent, preds, HTMLString(html)
