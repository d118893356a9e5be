"""Thin typed ZenML steps over ``speech_emotion``: each adapts one library call
(types, MLflow logging, caching) and holds no method logic of its own."""

from steps.analysis import analyse_dataset
from steps.evaluate import evaluate_model
from steps.features import extract_features, scale_features
from steps.ingest import ingest_corpora
from steps.split import split_dataset
from steps.train import train_model

__all__ = [
    "analyse_dataset",
    "evaluate_model",
    "extract_features",
    "ingest_corpora",
    "scale_features",
    "split_dataset",
    "train_model",
]
