"""Feature extraction per split, and standard scaling fitted on train only."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
from zenml import get_step_context, step

from materializers import FeatureScalerMaterializer, FeatureSetMaterializer
from materializers.feature_set import output_folder
from speech_emotion.augmentation import augment_training_set
from speech_emotion.config import AugmentationConfig, FeatureConfig
from speech_emotion.corpora.common import EMOTION_TO_INDEX
from speech_emotion.features import LOGMEL_STD_FLOOR, FeatureParams, FeatureScaler, FeatureSet, extract_features as extract
from speech_emotion.storage import is_url
from steps import _tracking

logger = logging.getLogger(__name__)


def runtime_settings() -> tuple[int, str | None]:
    """``workers`` and ``cache_dir`` from the step's ``extra`` config (outside the cache key)."""
    try:
        extra = get_step_context().step_run.config.extra
    except RuntimeError:  # called outside a pipeline
        extra = {}
    cache_dir = extra.get("cache_dir")
    if cache_dir and not is_url(cache_dir) and not Path(cache_dir).is_absolute():  # a URL (s3://...) stays one
        from zenml.utils import source_utils

        cache_dir = str(Path(source_utils.get_source_root()) / cache_dir)
    return int(extra.get("workers", 1)), cache_dir


@step
def resolve_feature_params(utterances: pd.DataFrame, features: FeatureConfig) -> Annotated[FeatureParams, "feature_params"]:
    """``features.duration_s: auto``: the clip length from ``utterances``' durations (the training
    split's; the whole corpus in an evaluation run, whose folds share one extraction)."""
    params = features.params(utterances["duration_s"].to_numpy())
    logger.info("features.duration_s auto: %.3f s (percentile %g of %d clips' durations, at most %g s)",
                params.duration_s, features.duration_percentile, len(utterances), features.max_duration_s)
    return params


@step(output_materializers=FeatureSetMaterializer)
def augment_training_features(
    features: FeatureSet, utterances: pd.DataFrame, params: FeatureParams, augmentation: AugmentationConfig
) -> Annotated[FeatureSet, "features"]:
    """The training split's features followed by ``augmentation.copies`` augmented copies of each clip
    (:mod:`speech_emotion.augmentation`; cached per copy like features)."""
    workers, cache_dir = runtime_settings()
    out = augment_training_set(features, utterances, augmentation, params, cache_dir=cache_dir, workers=workers,
                               folder=output_folder("features") if augmentation.copies else None)
    logger.info("augmentation: %d training clips + %d augmented copies", len(features), len(out) - len(features))
    return out


@step(experiment_tracker=True, output_materializers=FeatureSetMaterializer)
def extract_features(utterances: pd.DataFrame, params: FeatureParams) -> Annotated[FeatureSet, "features"]:
    """MFCC, chroma, mel means and the log-mel (``params.duration_s`` long) of every utterance (cached per
    clip), written clip by clip into the artifact's memory maps; the throughput goes to MLflow."""
    workers, cache_dir = runtime_settings()
    started = time.perf_counter()
    features = extract(
        paths=utterances["path"].tolist(),
        labels=utterances["emotion"].map(EMOTION_TO_INDEX).tolist(),
        corpus=utterances["corpus"].tolist(),
        content_hashes=utterances["content_hash"].tolist(),
        params=params,
        cache_dir=cache_dir,
        workers=workers,
        folder=output_folder("features"),
    )
    seconds = time.perf_counter() - started
    # per invocation (extract_train_features, ...): clips per second, cache hits included
    try:
        name = get_step_context().step_run.name
    except RuntimeError:  # called outside a pipeline
        name = "extract_features"
    _tracking.log_metrics({f"{name}_time_s": seconds, f"{name}_clips_per_s": len(features) / max(seconds, 1e-9)})
    return features


@step(
    experiment_tracker=True,
    output_materializers={
        "scaler": FeatureScalerMaterializer,
        **{name: FeatureSetMaterializer for name in ("train_features", "val_features", "test_features")},
    },
)
def scale_features(
    train: FeatureSet, val: FeatureSet, test: FeatureSet, scale: bool = True, logmel_scaling: str = "element",
    std_floor: float = LOGMEL_STD_FLOOR, track: bool = True, mask_padding: bool = False,
) -> tuple[
    Annotated[FeatureScaler, "scaler"],
    Annotated[FeatureSet, "train_features"],
    Annotated[FeatureSet, "val_features"],
    Annotated[FeatureSet, "test_features"],
]:
    """Fit the standard scaler on train only and apply it to every split (``scale=False`` passes through).
    ``track=False`` (the log-mel scaling ablation's second scaler) logs no parameters: the run's
    ``features.*`` describe the main one."""
    if track:
        _tracking.log_params("features", {**train.params, "scale": scale, "logmel_scaling": logmel_scaling,
                                          "logmel_std_floor": std_floor, "mask_padding": mask_padding})
    if not scale:
        return FeatureScaler(logmel_scaling=logmel_scaling), train, val, test
    scaler = FeatureScaler.fit(train, logmel_scaling=logmel_scaling, std_floor=std_floor, zero_padding=mask_padding)
    return scaler, *(scaler.transform(part, folder=output_folder(f"{name}_features"))
                     for name, part in (("train", train), ("val", val), ("test", test)))
