"""Acoustic features of the seed (section 3): MFCC, log-mel spectrogram, chromagram.

Per clip, resampled to 16 kHz and zero-padded (or cut) to a fixed duration:

- ``logmel``: the 2-D log-mel spectrogram, 128 mel bands x 251 frames for 8 s
  at 16 kHz with a 512-sample hop (the CNN2D inputs).
- ``mfcc`` (40), ``chroma`` (12), ``mel`` (128): time-averaged vectors over the
  frames that hold the clip itself, not the padding (the 1-D inputs; the seed's
  "all" input is their concatenation, 180 values, as in the Kaggle SER notebooks
  it builds on).

One STFT per clip serves all of them. librosa's centred STFT pads with zeros,
so the first frames of the padded clip's STFT are exactly the frames of the
unpadded clip: every feature here equals what the corresponding
``librosa.feature`` call gives on the clip (see tests/test_features.py), at a
fraction of the cost of the seed's one-call-per-feature loop (bench/).

Each clip also records ``n_frames``, the number of its log-mel frames that hold
the clip rather than the padding (what band-wise scaling and masking need).

Extraction is cached per clip in a folder of ``.npz`` files keyed by the clip's
content hash, the feature parameters and the feature code, so adding audio files
only computes features for the new ones. Clips and the cache folder may be local
or on object storage (``s3://...``, :mod:`speech_emotion.storage`).

Every function that builds a :class:`FeatureSet` (extraction, scaling, ``subset``,
``concatenate``) takes an optional ``folder``: given one, each array is a ``.npy``
memory map created there with ``numpy.lib.format.open_memmap`` and filled a clip or a
chunk at a time, so no step holds a whole split in RAM; the pipeline gives the
artifact's own folder (``materializers/feature_set.py``). Without one the arrays are
in memory, with identical values.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from speech_emotion import numba_cache, storage
from speech_emotion.audio import load_audio
from speech_emotion.provenance import feature_code_fingerprint

logger = logging.getLogger(__name__)

FEATURE_KINDS: tuple[str, ...] = ("mfcc", "chroma", "mel", "logmel")


class FeatureParams(BaseModel):
    """Parameters of feature extraction (the seed's values by default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate: int = 16000
    duration_s: float = 8.0
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    n_mfcc: int = 40
    n_chroma: int = 12
    top_db: float = 80.0
    #: estimate tuning for the chromagram as librosa.feature.chroma_stft does
    chroma_tuning: bool = True

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.duration_s))

    @property
    def n_frames(self) -> int:
        return 1 + self.n_samples // self.hop_length

    def key(self) -> str:
        """A short digest of the parameters, part of every cache key."""
        blob = json.dumps(self.model_dump(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]


def auto_duration(durations_s, percentile: float = 100.0, max_duration_s: float = 8.0, sample_rate: int = 16000,
                  hop_length: int = 512) -> float:
    """The clip length of ``features.duration_s: auto``: the ``percentile`` of ``durations_s`` (the
    training clips'), at most ``max_duration_s``, rounded up to a whole number of hops so that the
    last frame is not half padding. Clips shorter than it are padded, longer ones cut."""
    d = np.asarray(durations_s, dtype=np.float64)
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        raise ValueError("features.duration_s 'auto' needs the training clips' durations; the training split has none")
    seconds = min(float(np.percentile(d, percentile)), float(max_duration_s))
    hops = int(np.ceil(seconds * sample_rate / hop_length - 1e-9))
    return max(1, hops) * hop_length / sample_rate


@dataclass
class ClipFeatures:
    mfcc: np.ndarray  # (n_mfcc,)
    chroma: np.ndarray  # (n_chroma,)
    mel: np.ndarray  # (n_mels,) mean log-mel (dB) over the clip's frames
    logmel: np.ndarray  # (n_mels, n_frames) dB, ref = clip max
    n_frames: int = 0  # log-mel frames that hold the clip (the rest is padding)


#: an augmented copy's utterance id is its clip's path + this + the copy number (speech_emotion.augmentation)
AUGMENTED_MARK = "#aug"


@dataclass
class FeatureSet:
    """Features of a set of utterances, row-aligned with ``utterance_ids``.

    Arrays may be memory-mapped (read-only) when loaded by the materializer.
    """

    utterance_ids: np.ndarray  # (N,) str: the utterance's path
    labels: np.ndarray  # (N,) int: index into EMOTIONS
    corpus: np.ndarray  # (N,) str: origin of each utterance
    mfcc: np.ndarray  # (N, n_mfcc) float32
    chroma: np.ndarray  # (N, n_chroma) float32
    mel: np.ndarray  # (N, n_mels) float32
    logmel: np.ndarray  # (N, n_mels, n_frames) float32
    params: dict = field(default_factory=dict)
    scaled: bool = False
    #: (N,) int: log-mel frames of each clip that are not padding; None: every frame
    n_frames: np.ndarray | None = None

    ARRAYS = ("utterance_ids", "labels", "corpus", "mfcc", "chroma", "mel", "logmel", "n_frames")

    def __post_init__(self) -> None:
        if self.n_frames is None:
            self.n_frames = np.full(len(self.labels), self.logmel.shape[-1] if self.logmel.ndim == 3 else 0, np.int64)
        elif len(self.n_frames) != len(self.labels):
            raise ValueError(f"n_frames has {len(self.n_frames)} entries for {len(self.labels)} utterances")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.ARRAYS}

    def input(self, name: str) -> np.ndarray:
        """A model input by name: a feature kind or a '+'-joined 1-D combination.

        ``"mfcc"``, ``"logmel"``, ``"mfcc+chroma"`` (the seed's ``no_mel``),
        ``"mfcc+chroma+mel"`` (the seed's ``all``).
        """
        parts = name.split("+")
        for part in parts:
            if part not in FEATURE_KINDS:
                raise KeyError(f"unknown feature {part!r} in input {name!r}; known: {FEATURE_KINDS}")
        if len(parts) == 1:
            return getattr(self, parts[0])
        if "logmel" in parts:
            raise KeyError("logmel is 2-D and cannot be concatenated with 1-D features")
        return np.concatenate([np.asarray(getattr(self, p)) for p in parts], axis=1)

    def subset(self, index: np.ndarray, folder: str | Path | None = None) -> "FeatureSet":
        """The rows ``index``, in that order; in ``folder``'s memory maps when given."""
        index = np.asarray(index)
        index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64)
        out = {}
        for name, arr in self.arrays().items():
            out[name] = allocate(folder, name, (len(index), *arr.shape[1:]), arr.dtype)
            copy_rows(out[name], 0, arr, index)
        return FeatureSet(**out, params=dict(self.params), scaled=self.scaled)

    def originals(self) -> "FeatureSet":
        """The rows of the clips themselves, without augmented copies (ids ending ``#aug<copy>``)."""
        copies = np.char.find(np.asarray(self.utterance_ids, dtype=str), AUGMENTED_MARK) >= 0
        if not copies.any():
            return self
        keep = np.flatnonzero(~copies)
        if len(keep) and keep[-1] == len(keep) - 1:  # the originals first, as augmentation leaves them: views
            return FeatureSet(**{name: arr[: len(keep)] for name, arr in self.arrays().items()},
                              params=dict(self.params), scaled=self.scaled)
        return self.subset(keep)

    @classmethod
    def concatenate(cls, parts: Sequence["FeatureSet"], folder: str | Path | None = None) -> "FeatureSet":
        """The rows of ``parts``, in order (same parameters and scaling); in ``folder``'s memory maps when given."""
        n = sum(len(p) for p in parts)
        out = {}
        for name in cls.ARRAYS:
            arrs = [getattr(p, name) for p in parts]
            dtype = np.result_type(*arrs) if arrs[0].dtype.kind == "U" else arrs[0].dtype
            out[name] = allocate(folder, name, (n, *arrs[0].shape[1:]), dtype)
            start = 0
            for arr in arrs:
                copy_rows(out[name], start, arr)
                start += len(arr)
        return cls(**out, params=dict(parts[0].params), scaled=parts[0].scaled)


#: rows copied at a time between memory maps (a 4.29 s log-mel row is 70 KB: 256 rows are 18 MB)
ROW_CHUNK = 256


def allocate(folder: str | Path | None, name: str, shape: tuple, dtype) -> np.ndarray:
    """A zeroed array: in memory, or the memory map ``folder/<name>.npy`` (created; ``open_memmap``)."""
    if folder is None:
        return np.zeros(shape, dtype)
    from numpy.lib.format import open_memmap

    return open_memmap(os.path.join(folder, f"{name}.npy"), mode="w+", dtype=dtype, shape=shape)


def copy_rows(out: np.ndarray, start: int, source: np.ndarray, index: np.ndarray | None = None) -> None:
    """``out[start:start + k] = source[index]`` (all of ``source`` without ``index``), ``ROW_CHUNK`` rows at a
    time, so a memory map is read and written a chunk at a time and never copied whole."""
    k = len(source) if index is None else len(index)
    for i in range(0, k, ROW_CHUNK):
        rows = slice(i, min(i + ROW_CHUNK, k))
        out[start + rows.start : start + rows.stop] = source[rows] if index is None else source[index[rows]]


def _fixed_length(y: np.ndarray, n: int) -> np.ndarray:
    if y.shape[0] >= n:
        return y[:n]
    return np.pad(y, (0, n - y.shape[0]))


@functools.lru_cache(maxsize=8)
def _mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    librosa = numba_cache.librosa()

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)


@functools.lru_cache(maxsize=256)
def _chroma_filterbank(sr: int, n_fft: int, n_chroma: int, tuning: float) -> np.ndarray:
    """``librosa.filters.chroma``, one per tuning (librosa's estimate is a multiple of 0.01 semitone)."""
    return numba_cache.librosa().filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma)


def estimate_tuning(power: np.ndarray, sr: int, n_fft: int, bins_per_octave: int = 12, fmin: float = 150.0,
                    fmax: float = 4000.0, threshold: float = 0.1, resolution: float = 0.01) -> float:
    """``librosa.estimate_tuning(S=power, sr=sr, n_fft=n_fft, bins_per_octave=...)``, exactly, at a third of its cost.

    librosa's ``piptrack`` interpolates, thresholds and peak-picks every one of the spectrogram's bins
    and fills two full-size arrays, then keeps the peaks between ``fmin`` and ``fmax`` (150-4000 Hz, half
    the bins at 16 kHz): here the same operations, in the same float32/float64 types as its numba kernel,
    run on those bins and their two neighbours only, and only the peaks are kept. It was most of the
    chromagram's cost and the seed's loop pays it too (BENCHMARKS.md, "Feature extraction"); the
    pitches, magnitudes and tuning are checked bit-equal to librosa's in tests/test_features.py."""
    librosa = numba_cache.librosa()

    S = np.abs(power)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    inside = np.flatnonzero((max(fmin, 0.0) <= freqs) & (freqs < min(fmax, sr / 2)))
    if S.ndim != 2 or inside.size == 0 or inside[0] == 0 or inside[-1] + 1 >= S.shape[0]:
        # no interior band (librosa pads the edge bins its own way): librosa itself
        return float(librosa.estimate_tuning(S=power, sr=sr, n_fft=n_fft, bins_per_octave=bins_per_octave,
                                             fmin=fmin, fmax=fmax, threshold=threshold, resolution=resolution))
    lo, hi = int(inside[0]), int(inside[-1]) + 1
    floor = threshold * S.max(axis=0)  # piptrack's ref: over every bin, not only the band
    below, at, above = S[lo - 1 : hi - 1], S[lo:hi], S[lo + 1 : hi + 1]
    kept = [x * (x > floor) for x in (below, at, above)]
    rows, cols = np.nonzero((kept[1] > kept[0]) & (kept[1] >= kept[2]))  # util.localmax along frequency
    x_below, x_at, x_above = below[rows, cols], at[rows, cols], above[rows, cols]
    # librosa's _pi_stencil under numba: float32 sums promoted to float64 by the integer constants
    a = (x_above + x_below).astype(np.float64) - 2 * x_at.astype(np.float64)
    diff = x_above - x_below
    b = diff.astype(np.float64) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a).astype(S.dtype)
    mags = x_at + 0.5 * (diff / 2.0) * shift  # S + dskew, with np.gradient's central difference
    pitches = (((rows + lo) + shift) * float(sr) / n_fft).astype(S.dtype)
    voiced = pitches > 0
    limit = np.median(mags[voiced]) if voiced.any() else 0.0
    return float(librosa.pitch_tuning(pitches[(mags >= limit) & voiced], resolution=resolution,
                                      bins_per_octave=bins_per_octave))


def clip_features(y: np.ndarray, params: FeatureParams = FeatureParams()) -> ClipFeatures:
    """All features of one mono clip already at ``params.sample_rate``.

    Only the STFT frames that reach the clip are computed: every later frame of the padded
    clip's centred STFT starts ``n_fft // 2`` or more past the clip's end, covers only zeros and
    has a power of exactly 0, so the log-mel's padding frames are ``power_to_db``'s floor."""
    librosa = numba_cache.librosa()

    sr, hop, n_fft = params.sample_rate, params.hop_length, params.n_fft
    y = np.asarray(y, dtype=np.float32)[: params.n_samples]
    n_valid_frames = 1 + y.shape[0] // hop
    reach = min(params.n_samples, max(n_fft, y.shape[0] + n_fft // 2 + hop))
    spec = librosa.stft(_fixed_length(y, reach), n_fft=n_fft, hop_length=hop)
    k = min(spec.shape[1], params.n_frames)
    power = np.abs(spec[:, :k]) ** 2  # as librosa's own power spectrogram
    mel_power = _mel_filterbank(sr, n_fft, params.n_mels) @ power  # (n_mels, k)

    # the padded clip's log-mel (ref: its maximum): one zero column gives the padding frames' value
    silent = int(k < params.n_frames)
    db = librosa.power_to_db(np.pad(mel_power, ((0, 0), (0, silent))), ref=np.max, top_db=params.top_db)
    logmel = np.empty((params.n_mels, params.n_frames), np.float32)
    logmel[:, :k] = db[:, :k]
    logmel[:, k:] = db[:, k:]

    clip_mel_db = librosa.power_to_db(mel_power[:, :n_valid_frames], top_db=params.top_db)
    mfcc = librosa.feature.mfcc(S=clip_mel_db, n_mfcc=params.n_mfcc)
    clip_power = power[:, :n_valid_frames]
    # librosa.feature.chroma_stft(S=clip_power, ...), its filter bank cached per tuning
    tuning = estimate_tuning(clip_power, sr, n_fft, params.n_chroma) if params.chroma_tuning else 0.0
    chroma = librosa.util.normalize(_chroma_filterbank(sr, n_fft, params.n_chroma, float(tuning)) @ clip_power,
                                    norm=np.inf, axis=-2)
    return ClipFeatures(
        mfcc=mfcc.mean(axis=1).astype(np.float32),
        chroma=chroma.mean(axis=1).astype(np.float32),
        mel=clip_mel_db.mean(axis=1).astype(np.float32),
        logmel=logmel,
        n_frames=int(min(n_valid_frames, params.n_frames)),
    )


class FeatureCache:
    """One ``.npz`` per (clip content, feature parameters, feature code) in a folder.

    Entries live under ``<root>/<parameters' key>-<feature code's key>``: an edit to the
    feature or audio code, or another librosa/numpy/soxr version, starts a fresh folder
    instead of serving features the current code would not compute
    (:func:`speech_emotion.provenance.feature_code_fingerprint`).

    ``root`` may be an object-storage URL (``s3://bucket/cache/features``): entries are then
    read concurrently, a batch at a time (:meth:`get_many`), and written in one request each
    (an object store's PUT is atomic), so pods on a cluster share one cache without a shared disk.
    """

    def __init__(self, root: str | Path, params: FeatureParams):
        folder = f"{params.key()}-{feature_code_fingerprint()[:12]}"
        self.remote = storage.is_url(str(root))
        #: False once a write failed for want of space or permission: extraction goes on uncached
        self.writable = True
        if self.remote:
            self.root: str | Path = storage.join(str(root), folder)
        else:
            self.root = Path(root) / folder
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self._stop_writing(exc)

    def _path(self, content_hash: str) -> str | Path:
        if self.remote:
            return storage.join(self.root, content_hash[:2], f"{content_hash}.npz")
        return self.root / content_hash[:2] / f"{content_hash}.npz"

    @staticmethod
    def _decode(path, source) -> ClipFeatures | None:
        try:
            with np.load(source) as data:
                if "n_frames" not in data.files:  # written before n_frames was kept: compute it again
                    return None
                return ClipFeatures(**{k: data[k] for k in ("mfcc", "chroma", "mel", "logmel")},
                                    n_frames=int(data["n_frames"]))
        except Exception as exc:  # a torn write from an interrupted run
            logger.warning("ignoring unreadable feature cache entry %s: %s", path, exc)
            return None

    def get(self, content_hash: str) -> ClipFeatures | None:
        return self.get_many([content_hash])[0]

    def get_many(self, content_hashes: Sequence[str], batch: int = 128) -> list[ClipFeatures | None]:
        """The cached features of each clip, ``None`` where there are none."""
        if not self.remote:
            out = []
            for h in content_hashes:
                path = self._path(h)
                out.append(self._decode(path, path) if path.exists() else None)
            return out
        import io

        out = []
        for start in range(0, len(content_hashes), batch):
            paths = [self._path(h) for h in content_hashes[start : start + batch]]
            for path, data in zip(paths, storage.read_many(paths)):
                if isinstance(data, FileNotFoundError):
                    out.append(None)
                elif isinstance(data, Exception):
                    logger.warning("cannot read feature cache entry %s: %s", path, data)
                    out.append(None)
                else:
                    out.append(self._decode(path, io.BytesIO(data)))
        return out

    def put(self, content_hash: str, feats: ClipFeatures) -> None:
        """Store one clip's features; on a read-only or full cache, warn once and stop caching."""
        if not self.writable:
            return
        path = self._path(content_hash)
        if self.remote:
            import io

            buf = io.BytesIO()
            np.savez(buf, **asdict(feats))
            storage.write_bytes(path, buf.getvalue())
            return
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(tmp, **asdict(feats))
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)  # no torn file left behind on a full disk
            self._stop_writing(exc)

    def _stop_writing(self, exc: OSError) -> None:
        from speech_emotion.disks import reason

        if reason(exc) is None:
            raise exc
        self.writable = False
        logger.warning("feature cache %s %s (%s): extraction goes on without caching; free space there, make it "
                       "writable, or set features.cache_dir to another folder (null: no cache)",
                       self.root, reason(exc), exc.filename or exc)


def one_blas_thread():
    """A context in which BLAS (the filter-bank products) runs on one thread: where features are extracted.

    The extraction workers (:func:`_worker_init`) and ``extract_features``' own loop both compute on one
    BLAS thread, so a clip's features do not depend on ``features.workers`` (a matrix product's rounding
    depends on its thread count), and ``workers`` processes do not each start a BLAS thread per core:
    OpenBLAS's waiting threads spin, and 2 workers on 2 cores were 1.7x slower per clip (BENCHMARKS.md,
    "Feature extraction"). The limit is process-wide; enter it from the main thread only (OpenBLAS
    ignores it from others)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


@dataclass
class _Sink:
    """Where a freshly extracted clip goes: the cache, and the output arrays. Each extraction worker has its
    own, on the same memory maps (opened again there) and cache folder, so a clip's 128 KB log-mel is
    written where it is computed instead of being pickled back to one process that writes every clip
    (that process's cache writes alone cost 0.7 ms a clip, against about 3.5 ms to extract one)."""

    out: dict[str, np.ndarray] | None  # None: the features go back to the caller (in-memory arrays)
    cache: FeatureCache | None

    def take(self, i: int, content_hash: str | None, feats: ClipFeatures) -> ClipFeatures | None:
        if self.cache is not None and content_hash is not None:
            self.cache.put(content_hash, feats)
        if self.out is None:
            return feats
        _store(self.out, i, feats)
        return None


_worker_sink: _Sink | None = None


def _worker_init(numba_cache_dir: str, folder: str | None, cache_dir: str | Path | None, params: FeatureParams) -> None:
    """An extraction worker: librosa's numba kernels from its parent's cache (``numba_cache_dir``, see
    :func:`speech_emotion.numba_cache.use_cache_dir`), one BLAS thread for its whole life (see
    :func:`one_blas_thread`), and its sink: ``folder``'s memory maps opened for writing, and the feature cache."""
    global _worker_sink
    from threadpoolctl import threadpool_limits

    numba_cache.use_cache_dir(numba_cache_dir)

    threadpool_limits(limits=1, user_api="blas")
    out = None if folder is None else {name: np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r+")
                                       for name in _clip_arrays(params)}
    _worker_sink = _Sink(out, FeatureCache(cache_dir, params) if cache_dir is not None else None)


def _extract_one(args: tuple) -> ClipFeatures:
    """The features of one clip; with an augmenter (:class:`speech_emotion.augmentation.Augmenter`),
    of its augmented copy, drawn from a generator seeded by ``clip_key``."""
    path, params, augmenter, clip_key = args
    y = load_audio(path, target_sr=params.sample_rate)
    if augmenter is None:
        return clip_features(y, params)
    rng = augmenter.rng(clip_key)
    feats = clip_features(augmenter.waveform(y, params.sample_rate, rng), params)
    feats.logmel = augmenter.spectrogram(feats.logmel, feats.n_frames, -params.top_db, rng)
    return feats


def _extract_in_worker(job: tuple) -> tuple[int, ClipFeatures | None]:
    i, content_hash, args = job
    return i, _worker_sink.take(i, content_hash, _extract_one(args))


#: Fewer clips to extract than this per worker, and extraction runs in this process instead: each spawned
#: worker is a fresh interpreter that imports the caller's main module (the ``zenml`` CLI in a pipeline),
#: numpy and librosa before its first clip, about 2.5 s on 2 cores, in which one process extracts some
#: 500 clips of 2-3 s (BENCHMARKS.md, "The cold demo")
MIN_CLIPS_PER_WORKER = 500


def extract_features(
    paths: Sequence[str],
    labels: Sequence[int],
    corpus: Sequence[str],
    content_hashes: Sequence[str] | None = None,
    params: FeatureParams = FeatureParams(),
    cache_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
    augmenter=None,
    folder: str | Path | None = None,
    min_clips_per_worker: int = MIN_CLIPS_PER_WORKER,
) -> FeatureSet:
    """Extract the features of every path (in order), using the cache when given; with ``augmenter``, of
    each clip's augmented copy (the caller gives ``content_hashes`` that tell copies from originals).
    With ``folder``, each clip's features go straight into memory maps there (:func:`allocate`), written
    by the worker that extracted it. ``workers`` processes at most, and only as many as have
    ``min_clips_per_worker`` clips to extract each (one: this process)."""
    from tqdm.auto import tqdm

    n = len(paths)
    out = _empty_arrays(n, params, folder)
    cache = FeatureCache(cache_dir, params) if cache_dir is not None else None
    todo: list[int] = []
    hits = cache.get_many(content_hashes) if cache and content_hashes is not None else [None] * n
    for i, hit in enumerate(hits):
        if hit is None:
            todo.append(i)
        else:
            _store(out, i, hit)
    if n:
        logger.info("features: %d clips, %d from cache, %d to extract", n, n - len(todo), len(todo))

    hashes = content_hashes if content_hashes is not None and cache is not None else [None] * n
    jobs = [(i, hashes[i], (paths[i], params, augmenter, content_hashes[i] if content_hashes is not None else paths[i]))
            for i in todo]
    started = time.perf_counter()
    per_worker = max(min_clips_per_worker, 1)
    capped = max(1, min(workers, len(todo) // per_worker))
    if todo and capped < workers:
        logger.info("features: %d process(es) instead of the %d workers asked for: %d clips to extract, "
                    "a worker is started per %d", capped, workers, len(todo), per_worker)
    workers = capped
    with contextlib.ExitStack() as stack:  # the pool (or the BLAS limit) ends with the loop, not at GC
        if workers > 1:
            for arr in out.values():  # the workers open the files again: what is already stored goes first
                if isinstance(arr, np.memmap):
                    arr.flush()
            # spawn, not fork: a forked child of a process that has loaded TensorFlow or ZenML's threads
            # can crash on its first call (seen as "process pool terminated abruptly" in `make demo`)
            pool = stack.enter_context(ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                initargs=(numba_cache.cache_dir(), None if folder is None else str(folder),
                          cache_dir if cache is not None else None, params)))
            results = pool.map(_extract_in_worker, jobs, chunksize=8)
        else:
            stack.enter_context(one_blas_thread())
            sink = _Sink(out if folder is not None else None, cache)
            results = ((i, sink.take(i, h, _extract_one(args))) for i, h, args in jobs)
        for i, feats in tqdm(results, total=len(todo), desc="features", unit="clip", disable=not progress):
            if feats is not None:  # not yet stored where it was extracted
                _store(out, i, feats)
    if todo:
        seconds = time.perf_counter() - started
        logger.info("features: extracted %d clips in %.1f s (%.1f clips/s, %d workers)",
                    len(todo), seconds, len(todo) / max(seconds, 1e-9), workers)

    n_frames = out.pop("n_frames")
    return FeatureSet(
        n_frames=n_frames,
        utterance_ids=_filled(folder, "utterance_ids", np.asarray(paths, dtype=str)),
        labels=_filled(folder, "labels", np.asarray(labels, dtype=np.int64)),
        corpus=_filled(folder, "corpus", np.asarray(corpus, dtype=str)),
        params=params.model_dump(),
        **out,
    )


def _filled(folder: str | Path | None, name: str, values: np.ndarray) -> np.ndarray:
    """``values`` (small: one entry per clip), as ``folder``'s memory map ``<name>.npy`` when given."""
    if folder is None:
        return values
    out = allocate(folder, name, values.shape, values.dtype)
    out[...] = values
    return out


def _clip_arrays(params: FeatureParams) -> dict[str, tuple[tuple[int, ...], type]]:
    """The arrays one clip fills: name -> (shape of one clip's row, dtype)."""
    return {"mfcc": ((params.n_mfcc,), np.float32), "chroma": ((params.n_chroma,), np.float32),
            "mel": ((params.n_mels,), np.float32), "logmel": ((params.n_mels, params.n_frames), np.float32),
            "n_frames": ((), np.int64)}


def _empty_arrays(n: int, params: FeatureParams, folder: str | Path | None = None) -> dict[str, np.ndarray]:
    return {name: allocate(folder, name, (n, *shape), dtype) for name, (shape, dtype) in _clip_arrays(params).items()}


def _store(out: dict[str, np.ndarray], i: int, feats: ClipFeatures) -> None:
    for name in out:
        out[name][i] = getattr(feats, name)


def feature_set_from_clips(clips: Sequence[ClipFeatures], params: FeatureParams, ids: Sequence[str] | None = None) -> FeatureSet:
    """Unlabelled features of clips computed one by one (prediction), in the layout of training."""
    n = len(clips)
    out = _empty_arrays(n, params)
    for i, feats in enumerate(clips):
        _store(out, i, feats)
    n_frames = out.pop("n_frames")
    return FeatureSet(
        n_frames=n_frames,
        utterance_ids=np.asarray(ids if ids is not None else [""] * n, dtype=str),
        labels=np.full(n, -1, np.int64),
        corpus=np.full(n, "", dtype=str),
        params=params.model_dump(),
        **out,
    )


# --------------------------------------------------------------------------- scaling

#: how the 2-D log-mel is standardised (``features.logmel_scaling``)
LOGMEL_SCALINGS: tuple[str, ...] = ("element", "band")
#: default floor on the log-mel's standard deviations, as a fraction of its pooled standard deviation
LOGMEL_STD_FLOOR = 0.5
_META = "meta"


def _valid_frames(chunk: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
    """(sum of n_frames, n_mels): the non-padding frames of a (B, n_mels, T) log-mel chunk, one row each."""
    frames = np.arange(chunk.shape[-1])[None, :] < np.asarray(n_frames)[:, None]  # (B, T)
    return np.transpose(chunk, (0, 2, 1))[frames]


@dataclass
class FeatureScaler:
    """Standard scaling fitted on the training split only (seed section 3.1).

    One ``sklearn.preprocessing.StandardScaler`` per feature kind. The 2-D
    log-mel is standardised per ``logmel_scaling``:

    - ``element`` (the seed's): each (band, frame) value is a feature of its own, as
      the seed's scaler on flattened inputs did. The late frames that only a few long
      clips reach have tiny standard deviations there, which blew their values up to
      z-scores above 40: a standard deviation below ``std_floor`` times the log-mel's
      pooled one is raised to it.
    - ``band``: one mean and standard deviation per mel band, over every frame that
      holds a clip (``FeatureSet.n_frames``), not the padding; every frame, padding
      included, is then scaled with its band's statistics (padding stays a constant
      floor the models can tell from speech). The same floor applies.

    The floored statistics are the fitted scaler's own (``scale_``), so a saved
    scaler (``.npz``) and the predictor scale exactly as training did.

    ``zero_padding``: after scaling, the log-mel frames past each clip's ``n_frames``
    are set to exactly 0, which is how the 2-D families find the padding to mask
    (:mod:`speech_emotion.models.masking`); off (the seed's), the padding is scaled like
    the rest and no frame is masked.
    """

    scalers: dict = field(default_factory=dict)
    logmel_scaling: str = "element"
    zero_padding: bool = False

    def __post_init__(self) -> None:
        if self.logmel_scaling not in LOGMEL_SCALINGS:
            raise ValueError(f"logmel_scaling {self.logmel_scaling!r}: expected one of {LOGMEL_SCALINGS}")

    @classmethod
    def fit(cls, features: FeatureSet, batch: int = 512, logmel_scaling: str = "element",
            std_floor: float = LOGMEL_STD_FLOOR, zero_padding: bool = False) -> "FeatureScaler":
        from sklearn.preprocessing import StandardScaler

        out = cls(logmel_scaling=logmel_scaling, zero_padding=zero_padding)
        for kind in FEATURE_KINDS:
            arr = getattr(features, kind)
            scaler = StandardScaler()
            for start in range(0, len(features), batch):
                chunk = np.asarray(arr[start : start + batch], dtype=np.float64)
                if kind == "logmel" and logmel_scaling == "band":
                    rows = _valid_frames(chunk, features.n_frames[start : start + batch])
                    if len(rows):
                        scaler.partial_fit(rows)
                else:
                    scaler.partial_fit(chunk.reshape(chunk.shape[0], -1))
            if kind == "logmel" and hasattr(scaler, "mean_"):
                _floor_std(scaler, std_floor)
            out.scalers[kind] = scaler
        return out

    _FIELDS = ("mean_", "var_", "scale_", "n_samples_seen_")

    def to_npz(self) -> bytes:
        """Each fitted StandardScaler's statistics as ``.npz`` bytes (no pickle), and the log-mel scaling."""
        import io

        arrays = {f"{kind}.{name}": np.asarray(getattr(scaler, name))
                  for kind, scaler in self.scalers.items() for name in self._FIELDS}
        arrays[f"{_META}.logmel_scaling"] = np.asarray(self.logmel_scaling)
        arrays[f"{_META}.zero_padding"] = np.asarray(self.zero_padding)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_npz(cls, blob: bytes) -> "FeatureScaler":
        """A scaler saved by :meth:`to_npz`; one saved before ``logmel_scaling`` existed is ``element``,
        one saved before ``zero_padding`` existed leaves the padding as scaled."""
        import io

        from sklearn.preprocessing import StandardScaler

        data = np.load(io.BytesIO(blob), allow_pickle=False)
        scalers = {}
        for kind in sorted({key.split(".", 1)[0] for key in data.files} - {_META}):
            scaler = StandardScaler()
            for name in cls._FIELDS:
                value = data[f"{kind}.{name}"]
                setattr(scaler, name, value if value.ndim else value.item())
            scaler.n_features_in_ = scaler.mean_.shape[0]
            scalers[kind] = scaler
        mode = str(data[f"{_META}.logmel_scaling"]) if f"{_META}.logmel_scaling" in data.files else "element"
        zero = bool(data[f"{_META}.zero_padding"]) if f"{_META}.zero_padding" in data.files else False
        return cls(scalers, logmel_scaling=mode, zero_padding=zero)

    def _transform_chunk(self, kind: str, chunk: np.ndarray) -> np.ndarray:
        scaler = self.scalers[kind]
        if kind == "logmel" and self.logmel_scaling == "band":
            b, m, t = chunk.shape
            rows = np.transpose(chunk, (0, 2, 1)).reshape(b * t, m)
            return np.transpose(scaler.transform(rows).reshape(b, t, m), (0, 2, 1))
        return scaler.transform(chunk.reshape(chunk.shape[0], -1)).reshape(chunk.shape)

    def transform(self, features: FeatureSet, batch: int = 512, folder: str | Path | None = None) -> FeatureSet:
        """``features`` scaled, ``batch`` rows at a time; in ``folder``'s memory maps when given."""
        scaled = {}
        for kind in FEATURE_KINDS:
            arr = getattr(features, kind)
            out = allocate(folder, kind, arr.shape, np.float32)
            for start in range(0, len(features), batch):
                chunk = self._transform_chunk(kind, np.asarray(arr[start : start + batch]))
                if kind == "logmel" and self.zero_padding and chunk.ndim == 3:
                    n_frames = np.asarray(features.n_frames[start : start + batch])
                    chunk *= (np.arange(chunk.shape[2])[None, :] < n_frames[:, None])[:, None, :]  # padding -> 0
                out[start : start + batch] = chunk
            scaled[kind] = out
        return FeatureSet(
            **{name: _filled(folder, name, np.asarray(getattr(features, name)))
               for name in ("utterance_ids", "labels", "corpus", "n_frames")},
            params=dict(features.params),
            scaled=True,
            **scaled,
        )


def _floor_std(scaler, fraction: float) -> None:
    """Raise the fitted standard deviations below ``fraction`` of the pooled one (law of total variance
    over the scaler's features) to that floor; zero-variance features get it too."""
    if fraction <= 0:
        return
    pooled = float(np.sqrt(np.mean(scaler.var_) + np.var(scaler.mean_)))
    if pooled > 0:
        scaler.scale_ = np.maximum(np.sqrt(scaler.var_), fraction * pooled)
