"""A trained network with what is needed to use it again: family, input, hyperparameters, history."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from speech_emotion.calibration import apply_temperature
from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.datasets import make_dataset, n_examples


def normalize_input_name(input_name: str | Sequence[str]) -> str | tuple[str, ...]:
    """A single input name as is; several (a list from JSON, a tuple) as a tuple of str."""
    if isinstance(input_name, str):
        return input_name
    names = tuple(str(name) for name in input_name)
    if not names:
        raise ValueError("a model needs at least one input")
    return names


def model_inputs(features, input_name: str | Sequence[str]) -> np.ndarray | list[np.ndarray]:
    """The array a model reads (single input) or the list of arrays, in order (multi-input)."""
    input_name = normalize_input_name(input_name)
    if isinstance(input_name, str):
        return np.asarray(features.input(input_name), dtype=np.float32)
    return [np.asarray(features.input(name), dtype=np.float32) for name in input_name]


@dataclass
class TrainedModel:
    model: Any  # keras.Model
    family: str
    #: FeatureSet.input(...) name the model reads; a tuple of names for a multi-input model
    input_name: str | tuple[str, ...]
    hparams: dict
    history: dict[str, list[float]] = field(default_factory=dict)
    classes: tuple[str, ...] = EMOTIONS
    feature_params: dict = field(default_factory=dict)
    scaled: bool = True
    #: label in reports and MLflow (default: the family), e.g. "cnn2d_lstm_no_scaled"
    name: str = ""
    #: temperature scaling of the probabilities (:mod:`speech_emotion.calibration`), fitted on the
    #: validation split after training; 1.0 leaves the network's softmax as it is
    temperature: float = 1.0

    def __post_init__(self) -> None:
        # JSON (the materializer's meta.json) gives lists back for tuples
        self.input_name = normalize_input_name(self.input_name)
        self.classes = tuple(self.classes)
        self.name = self.name or self.family
        self.temperature = float(self.temperature)

    @property
    def n_params(self) -> int:
        return int(self.model.count_params())

    def inputs(self, features) -> np.ndarray | list[np.ndarray]:
        """What ``self.model`` reads from ``features``: an array, or a list of arrays for a multi-input model."""
        return model_inputs(features, self.input_name)

    def predict_proba(self, features, batch_size: int = 64, calibrated: bool = True) -> np.ndarray:
        """(N, C) class probabilities, with the model's temperature applied (``calibrated=False``:
        the network's own softmax, what the temperature is fitted on)."""
        x = self.inputs(features)
        if n_examples(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        # batches gathered from the (memory-mapped) arrays, never one whole-array tensor
        ds = make_dataset(x, None, batch_size, shuffle=False, seed=0)
        probs = np.asarray(self.model.predict(ds, verbose=0), dtype=np.float32)
        return apply_temperature(probs, self.temperature) if calibrated else probs

    def timed_predict_proba(self, features, batch_size: int = 64) -> tuple[np.ndarray, float]:
        """Probabilities and the wall time to predict the whole set (the seed's inference time).

        One batch is predicted first, untimed, so the figure leaves out the one-off
        graph tracing of a freshly loaded model and splits compare fairly."""
        if len(features):
            self.predict_proba(features.subset(np.arange(min(len(features), batch_size))), batch_size)
        start = time.perf_counter()
        probs = self.predict_proba(features, batch_size)
        return probs, time.perf_counter() - start


def save_trained(trained: TrainedModel, folder: str, stem: str = "model") -> None:
    """``<stem>.keras`` (Keras 3 native format) and ``<stem>.json`` (what is needed to use it) in ``folder``."""
    import json
    import os

    trained.model.save(os.path.join(folder, f"{stem}.keras"))
    meta = {
        "family": trained.family,
        "input_name": trained.input_name,
        "hparams": trained.hparams,
        "history": trained.history,
        "classes": list(trained.classes),
        "feature_params": trained.feature_params,
        "scaled": trained.scaled,
        "name": trained.name,
        "temperature": trained.temperature,
    }
    with open(os.path.join(folder, f"{stem}.json"), "w") as f:
        json.dump(meta, f, indent=2)


def load_trained(folder: str, stem: str = "model") -> TrainedModel:
    """The inverse of :func:`save_trained` (registers the project's custom Keras layers first)."""
    import json
    import os

    import keras

    from speech_emotion.models import register_custom_objects

    model = keras.saving.load_model(os.path.join(folder, f"{stem}.keras"), custom_objects=register_custom_objects())
    with open(os.path.join(folder, f"{stem}.json")) as f:
        meta = json.load(f)
    # written before calibration existed: no temperature, i.e. 1.0 (the dataclass default)
    return TrainedModel(model=model, **meta)
