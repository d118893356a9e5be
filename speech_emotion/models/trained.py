"""A trained network with what is needed to use it again: family, input, hyperparameters, history."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speech_emotion.corpora.common import EMOTIONS


@dataclass
class TrainedModel:
    model: Any  # keras.Model
    family: str
    input_name: str  # FeatureSet.input(...) name the model reads
    hparams: dict
    history: dict[str, list[float]] = field(default_factory=dict)
    classes: tuple[str, ...] = EMOTIONS
    feature_params: dict = field(default_factory=dict)
    scaled: bool = True

    @property
    def n_params(self) -> int:
        return int(self.model.count_params())

    def predict_proba(self, features, batch_size: int = 64) -> np.ndarray:
        x = np.asarray(features.input(self.input_name), dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)

    def timed_predict_proba(self, features, batch_size: int = 64) -> tuple[np.ndarray, float]:
        """Probabilities and the wall time to predict the whole set (the seed's inference time)."""
        start = time.perf_counter()
        probs = self.predict_proba(features, batch_size)
        return probs, time.perf_counter() - start
