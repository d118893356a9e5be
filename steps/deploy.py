"""From trained models to a versioned, promotable predictor.

- ``build_predictor``: the chosen model (``deploy.model``) with the scaler and feature parameters.
- ``register_model``: the predictor as an MLflow pyfunc model, registered; the ZenML Model
  version's metadata (test figures, data fingerprint, corpora, split) and its linked artifacts.
- ``promote_model``: the promotion gate against the current production version.

Registration and promotion never come from the cache: a fully cached re-run still records its decision.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Annotated

import numpy as np
import pandas as pd
from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.enums import ArtifactType

from materializers import PredictorMaterializer
from speech_emotion import versions
from speech_emotion.config import DeployConfig, PromotionConfig, SplitConfig
from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.corpora.fingerprint import data_fingerprint
from speech_emotion.features import FeatureParams, FeatureScaler, FeatureSet
from speech_emotion.models.functionals_svm import FunctionalsSvm
from speech_emotion.models.trained import TrainedModel
from speech_emotion.predictor import Predictor, choose_model
from speech_emotion.model_card import group_scores, model_card, short_description
from speech_emotion.promotion import decide, probabilities_on
from speech_emotion.pyfunc import log_predictor
from steps import _tracking

logger = logging.getLogger(__name__)


def _model_version():
    """The run's ZenML Model version, or None when the pipeline runs without ``model:``."""
    try:
        return get_step_context().model
    except Exception:  # StepContextError: no model configured
        return None


@step(output_materializers=PredictorMaterializer)
def build_predictor(
    scaler: FeatureScaler,
    family_models: list[TrainedModel | FunctionalsSvm],
    comparison: pd.DataFrame,
    deploy: DeployConfig,
    feature_params: FeatureParams,
    ga_weights: pd.DataFrame | None = None,
    stacking_model: TrainedModel | None = None,
    average_voting: bool = False,
) -> Annotated[Predictor, ArtifactConfig(name="predictor", artifact_type=ArtifactType.MODEL)]:
    """The model named by ``deploy.model`` (default ``best``: best validation F1-macro) as a predictor."""
    by_name = {m.name: m for m in family_models}
    available = list(by_name)
    has_ga = ga_weights is not None and len(ga_weights) and ga_weights["weight"].notna().all()
    if len(family_models) >= 2 and average_voting:
        available.append("average_voting")
    if len(family_models) >= 2 and has_ga:
        available.append("ga_ensemble")
    if stacking_model is not None:
        available.append("stacking")
    name, reason = choose_model(comparison, deploy.model, available)
    if name == "stacking":
        members, kind, weights = [stacking_model], "stacking", None
    elif name in ("average_voting", "ga_ensemble"):
        members, kind = list(family_models), name
        weights = None
        if name == "ga_ensemble":
            table = ga_weights.set_index("model")["weight"]
            weights = [float(table[m.name]) for m in members]
    else:
        members, kind, weights = [by_name[name]], "single", None
    context = get_step_context()
    val = comparison[(comparison["split"] == "val") & (comparison["model"] == name)]
    info = {
        "training_run": context.pipeline_run.name,
        "training_run_id": str(context.pipeline_run.id),
        "reason": reason,
        "selected_on": "val",
        "val_f1_macro": float(val.iloc[0]["f1_macro"]) if len(val) else None,
    }
    predictor = Predictor(members=members, scaler=scaler, feature_params=feature_params, kind=kind,
                          name=name, weights=weights, min_confidence=deploy.min_confidence, info=info)
    logger.info("predictor: %s", predictor.describe())
    log_metadata(metadata={"deployed_model": name, "reason": reason})
    return predictor


def _link_inputs_to_model_version(model_version) -> None:
    """Link this step's input artifacts to the run's Model version (also when they came from the cache)."""
    from zenml.model.utils import link_artifact_version_to_model_version

    for name, artifacts in get_step_context().inputs.items():
        for artifact in artifacts:
            try:
                link_artifact_version_to_model_version(artifact, model_version)
            except Exception as exc:  # already linked
                logger.debug("artifact %s already linked: %s", name, exc)


@step(enable_cache=False, experiment_tracker=True)
def register_model(
    predictor: Predictor,
    utterances: pd.DataFrame,
    comparison: pd.DataFrame,
    scaler: FeatureScaler,
    test: FeatureSet,
    corpora: list[str],
    split: SplitConfig,
    registered_model: str,
    source_fingerprint: str = "",
    data_sources: dict[str, dict] | None = None,
) -> tuple[Annotated[str, "data_fingerprint"], Annotated[int, "mlflow_model_version"], Annotated[str, "model_card"],
           Annotated[np.ndarray, "test_probabilities"]]:
    """Log and register the predictor in MLflow, and describe the ZenML Model version.

    ``source_fingerprint`` (the corpus files and the ingestion options) lets a retraining run
    tell that nothing changed without ingesting again. ``data_sources`` (what each corpus is:
    :func:`speech_emotion.model_card.describe_corpora`) goes into the model card, which becomes
    the description of the MLflow model version and of the ZenML Model version, and the run's
    artifact ``model_card.md``. ``test_probabilities`` (the predictor's, columns in ``EMOTIONS``
    order; no rows when it could not score the test split) go to the promotion gate, which would
    otherwise compute them again."""
    fingerprint = data_fingerprint(utterances)
    _tracking.set_experiment_kind()
    _tracking.log_dataset(utterances, name="+".join(sorted(set(utterances["corpus"]))), digest=fingerprint)
    version = 0
    if _tracking.active():
        example = _example_audio(test)
        info = log_predictor(predictor, example_audio=example, registered_model_name=registered_model)
        version = int(info.registered_model_version or 0)
        logger.info("registered MLflow model %s version %s", registered_model, version)
    test_row = comparison[(comparison["split"] == "test") & (comparison["model"] == predictor.name)]
    metadata = {
        "deployed_model": predictor.name,
        "deployed_kind": predictor.kind,
        "reason": predictor.info.get("reason", ""),
        "data_fingerprint": fingerprint,
        "source_fingerprint": source_fingerprint,
        "corpora": sorted(corpora),
        "split_strategy": split.strategy,
        "n_utterances": len(utterances),
        "mlflow_registered_model": registered_model,
        "mlflow_model_version": version,
    }
    if len(test_row):
        metadata["test_accuracy"] = float(test_row.iloc[0]["accuracy"])
        metadata["test_f1_macro"] = float(test_row.iloc[0]["f1_macro"])
    _tracking.set_tags({"deployed_model": predictor.name, "data_fingerprint": fingerprint})
    model_version = _model_version()
    response = model_version._get_or_create_model_version() if model_version is not None else None
    names = ([f"ZenML {response.model.name} {response.name}"] if response is not None else []) + (
        [f"MLflow {registered_model} v{version}"] if version else [])
    probs = _test_probabilities(predictor, test)
    card = _model_card(predictor, utterances, comparison, test, probs, split, data_sources or {},
                       ", ".join(names) or None)
    _tracking.log_text(card, "model_card.md")
    if version:
        import mlflow

        where = f"artifact model_card.md of MLflow run {mlflow.active_run().info.run_id}"
        mlflow.MlflowClient().update_model_version(registered_model, str(version),
                                                   description=short_description(card, where))
    if model_version is not None:
        model_version.log_metadata(metadata)
        _link_inputs_to_model_version(response)
        from zenml.client import Client

        Client().update_model_version(model_name_or_id=response.model.id, version_name_or_id=response.id,
                                      description=card)
        _tracking.set_tags({"zenml_model_version": str(model_version.number)})
    else:
        logger.warning("the pipeline runs without a ZenML Model (`model:` in its config): no version is created")
    return fingerprint, version, card, probs if probs is not None else np.zeros((0, len(EMOTIONS)), np.float32)


def _test_probabilities(predictor: Predictor, test: FeatureSet) -> np.ndarray | None:
    """The predictor's probabilities on the test split, or None (no test split, or a clip unreadable since
    training: the card says so and registration goes on)."""
    if not len(test):
        return None
    try:
        return probabilities_on(predictor, test)
    except ValueError as exc:
        logger.warning("model card without per-group figures: %s", exc)
        return None


def _model_card(predictor: Predictor, utterances: pd.DataFrame, comparison: pd.DataFrame, test: FeatureSet,
                probs: np.ndarray | None, split: SplitConfig, sources: dict[str, dict], version: str | None) -> str:
    """The model card, with the predictor's test figures per gender and per corpus (when it could score them)."""
    per_gender = per_corpus = None
    if probs is not None:
        gender_of = dict(zip(utterances["path"].astype(str), utterances["gender"].astype(str)))
        genders = [gender_of.get(str(p), "unknown") for p in test.utterance_ids]
        if set(genders) != {"unknown"}:
            per_gender = group_scores(probs, test.labels, genders, "gender")
        per_corpus = group_scores(probs, test.labels, test.corpus, "corpus")
    try:
        run = get_step_context().pipeline_run.name
    except RuntimeError:
        run = None
    return model_card(model=predictor.name, kind=predictor.kind, reason=predictor.info.get("reason", ""),
                      utterances=utterances, sources=sources, comparison=comparison, split=split.model_dump(),
                      per_gender=per_gender, per_corpus=per_corpus, version=version, run=run)


def _example_audio(test: FeatureSet) -> bytes | None:
    """The bytes of one test clip, the MLflow model's input example."""
    for path in map(str, test.utterance_ids[:5]):
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            continue
    return None


@step(enable_cache=False, experiment_tracker=True)
def promote_model(
    predictor: Predictor, test: FeatureSet, promotion: PromotionConfig, mlflow_model_version: int,
    test_probabilities: np.ndarray | None = None,
) -> Annotated[dict, "promotion_decision"]:
    """Score production's predictor and the new one on this run's test split; promote if not worse.

    ``test_probabilities``: the new predictor's on ``test``, from ``register_model`` (recomputed when
    they have no row per test clip)."""
    model_version = _model_version()
    if model_version is None:
        logger.warning("no ZenML Model configured: nothing to promote")
        return {"promote": False, "reason": "no ZenML Model configured"}
    current = model_version._get_or_create_model_version()
    production = versions.production_version(current.model.name)
    production_predictor = None
    if production is not None and production.id != current.id:
        production_predictor = versions.load_predictor(production)
    decision = decide(predictor, test, production_predictor, promotion.margin,
                      production_version=None if production is None else production.name,
                      new_probabilities=test_probabilities)
    logger.info("promotion: %s (%s)", "promote" if decision.promote else "keep production", decision.reason)
    if decision.promote and promotion.enabled:
        versions.promote(current, mlflow_version=mlflow_model_version or None,
                         registered_model=promotion.registered_model)
    elif decision.promote:
        decision = dataclasses.replace(decision, promote=False, reason=decision.reason + "; promotion.enabled is false")
    meta = decision.metadata()
    model_version.log_metadata({f"promotion_{k}": v for k, v in meta.items()})
    _tracking.log_metrics({f"promotion.{k}": float(v) for k, v in meta.items() if isinstance(v, (int, float))})
    _tracking.set_tags({"promotion": "promoted" if decision.promote else "not promoted",
                        "promotion_reason": decision.reason})
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in meta.items()}
