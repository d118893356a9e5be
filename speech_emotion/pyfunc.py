"""The predictor as an MLflow pyfunc model: what ``mlflow models serve`` and the registry hold.

Input: a DataFrame with an optional ``path`` column (string) and an optional
``audio`` column (the bytes of an audio file, declared ``binary`` in the
signature, so MLflow's REST server decodes it from base64). Output: one row per
input row with the predictor's columns: the emotion, one probability per
class, duration, windows, and an error code with its detail for a row that
could not be scored (the other rows are still scored).

A served model must not become a way to read the server's files: a ``path`` is
refused unless it lies under ``SER_ALLOWED_AUDIO_ROOT`` (read when the model
is loaded; unset by default, so every path is refused). Audio over
``SER_MAX_AUDIO_MB`` (default 20) is refused before it is decoded.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from speech_emotion.predictor import Predictor
from speech_emotion.storage import is_url

ALLOWED_ROOT_ENV = "SER_ALLOWED_AUDIO_ROOT"
MAX_MB_ENV = "SER_MAX_AUDIO_MB"
ARTIFACT = "predictor"
#: error codes of the service beside the ingestion's rejection reasons
PATH_REFUSED = "path_refused"
TOO_LARGE = "too_large"
NO_INPUT = "no_input"


def max_audio_bytes() -> int:
    value = os.environ.get(MAX_MB_ENV, "20")
    try:
        return int(float(value) * 1024 * 1024)
    except ValueError:
        raise ValueError(f"{MAX_MB_ENV}={value!r} is not a number of megabytes") from None


def allowed_root() -> Path | None:
    value = os.environ.get(ALLOWED_ROOT_ENV)
    return Path(value).resolve() if value else None


def path_refusal(path: str, root: Path | None) -> str | None:
    """Why ``path`` may not be read by a service, or None when it may."""
    if root is None:
        return (f"path inputs are refused: set {ALLOWED_ROOT_ENV} to a folder before the model is loaded "
                "to allow reading audio files under it, or post the audio bytes instead")
    if is_url(path):  # the predictor reads s3:// and other fsspec URLs: a service never follows one
        return f"URLs are refused ({path.split('://', 1)[0]}://); post the audio bytes, or a path under {root}"
    resolved = Path(path).resolve()  # symlinks and .. cannot lead out of the root
    if not resolved.is_relative_to(root):
        return f"path is outside {ALLOWED_ROOT_ENV} ({root}); refused"
    return None


class EmotionModel(mlflow.pyfunc.PythonModel):
    """Loads the predictor folder once; scores rows of paths or audio bytes."""

    def load_context(self, context) -> None:
        self.predictor = Predictor.load(context.artifacts[ARTIFACT])
        self.root = allowed_root()
        self.max_bytes = max_audio_bytes()

    def predict(self, context, model_input, params=None):
        return score_rows(self.predictor, pd.DataFrame(model_input), self.root, self.max_bytes)


def _refused(predictor: Predictor, path: str, code: str, detail: str) -> dict:
    return {"path": path, "emotion": None, **{c: None for c in predictor.classes}, "duration_s": None,
            "windows": 0, "error": code, "error_detail": detail}


def score_rows(predictor: Predictor, frame: pd.DataFrame, root: Path | None, max_bytes: int) -> pd.DataFrame:
    """One output row per input row; refusals and bad audio become rows with an error."""
    rows = []
    for record in frame.to_dict("records"):
        audio, path = record.get("audio"), record.get("path")
        path = "" if path is None or (isinstance(path, float) and pd.isna(path)) else str(path)
        if isinstance(audio, str):  # a caller that did not go through the REST decoding
            import base64

            audio = base64.b64decode(audio)
        if isinstance(audio, (bytes, bytearray)):
            if len(audio) > max_bytes:
                rows.append(_refused(predictor, path, TOO_LARGE, f"{len(audio) / 2**20:.1f} MB of audio is over the "
                                     f"limit of {max_bytes / 2**20:g} MB ({MAX_MB_ENV})"))
            else:
                rows.append(predictor.predict_bytes([bytes(audio)], [path]).iloc[0].to_dict())
        elif path:
            refusal = path_refusal(path, root)
            if refusal:
                rows.append(_refused(predictor, path, PATH_REFUSED, refusal))
            else:
                rows.append(predictor.predict_paths([path]).iloc[0].to_dict())
        else:
            rows.append(_refused(predictor, path, NO_INPUT, "the row has neither audio bytes nor a path"))
    return predictor.to_table(rows)


def signature(classes):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec("string", "path", required=False), ColSpec("binary", "audio", required=False)])
    outputs = Schema([ColSpec("string", "path"), ColSpec("string", "emotion", required=False),
                      *[ColSpec("double", c, required=False) for c in classes],
                      ColSpec("double", "duration_s", required=False), ColSpec("long", "windows"),
                      ColSpec("string", "error", required=False), ColSpec("string", "error_detail", required=False)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("mlflow", "keras", "tensorflow-cpu", "tensorflow", "librosa", "soundfile", "soxr",
                    "scikit-learn", "pandas", "numpy", "pydantic"):
        try:
            out.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pass
    return out


def log_predictor(predictor: Predictor, example_audio: bytes | None = None, registered_model_name: str | None = None,
                  name: str = "predictor"):
    """Log the predictor as a pyfunc model in the active MLflow run (and register it); returns MLflow's ModelInfo.

    The serving environment needs this project installed (``--env-manager local``): the
    pyfunc class and the feature code come from the ``speech_emotion`` package.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = predictor.save(Path(tmp) / ARTIFACT)
        example = pd.DataFrame({"audio": [example_audio]}) if example_audio is not None else None
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=EmotionModel(),
            artifacts={ARTIFACT: str(folder)},
            signature=signature(predictor.classes),
            input_example=example,
            registered_model_name=registered_model_name,
            pip_requirements=_requirements(),
        )
