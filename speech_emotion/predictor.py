"""Audio in, emotions out: everything a trained run needs to label new speech.

A :class:`Predictor` holds the feature parameters, the scaler fitted on the
training split, the label set and the chosen model: one family, the
average-voting or GA-weighted ensemble (its members and weights), or the
stacking model. It decodes and featurises audio exactly as training did
(:mod:`speech_emotion.audio`, :mod:`speech_emotion.features`).

- :meth:`Predictor.predict_paths` labels files; a bad file gets its own row
  with the ingestion's rejection reason and every other file its result.
- :meth:`Predictor.predict_waveform` labels one signal.
- Clips longer than the training duration are scored over consecutive windows
  of that duration (the last one aligned with the end of the clip) and the
  probabilities averaged: nothing is cut silently. :meth:`Predictor.timeline`
  gives the per-window emotions.
- :meth:`Predictor.save` / :meth:`Predictor.load`: a folder of ``.keras``
  files, ``scaler.npz`` and ``manifest.json``; no ZenML or MLflow needed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from speech_emotion import storage
from speech_emotion.audio import AudioError, check_signal, decode_audio_bytes, resample, to_mono
from speech_emotion.corpora.common import RejectReason
from speech_emotion.features import FeatureParams, FeatureScaler, clip_features, feature_set_from_clips
from speech_emotion.models.trained import TrainedModel, load_trained, save_trained

logger = logging.getLogger(__name__)

__all__ = ["KINDS", "MANIFEST", "Predictor", "UNCERTAIN", "choose_model", "find_audio_files"]

MANIFEST = "manifest.json"
SCALER = "scaler.npz"
FORMAT_VERSION = 1
#: what a predictor is made of: one network, or an ensemble of several
KINDS = ("single", "average_voting", "ga_ensemble", "stacking")
#: the label when the top probability is below ``min_confidence``
UNCERTAIN = "uncertain"
#: training audio was wideband; narrower audio is predicted with a warning
WIDEBAND_HZ = 16000
#: files ``find_audio_files`` picks up in folders (what libsndfile reads)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif")
#: validation of decoded audio, as at ingestion (see IngestOptions)
DEFAULT_AUDIO_CHECKS = {"min_duration_s": 0.5, "silence_dbfs": -60.0}


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("speech-emotion", "keras", "tensorflow", "tensorflow-cpu", "librosa", "numpy", "scikit-learn",
                    "soundfile", "soxr"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def find_audio_files(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Files as given, and every audio file (by suffix) under the folders given, recursively, sorted.
    A folder or file may be an object-storage URL (``s3://bucket/clips/``); it stays a URL."""
    out: list[str] = []
    for p in paths:
        if storage.is_url(str(p)):
            if storage.is_dir(str(p)):
                out.extend(f.url for f in storage.list_remote_files(str(p))
                           if storage.name_path(f.url).suffix.lower() in AUDIO_SUFFIXES)
            else:
                out.append(str(p))
            continue
        p = Path(p)
        if p.is_dir():
            out.extend(str(f) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
        else:
            out.append(str(p))
    return out


def choose_model(comparison: pd.DataFrame, requested: str, available: Sequence[str]) -> tuple[str, str]:
    """The model to deploy and why, from the comparison table's validation rows.

    ``requested`` is ``best`` (best validation F1-macro; the scaling ablation's
    ``*_no_scaled`` rows are never deployed), or a model name among
    ``available`` (families, ``average_voting``, ``ga_ensemble``, ``stacking``).
    """
    val = comparison[(comparison["split"] == "val") & ~comparison["model"].str.endswith("_no_scaled")]
    val = val[val["model"].isin(available)].sort_values("f1_macro", ascending=False, kind="stable")
    if requested != "best":
        if requested not in available:
            raise ValueError(f"deploy.model {requested!r} was not trained in this run; trained: {sorted(available)}")
        row = val[val["model"] == requested]
        figure = f" (validation F1-macro {row.iloc[0]['f1_macro']:.4f})" if len(row) else ""
        return requested, f"deploy.model names {requested}{figure}"
    if not len(val):
        raise ValueError("no validation figures to choose a model from: the run needs a validation split")
    top = val.iloc[0]
    runner_up = (f"; next: {val.iloc[1]['model']} {val.iloc[1]['f1_macro']:.4f}" if len(val) > 1 else "")
    note = " (its validation figure is cross-fitted)" if top["model"] == "ga_ensemble" else ""
    return str(top["model"]), (f"best validation F1-macro {top['f1_macro']:.4f} among {len(val)} models, "
                               f"scaling-ablation rows excluded{note}{runner_up}")


def _classes(member) -> tuple[str, ...]:
    from speech_emotion.corpora.common import EMOTIONS

    return tuple(getattr(member, "classes", EMOTIONS))  # the baseline predicts EMOTIONS in order


def _load_member(folder: Path, entry: dict):
    if entry.get("kind", "keras") == "keras":
        return load_trained(str(folder), entry["file"])
    from speech_emotion.models.functionals_svm import load_model

    return load_model(folder / entry["file"])


def _windows(y: np.ndarray, n: int) -> list[tuple[int, np.ndarray]]:
    """Consecutive windows of ``n`` samples covering ``y``; the last one ends with the clip."""
    if y.shape[0] <= n:
        return [(0, y)]
    starts = list(range(0, y.shape[0] - n, n)) + [y.shape[0] - n]
    return [(s, y[s : s + n]) for s in starts]


@dataclass
class _Decoded:
    path: str
    y: np.ndarray | None = None  # mono at the feature rate
    duration_s: float | None = None
    error: str | None = None
    detail: str | None = None


@dataclass
class Predictor:
    """The chosen model with the features and scaler it was trained with."""

    #: Keras networks (:class:`TrainedModel`) and/or the classical baseline (``FunctionalsSvm``)
    members: list
    scaler: FeatureScaler
    feature_params: FeatureParams
    kind: str = "single"
    name: str = ""
    weights: list[float] | None = None
    classes: tuple[str, ...] = ()
    #: label clips whose top probability is below this as ``uncertain`` (0: off)
    min_confidence: float = 0.0
    audio_checks: dict = field(default_factory=lambda: dict(DEFAULT_AUDIO_CHECKS))
    #: provenance: training run, data fingerprint, why this model was chosen, ...
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown predictor kind {self.kind!r}; expected one of {KINDS}")
        if not self.members:
            raise ValueError("a predictor needs at least one model")
        if self.kind in ("average_voting", "ga_ensemble") and len(self.members) < 2:
            raise ValueError(f"a {self.kind} predictor needs at least two members")
        if self.weights is not None and len(self.weights) != len(self.members):
            raise ValueError(f"{len(self.weights)} weights for {len(self.members)} members")
        self.classes = tuple(self.classes or _classes(self.members[0]))
        for member in self.members:
            if _classes(member) != self.classes:
                raise ValueError(f"member {member.name} has classes {_classes(member)}, the predictor {self.classes}")
        self.name = self.name or (self.members[0].name if self.kind in ("single", "stacking") else self.kind)

    # ------------------------------------------------------------------ scoring

    @property
    def needs_audio(self) -> bool:
        """Whether a member reads the waveform itself (the functionals baseline), not only the features."""
        return any(not isinstance(m, TrainedModel) for m in self.members)

    def predict_features(self, features, waveforms: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """(N, C) probabilities for unscaled features (a FeatureSet from extraction); the functionals
        baseline also needs the N ``waveforms`` (mono, at the feature sample rate)."""
        if len(features) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        scaled = self.scaler.transform(features) if self.scaler.scalers else features
        functionals: dict[str, np.ndarray] = {}
        probs = []
        for m in self.members:
            if isinstance(m, TrainedModel):
                probs.append(m.predict_proba(scaled))
                continue
            if waveforms is None:
                raise ValueError(f"member {m.name} computes functionals from the audio: pass the waveforms")
            kind = m.hparams["features"]
            if kind not in functionals:
                from speech_emotion.models.functionals_svm import FunctionalsExtractor

                functionals[kind] = FunctionalsExtractor(kind, self.feature_params.sample_rate).signals(waveforms)
            probs.append(m.predict_proba(functionals[kind]))
        if len(probs) == 1:
            return probs[0]
        from speech_emotion.ensemble import average_probabilities

        return average_probabilities(probs, self.weights)

    def _label(self, p: np.ndarray) -> str:
        top = int(np.argmax(p))
        return UNCERTAIN if float(p[top]) < self.min_confidence else self.classes[top]

    def _decode(self, path: str, data: bytes | None = None) -> _Decoded:
        out = _Decoded(path=path)
        try:
            if data is None:
                data = storage.read_bytes(path)  # a local path or an object-storage URL
            y, info = decode_audio_bytes(data, path or None)
            check_signal(y, info.sample_rate, **self.audio_checks)
        except AudioError as err:
            out.error, out.detail = err.reason.value, err.detail
            return out
        except IsADirectoryError:
            out.error, out.detail = RejectReason.NOT_AUDIO.value, "is a folder, not an audio file"
            return out
        except OSError as err:
            out.error, out.detail = RejectReason.UNREADABLE_AUDIO.value, f"cannot read file: {err.strerror or err}"
            return out
        out.y = resample(to_mono(y), info.sample_rate, self.feature_params.sample_rate)
        out.duration_s = y.shape[0] / info.sample_rate
        if info.sample_rate < WIDEBAND_HZ:
            out.detail = (f"warning: recorded at {info.sample_rate} Hz, below the {WIDEBAND_HZ} Hz of the "
                          "training audio; the prediction is less reliable")
        return out

    def _score(self, decoded: list[_Decoded]) -> list[dict]:
        """One result row per decoded clip; the windows of all clips go through the models together."""
        n = self.feature_params.n_samples
        clips, waves, owner, starts = [], [], [], []
        for i, d in enumerate(decoded):
            if d.y is None:
                continue
            for start, window in _windows(d.y, n):
                clips.append(clip_features(window, self.feature_params))
                waves.append(window)
                owner.append(i)
                starts.append(start / self.feature_params.sample_rate)
        probs = (self.predict_features(feature_set_from_clips(clips, self.feature_params), waves if self.needs_audio
                                       else None) if clips else None)
        owner = np.asarray(owner, dtype=int)
        rows = []
        for i, d in enumerate(decoded):
            row = {"path": d.path, "emotion": None, **{c: None for c in self.classes},
                   "duration_s": d.duration_s, "windows": 0, "error": d.error, "error_detail": d.detail}
            if d.y is not None:
                mine = np.flatnonzero(owner == i)
                p = probs[mine].mean(axis=0)
                row.update({c: float(v) for c, v in zip(self.classes, p)})
                row["emotion"] = self._label(p)
                row["windows"] = int(len(mine))
                row["_window_probs"] = probs[mine]
                row["_window_starts"] = [starts[j] for j in mine]
            rows.append(row)
        return rows

    def columns(self) -> list[str]:
        return ["path", "emotion", *self.classes, "duration_s", "windows", "error", "error_detail"]

    def predict_paths(
        self, paths: Sequence[str | os.PathLike], batch_files: int = 32, progress: Callable[[int], None] | None = None
    ) -> pd.DataFrame:
        """A row per path: emotion, a probability per class, duration, windows, error and its detail."""
        rows = []
        for start in range(0, len(paths), batch_files):
            chunk = [str(p) for p in paths[start : start + batch_files]]
            rows.extend(self._score([self._decode(p) for p in chunk]))
            if progress is not None:
                progress(len(chunk))
        return self.to_table(rows)

    def predict_bytes(self, blobs: Sequence[bytes], names: Sequence[str] | None = None) -> pd.DataFrame:
        """Like :meth:`predict_paths` for audio files held in memory (uploads)."""
        names = list(names) if names is not None else [""] * len(blobs)
        return self.to_table(self._score([self._decode(name, data) for name, data in zip(names, blobs)]))

    def predict_items(self, items: Sequence[tuple[str, bytes | None]]) -> pd.DataFrame:
        """Files and uploads together, in one pass through the models: ``(path, None)`` reads the file,
        ``(name, data)`` decodes ``data``; a row per item, in order."""
        return self.to_table(self._score([self._decode(name, data) for name, data in items]))

    def predict_waveform(self, y: np.ndarray, sr: int) -> dict:
        """One signal (mono or (frames, channels)) at rate ``sr``: the row of :meth:`predict_paths`, as a dict."""
        y = np.asarray(y, dtype=np.float32)
        d = _Decoded(path="")
        try:
            check_signal(y, sr, **self.audio_checks)
            d.y = resample(to_mono(y), sr, self.feature_params.sample_rate)
            d.duration_s = y.shape[0] / sr
        except AudioError as err:
            d.error, d.detail = err.reason.value, err.detail
        return self.to_table(self._score([d])).iloc[0].to_dict()

    def timeline(self, path: str | os.PathLike) -> pd.DataFrame:
        """Per-window emotions of one (long) recording: start, end, emotion, probabilities."""
        d = self._decode(str(path))
        if d.y is None:
            raise AudioError(RejectReason(d.error), d.detail or "", path)
        row = self._score([d])[0]
        window = self.feature_params.duration_s
        out = pd.DataFrame(row["_window_probs"], columns=list(self.classes))
        out.insert(0, "emotion", [self._label(p) for p in row["_window_probs"]])
        out.insert(0, "end_s", [min(s + window, d.duration_s) for s in row["_window_starts"]])
        out.insert(0, "start_s", row["_window_starts"])
        return out

    def to_table(self, rows: list[dict]) -> pd.DataFrame:
        """Result rows as the prediction table: its columns in order, None where there is nothing to say."""
        table = pd.DataFrame(rows, columns=self.columns())
        table["windows"] = table["windows"].astype(int)
        for column in ("emotion", "error", "error_detail"):  # None, not NaN, where there is nothing to say
            table[column] = table[column].astype(object).where(table[column].notna(), None)
        return table

    # ------------------------------------------------------------------ folder

    def manifest(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "name": self.name,
            "classes": list(self.classes),
            "duration_s": self.feature_params.duration_s,
            "feature_params": self.feature_params.model_dump(),
            # informational: scaler.npz carries it, and that is what prediction applies
            "logmel_scaling": self.scaler.logmel_scaling if self.scaler.scalers else None,
            "members": [{"name": m.name, "family": m.family, "file": f"member_{i}",
                         "kind": "keras" if isinstance(m, TrainedModel) else "functionals_svm",
                         "weight": None if self.weights is None else float(self.weights[i])}
                        for i, m in enumerate(self.members)],
            "min_confidence": self.min_confidence,
            "audio_checks": self.audio_checks,
            "library_versions": _library_versions(),
            "info": self.info,
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """``manifest.json``, ``scaler.npz``, ``member_<i>.keras`` / ``.json`` for a network and a
        ``member_<i>/`` folder (skops, no pickle) for the functionals baseline, in ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for i, member in enumerate(self.members):
            if isinstance(member, TrainedModel):
                save_trained(member, str(folder), f"member_{i}")
            else:
                from speech_emotion.models.functionals_svm import save_model

                save_model(member, folder / f"member_{i}")
        (folder / SCALER).write_bytes(self.scaler.to_npz())
        (folder / MANIFEST).write_text(json.dumps(self.manifest(), indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Predictor":
        folder = Path(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{folder} is not a predictor folder: it has no {MANIFEST}")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT_VERSION:
            raise ValueError(f"{manifest_path}: predictor format {manifest.get('format')!r}, "
                             f"this version reads {FORMAT_VERSION}")
        members = [_load_member(folder, m) for m in manifest["members"]]
        weights = [m["weight"] for m in manifest["members"]]
        return cls(
            members=members,
            scaler=FeatureScaler.from_npz((folder / SCALER).read_bytes()),
            feature_params=FeatureParams(**manifest["feature_params"]),
            kind=manifest["kind"],
            name=manifest["name"],
            weights=None if any(w is None for w in weights) else weights,
            classes=tuple(manifest["classes"]),
            min_confidence=float(manifest.get("min_confidence", 0.0)),
            audio_checks=manifest.get("audio_checks", dict(DEFAULT_AUDIO_CHECKS)),
            info=manifest.get("info", {}),
        )

    def describe(self) -> str:
        """One line: which model, why, from which run."""
        members = ", ".join(m.name if self.weights is None else f"{m.name} {w:.3f}"
                            for m, w in zip(self.members, self.weights or [None] * len(self.members)))
        why = self.info.get("reason", "")
        run = self.info.get("training_run", "")
        return (f"{self.name} ({self.kind}: {members})" + (f"; chosen for: {why}" if why else "")
                + (f"; trained in run {run}" if run else ""))
