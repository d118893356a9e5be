"""Tiny synthetic feature sets for model tests: each class gets its own learnable cue."""

from __future__ import annotations

import numpy as np

from speech_emotion.features import FeatureSet


def tiny_features(n: int, seed: int = 0, frames: int = 32, n_classes: int = 7) -> FeatureSet:
    """``n`` examples, labels cycling through ``n_classes``; log-mel (16, frames), MFCC 40, chroma 12, mel 16.

    Each example's log-mel band ``label`` and MFCC coefficient ``5 * label`` are raised by 3.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    rows = np.arange(n)
    logmel = rng.standard_normal((n, 16, frames)).astype(np.float32)
    logmel[rows, labels % 16, :] += 3
    mfcc = rng.standard_normal((n, 40)).astype(np.float32)
    mfcc[rows, labels * 5] += 3
    return FeatureSet(
        utterance_ids=np.array([f"u{i}" for i in range(n)]), labels=labels, corpus=np.array(["tess"] * n),
        mfcc=mfcc, chroma=rng.standard_normal((n, 12)).astype(np.float32),
        mel=rng.standard_normal((n, 16)).astype(np.float32), logmel=logmel, scaled=True,
    )


def demo_features(roots: dict, params, corpora=("tess", "savee")):
    """Ingested utterances of the demo corpus and their unscaled features."""
    from speech_emotion.corpora.ingest import ingest_corpora
    from speech_emotion.corpora.common import EMOTION_TO_INDEX
    from speech_emotion.features import extract_features

    utterances = ingest_corpora({c: roots[c] for c in corpora}, progress=False).utterances
    raw = extract_features(utterances["path"].tolist(), utterances["emotion"].map(EMOTION_TO_INDEX).tolist(),
                           utterances["corpus"].tolist(), params=params, progress=False)
    return utterances, raw


def tiny_trained(scaled, family: str, hparams: dict, epochs: int = 1):
    """One family trained on ``scaled`` (validated on it too): what the prediction tests need, fast."""
    from speech_emotion.config import ModelConfig, TrainingConfig
    from speech_emotion.training import train_model

    training = TrainingConfig(epochs=epochs, batch_size=8, early_stopping_patience=epochs)
    return train_model(scaled, scaled, ModelConfig(family=family, hparams=hparams), training, progress=False)
