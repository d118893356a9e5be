"""A static twin of the training pipeline's holdout graph, for inspecting its wiring without running it.

The training pipeline is dynamic (a protocol's folds are known only after ingestion), so its graph is
built as it runs. This static pipeline calls the same functions as its holdout path
(:func:`pipelines.training.ingest_all`, :func:`pipelines.training.compose_training`), so
``holdout_graph.prepare(...)`` then ``holdout_graph.invocations`` shows the steps and their parameters.
"""

from __future__ import annotations

from zenml import pipeline

from pipelines.training import check_configuration, compose_training, ingest_all
from speech_emotion.config import (
    AblationConfig,
    CorporaConfig,
    DeployConfig,
    EnsembleConfig,
    FeatureConfig,
    IngestConfig,
    PromotionConfig,
    SplitConfig,
    StackingConfig,
    TrainingConfig,
    TuningConfig,
)


@pipeline(enable_cache=False)
def holdout_graph(
    corpora: CorporaConfig = CorporaConfig(demo={}),
    split: SplitConfig = SplitConfig(),
    families: dict[str, dict] = {"cnn2d_lstm": {}},
    tuning: TuningConfig = TuningConfig(enabled=False),
    search_spaces: dict[str, dict[str, list]] = {},
) -> None:
    features, ablation = FeatureConfig(), AblationConfig()
    check_configuration(families, tuning, search_spaces, features, ablation, corpora=corpora, split=split)
    utterances, rejected, roots, source, _ = ingest_all(corpora, IngestConfig())
    compose_training(
        utterances, rejected, roots, split=split, features=features, families=families, tuning=tuning,
        search_spaces=search_spaces, training=TrainingConfig(), ensemble=EnsembleConfig(),
        stacking=StackingConfig(enabled=False), ablation=ablation, deploy=DeployConfig(), promotion=PromotionConfig(),
        source=source,
    )
