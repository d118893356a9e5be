"""Feature extraction per split, and standard scaling fitted on train only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
from zenml import step

from speech_emotion.config import FeatureConfig
from speech_emotion.corpora.common import EMOTION_TO_INDEX
from speech_emotion.features import FeatureScaler, FeatureSet, extract_features as extract
from materializers import FeatureScalerMaterializer, FeatureSetMaterializer
from steps import _tracking


@step(output_materializers=FeatureSetMaterializer)
def extract_features(utterances: pd.DataFrame, config: FeatureConfig) -> Annotated[FeatureSet, "features"]:
    """MFCC, chroma, mel means and the 8 s log-mel of every utterance (cached per clip)."""
    cache_dir = config.cache_dir
    if cache_dir and not Path(cache_dir).is_absolute():
        from zenml.utils import source_utils

        cache_dir = str(Path(source_utils.get_source_root()) / cache_dir)
    return extract(
        paths=utterances["path"].tolist(),
        labels=utterances["emotion"].map(EMOTION_TO_INDEX).tolist(),
        corpus=utterances["corpus"].tolist(),
        content_hashes=utterances["content_hash"].tolist(),
        params=config.params(),
        cache_dir=cache_dir,
        workers=config.workers,
    )


@step(
    experiment_tracker=True,
    output_materializers={
        "scaler": FeatureScalerMaterializer,
        **{name: FeatureSetMaterializer for name in ("train_features", "val_features", "test_features")},
    },
)
def scale_features(
    train: FeatureSet, val: FeatureSet, test: FeatureSet, config: FeatureConfig
) -> tuple[
    Annotated[FeatureScaler, "scaler"],
    Annotated[FeatureSet, "train_features"],
    Annotated[FeatureSet, "val_features"],
    Annotated[FeatureSet, "test_features"],
]:
    """Fit the standard scaler on train only and apply it to every split (``scale: false`` passes through)."""
    _tracking.log_params("features", config.model_dump())
    scaler = FeatureScaler.fit(train) if config.scale else FeatureScaler()
    if not config.scale:
        return scaler, train, val, test
    return scaler, scaler.transform(train), scaler.transform(val), scaler.transform(test)
