"""The training pipeline.

    zenml pipeline run pipelines.training.training_pipeline -c configs/demo.yaml

ingest -> split -> dataset analysis -> features (per split) -> scaling (fit on
train) -> train -> evaluate, every tracked step logging to one MLflow run named
after the pipeline run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from zenml import pipeline

from speech_emotion.config import (
    CorporaConfig,
    FeatureConfig,
    IngestConfig,
    ModelConfig,
    SplitConfig,
    TrainingConfig,
)
from speech_emotion.corpora.common import CORPORA
from speech_emotion.corpora.fingerprint import corpora_fingerprint
from steps import (
    analyse_dataset,
    evaluate_model,
    extract_features,
    ingest_corpora,
    scale_features,
    split_dataset,
    train_model,
)

logger = logging.getLogger(__name__)


def project_root() -> Path:
    from zenml.utils import source_utils

    return Path(source_utils.get_source_root())


def resolve_corpora(corpora: CorporaConfig, base: Path | None = None) -> dict[str, str]:
    """Absolute corpus roots; synthesises the demo corpus first when it is configured and missing."""
    base = base or project_root()
    roots = corpora.explicit_roots(base)
    if corpora.demo is not None and len(roots) < len(CORPORA):
        from speech_emotion.demo_corpus import generate_demo_corpus

        demo_root = Path(corpora.demo.root)
        demo_root = demo_root if demo_root.is_absolute() else base / demo_root
        demo = generate_demo_corpus(demo_root, per_class=corpora.demo.per_class, seed=corpora.demo.seed)
        for corpus, root in demo.items():
            roots.setdefault(corpus, root)
    missing = {c: str(p) for c, p in roots.items() if not Path(p).is_dir()}
    if missing:
        raise FileNotFoundError(f"corpus folders not found: {missing}")
    return {c: str(p) for c, p in sorted(roots.items())}


@pipeline(enable_cache=True)
def training_pipeline(
    corpora: CorporaConfig = CorporaConfig(demo={}),
    ingest: IngestConfig = IngestConfig(),
    split: SplitConfig = SplitConfig(),
    features: FeatureConfig = FeatureConfig(),
    model: ModelConfig = ModelConfig(),
    training: TrainingConfig = TrainingConfig(),
) -> None:
    roots = resolve_corpora(corpora)
    utterances, rejected = ingest_corpora(roots=roots, options=ingest, fingerprint=corpora_fingerprint(roots))
    train_utt, val_utt, test_utt = split_dataset(utterances, split)
    analyse_dataset(utterances, rejected, train_utt, val_utt, test_utt)
    train_raw = extract_features(train_utt, features, id="extract_train_features")
    val_raw = extract_features(val_utt, features, id="extract_val_features")
    test_raw = extract_features(test_utt, features, id="extract_test_features")
    _, train_f, val_f, test_f = scale_features(train_raw, val_raw, test_raw, features)
    trained = train_model(train_f, val_f, model, training)
    evaluate_model(trained, val_f, test_f)
