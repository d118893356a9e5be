"""Thin typed ZenML steps over ``speech_emotion``: each adapts one library call
(types, MLflow logging, caching) and holds no method logic of its own."""

from steps import _source_cache  # noqa: F401  (first: ZenML's per-artifact package lookup, cached)
from steps.analysis import analyse_dataset
from steps.compare import compare_models
from steps.deploy import build_predictor, promote_model, register_model
from steps.ensemble import ensemble_models
from steps.evaluate import evaluate_model
from steps.features import augment_training_features, extract_features, resolve_feature_params, scale_features
from steps.ingest import ingest_corpora
from steps.split import split_dataset
from steps.stacking import train_stacking_model
from steps.train import train_model
from steps.tune import tune_model

__all__ = [
    "analyse_dataset",
    "augment_training_features",
    "build_predictor",
    "compare_models",
    "ensemble_models",
    "evaluate_model",
    "extract_features",
    "ingest_corpora",
    "promote_model",
    "register_model",
    "resolve_feature_params",
    "scale_features",
    "split_dataset",
    "train_model",
    "train_stacking_model",
    "tune_model",
]
