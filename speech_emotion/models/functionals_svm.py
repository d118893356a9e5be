"""The classical baseline: per-clip statistical functionals and a standardised SVM.

What users would otherwise use, in every comparison: openSMILE's ComParE 2016
(6373 functionals) or eGeMAPS v02 (88) feature sets, or librosa MFCC and log-mel
functionals (mean, standard deviation, minimum, maximum over the clip's frames),
then scikit-learn's ``StandardScaler`` and ``SVC(probability=True)``
(``C`` = 10, ``gamma`` = ``"scale"`` by default).

The ``opensmile`` package ships its library and both configurations: nothing
is downloaded. Audio goes through :func:`speech_emotion.audio.load_audio`, as
for the networks (mono, 16 kHz).

The fitted model is stored with ``skops`` (no pickle): :func:`save_model` and
:func:`load_model`, which loads only the scikit-learn and NumPy types listed
in :data:`TRUSTED_TYPES`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from speech_emotion.corpora.common import EMOTIONS

logger = logging.getLogger(__name__)

FAMILY = "functionals_svm"
FEATURE_KINDS: tuple[str, ...] = ("compare", "egemaps", "librosa")
#: the default validation grid with tuning on
GRID: dict[str, list] = {"C": [1.0, 10.0, 100.0], "gamma": ["scale", 1e-3, 1e-4]}
#: the types a stored model may hold; anything else in a file is refused
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.svm._classes.SVC",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int32",
    "numpy.int64",
    "builtins.slice",
)


@dataclass(frozen=True)
class FunctionalsSvmHParams:
    """``features``: compare | egemaps | librosa; ``C`` > 0; ``gamma``: "scale", "auto" or a number > 0."""

    features: str = "compare"
    C: float = 10.0
    gamma: str | float = "scale"

    def __post_init__(self) -> None:
        if self.features not in FEATURE_KINDS:
            raise ValueError(f"FunctionalsSvmHParams.features: {self.features!r} is not one of {FEATURE_KINDS}")
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ValueError(f"FunctionalsSvmHParams.C must be a number > 0, got {self.C!r}")
        if isinstance(self.gamma, str):
            if self.gamma not in ("scale", "auto"):
                raise ValueError(f"FunctionalsSvmHParams.gamma: {self.gamma!r} is not 'scale', 'auto' or a number")
        elif isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)) or not self.gamma > 0:
            raise ValueError(f"FunctionalsSvmHParams.gamma must be 'scale', 'auto' or a number > 0, got {self.gamma!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "FunctionalsSvmHParams":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        if unknown := set(values) - known:
            raise ValueError(f"unknown FunctionalsSvmHParams hyperparameters {sorted(unknown)}; known: {sorted(known)}")
        if "C" in values and isinstance(values["C"], int) and not isinstance(values["C"], bool):
            values["C"] = float(values["C"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- features


def _librosa_functionals(y: np.ndarray, sr: int) -> np.ndarray:
    from speech_emotion import numba_cache

    librosa = numba_cache.librosa()

    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=256, n_mels=64))
    mfcc = librosa.feature.mfcc(S=mel, n_mfcc=40)
    frames = np.concatenate([mfcc, mel], axis=0)  # (104, T)
    return np.concatenate([frames.mean(1), frames.std(1), frames.min(1), frames.max(1)]).astype(np.float32)


class FunctionalsExtractor:
    """Per-clip functionals of one kind (:data:`FEATURE_KINDS`) at ``sample_rate``.

    openSMILE runs in fresh Python processes: in a process that has loaded TensorFlow (every
    pipeline step does) its native library corrupts the heap (``malloc(): invalid size``). With
    ``workers`` > 1 the clips are cut into that many consecutive parts, one process each, run
    side by side; the rows come back in the clips' order.
    """

    def __init__(self, kind: str = "compare", sample_rate: int = 16000, workers: int = 1):
        if kind not in FEATURE_KINDS:
            raise ValueError(f"functionals: {kind!r} is not one of {FEATURE_KINDS}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"functionals: workers must be a whole number >= 1, got {workers!r}")
        self.kind, self.sample_rate, self.workers = kind, sample_rate, workers

    def signal(self, y: np.ndarray) -> np.ndarray:
        """(D,) functionals of one mono signal at ``sample_rate``."""
        return self.signals([y])[0]

    def signals(self, ys: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) functionals of mono signals at ``sample_rate``."""
        ys = [np.asarray(y, dtype=np.float32) for y in ys]
        if self.kind == "librosa":
            return np.stack([_librosa_functionals(y, self.sample_rate) for y in ys])
        return _in_fresh_process(self.kind, self.sample_rate, signals=ys, workers=self.workers)

    def files(self, paths: Sequence[str], progress: bool = False) -> np.ndarray:
        """(N, D) functionals of the files, in order (decoded by :func:`speech_emotion.audio.load_audio`)."""
        from speech_emotion.audio import load_audio

        if not len(paths):
            return np.zeros((0, 0), np.float32)
        if self.kind == "librosa":
            from tqdm.auto import tqdm

            return np.stack([_librosa_functionals(load_audio(p, target_sr=self.sample_rate), self.sample_rate)
                             for p in tqdm(paths, desc="functionals (librosa)", disable=not progress)])
        return _in_fresh_process(self.kind, self.sample_rate, paths=list(paths), workers=self.workers)


def _in_fresh_process(kind: str, sample_rate: int, paths: list[str] | None = None,
                      signals: list[np.ndarray] | None = None, workers: int = 1) -> np.ndarray:
    """Run :func:`_opensmile_job` in new interpreters that import this same library: one per part of
    the clips, at most ``workers`` parts, all started before any is waited for."""
    import os
    import subprocess
    import sys
    import tempfile

    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    items = paths if paths is not None else signals
    bounds = np.linspace(0, len(items), max(1, min(workers, len(items))) + 1).round().astype(int)
    with tempfile.TemporaryDirectory(prefix="opensmile-") as tmp:
        jobs = []
        for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            job = Path(tmp) / f"part{i}"
            job.mkdir()
            part = None if paths is None else paths[start:stop]
            (job / "job.json").write_text(json.dumps({"kind": kind, "sample_rate": sample_rate, "paths": part}))
            if signals is not None:
                np.savez(job / "signals.npz", *signals[start:stop])
            jobs.append((job, subprocess.Popen([sys.executable, "-m", __name__, str(job)], env=env,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        errors = [proc.communicate()[1] for _, proc in jobs]  # every part ends before any failure is raised
        for (_, proc), err in zip(jobs, errors):
            if proc.returncode != 0:
                raise RuntimeError(f"openSMILE ({kind}) failed with exit code {proc.returncode}: {err[-2000:]}")
        return np.concatenate([np.load(job / "out.npy") for job, _ in jobs])


def _opensmile_job(job: Path) -> None:
    import opensmile

    from speech_emotion.audio import load_audio

    spec = json.loads((job / "job.json").read_text())
    kind, sr = spec["kind"], spec["sample_rate"]
    feature_set = opensmile.FeatureSet.ComParE_2016 if kind == "compare" else opensmile.FeatureSet.eGeMAPSv02
    smile = opensmile.Smile(feature_set=feature_set, feature_level=opensmile.FeatureLevel.Functionals)
    if spec["paths"] is not None:
        ys = (load_audio(p, target_sr=sr) for p in spec["paths"])
    else:
        with np.load(job / "signals.npz") as data:
            ys = [data[f"arr_{i}"] for i in range(len(data.files))]
    rows = [smile.process_signal(np.asarray(y, np.float32), sr).to_numpy(np.float32).reshape(-1) for y in ys]
    np.save(job / "out.npy", np.stack(rows))


# --------------------------------------------------------------------------- model


@dataclass
class FunctionalsSvm:
    """A fitted standardised SVC over functionals; probabilities over the seven classes."""

    pipeline: Any  # sklearn.pipeline.Pipeline(StandardScaler, SVC)
    hparams: dict
    name: str = FAMILY
    family: str = FAMILY
    history: dict = field(default_factory=dict)  # the validation grid, when tuned

    @property
    def n_params(self) -> int:
        svc = self.pipeline[-1]
        return int(svc.support_vectors_.size + svc.dual_coef_.size + svc.intercept_.size)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, 7) probabilities in :data:`EMOTIONS` order (0 for a class absent from training)."""
        out = np.zeros((len(x), len(EMOTIONS)), np.float32)
        if len(x):
            out[:, self.pipeline.classes_] = self.pipeline.predict_proba(np.asarray(x, np.float64))
        return out

    def timed_predict_proba(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        return self.predict_proba(x), time.perf_counter() - start


def fit_svm(x: np.ndarray, labels: np.ndarray, hparams: FunctionalsSvmHParams, seed: int = 0):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    labels = np.asarray(labels, dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise ValueError(f"{FAMILY}: the training split holds {len(np.unique(labels))} class(es); an SVM needs 2")
    model = make_pipeline(StandardScaler(), SVC(C=hparams.C, gamma=hparams.gamma, probability=True, random_state=seed))
    return model.fit(np.asarray(x, np.float64), labels)


def train_functionals_svm(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
    hparams: FunctionalsSvmHParams, grid: dict[str, list] | None = None, seed: int = 0,
) -> FunctionalsSvm:
    """Fit on train; with a ``grid`` (C and gamma choices), pick the pair with the best validation
    F1-macro first (ties: the first in grid order), then keep that model."""
    from speech_emotion.evaluation import f1_macro

    if not grid:
        return FunctionalsSvm(fit_svm(x_train, y_train, hparams, seed), hparams.to_dict())
    best, rows = None, []
    for c in grid.get("C", [hparams.C]):
        for gamma in grid.get("gamma", [hparams.gamma]):
            hp = FunctionalsSvmHParams.from_dict({**hparams.to_dict(), "C": c, "gamma": gamma})
            model = FunctionalsSvm(fit_svm(x_train, y_train, hp, seed), hp.to_dict())
            score = f1_macro(y_val, model.predict_proba(x_val).argmax(1))
            rows.append({"C": float(hp.C), "gamma": str(hp.gamma), "val_f1_macro": float(score)})
            if best is None or score > best[0]:
                best = (score, model)
    logger.info("%s grid: %s", FAMILY, rows)
    model = best[1]
    model.history = {"grid": rows}
    return model


# --------------------------------------------------------------------------- storage (skops, no pickle)


def save_model(model: FunctionalsSvm, folder: str | Path) -> None:
    import skops.io as sio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sio.dump(model.pipeline, folder / "model.skops")
    meta = {"name": model.name, "family": model.family, "hparams": model.hparams, "history": model.history}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))


def load_model(folder: str | Path) -> FunctionalsSvm:
    """Load a stored model. A file holding a type skops does not trust by default and that is not in
    :data:`TRUSTED_TYPES`, or anything but a StandardScaler + SVC pipeline, is refused."""
    import skops.io as sio

    folder = Path(folder)
    path = folder / "model.skops"
    untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
    if untrusted:
        raise ValueError(f"{path}: refusing to load types outside the trusted list: {sorted(untrusted)}")
    pipeline = sio.load(path, trusted=sorted(set(sio.get_untrusted_types(file=path))))
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    steps = [type(s) for _, s in pipeline.steps] if isinstance(pipeline, Pipeline) else [type(pipeline)]
    if steps != [StandardScaler, SVC]:
        raise ValueError(f"{path}: holds {[t.__name__ for t in steps]}, not a StandardScaler + SVC pipeline")
    meta = json.loads((folder / "meta.json").read_text())
    return FunctionalsSvm(pipeline=pipeline, hparams=meta["hparams"], name=meta["name"], family=meta["family"],
                          history=meta.get("history", {}))


if __name__ == "__main__":  # the openSMILE worker process (see FunctionalsExtractor)
    import sys

    _opensmile_job(Path(sys.argv[1]))
