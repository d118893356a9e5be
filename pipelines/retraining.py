"""Retraining on data change, for schedules.

    zenml pipeline run pipelines.retraining.retraining_pipeline -c configs/retrain.yaml

A dynamic ZenML pipeline: its body runs at run time, so a schedule compiled once still looks at
the corpora every time. ``check_for_new_data`` (never cached) compares the corpora with the
production Model version's data fingerprint:

- unchanged: the run ends there ("no new data"), trains nothing and creates no Model version; the
  check's record stays in ZenML and MLflow;
- changed, no production version yet, or ``retrain.force``: the training pipeline's own step graph
  (:func:`pipelines.training.compose_training`) trains and passes the promotion gate, and versions
  beyond ``retrain.keep_versions`` that are not in production are archived.

Features of unchanged clips come from the per-clip feature cache.
"""

from __future__ import annotations

import logging

from zenml import Model, pipeline

from pipelines._runs import RUN_HOOKS
from pipelines.disk_check import check_storage
from pipelines.training import (
    LIBRARY_CACHE_POLICY,
    check_configuration,
    compose_training,
    hash_cache_dir,
    named,
    resolve_all_corpora,
)
from speech_emotion.config import (
    AblationConfig,
    AugmentationConfig,
    CorporaConfig,
    DeployConfig,
    EnsembleConfig,
    FeatureConfig,
    IngestConfig,
    PromotionConfig,
    ResourcesConfig,
    RetrainConfig,
    SplitConfig,
    StackingConfig,
    TrainingConfig,
    TuningConfig,
)
from speech_emotion.corpora.fingerprint import files_fingerprint, source_fingerprint
from steps.resources import with_resources
from speech_emotion.model_card import describe_corpora
from steps.retrain import archive_old_versions, check_for_new_data

logger = logging.getLogger(__name__)


@pipeline(dynamic=True, enable_cache=True, cache_policy=LIBRARY_CACHE_POLICY, **RUN_HOOKS)
def retraining_pipeline(
    corpora: CorporaConfig = CorporaConfig(demo={}),
    ingest: IngestConfig = IngestConfig(),
    split: SplitConfig = SplitConfig(),
    features: FeatureConfig = FeatureConfig(),
    families: dict[str, dict] = {"cnn2d_lstm": {}},
    tuning: TuningConfig = TuningConfig(enabled=False),
    search_spaces: dict[str, dict[str, list]] = {},
    training: TrainingConfig = TrainingConfig(),
    ensemble: EnsembleConfig = EnsembleConfig(),
    stacking: StackingConfig = StackingConfig(enabled=False),
    ablation: AblationConfig = AblationConfig(),
    deploy: DeployConfig = DeployConfig(),
    promotion: PromotionConfig = PromotionConfig(),
    retrain: RetrainConfig = RetrainConfig(),
    resources: ResourcesConfig = ResourcesConfig(),
    augmentation: AugmentationConfig = AugmentationConfig(),
) -> None:
    """The training pipeline's parameters plus ``retrain``."""
    check_configuration(families, tuning, search_spaces, features, ablation, corpora=corpora, split=split)
    check_storage({"the feature cache": features.cache_dir, "the content-hash cache": str(hash_cache_dir())})
    if retrain.model != promotion.registered_model:
        raise ValueError(f"retrain.model ({retrain.model}) and promotion.registered_model "
                         f"({promotion.registered_model}) must name the same model")
    roots, custom, every_root = resolve_all_corpora(corpora)
    cache = str(hash_cache_dir())
    # by name: a dynamic run may list a step's outputs out of their declared order
    utterances, rejected, decision = named(
        with_resources(check_for_new_data, resources)(roots, ingest, retrain, cache, custom=custom),
        "utterances", "rejected", "retrain_decision")
    if not decision.load()["train"]:
        logger.info("no new data: nothing to train")
        return
    # the same content hashes as the check's (cached): what the Model version records
    source = source_fingerprint(files_fingerprint(every_root, cache_dir=cache), ingest.model_dump())
    promoted = compose_training(
        utterances, rejected, every_root, split=split, features=features, families=families, tuning=tuning,
        search_spaces=search_spaces, training=training, ensemble=ensemble, stacking=stacking, ablation=ablation,
        deploy=deploy, promotion=promotion, source=source, model=Model(name=retrain.model), resources=resources,
        data_sources=describe_corpora(every_root, synthetic=corpora.synthetic(), custom=custom),
        augmentation=augmentation,
    )
    archive_old_versions(promoted, model=retrain.model, keep=retrain.keep_versions)
