"""Audio decoding, validation, down-mixing and resampling.

Everything the rest of the project needs to turn a file into a mono float32
signal at :data:`TARGET_SR`, and to explain precisely why a file cannot be
used. No ZenML or TensorFlow imports: this module is used by the CLI and by
every step.

Decoding uses :mod:`soundfile` (libsndfile): WAV PCM 8/16/24/32-bit and
float 32/64, any channel count, any sample rate (plus the other formats
libsndfile knows). Samples are returned as float32 in ``[-1, 1]``.

Failure modes, each raised as :class:`AudioError` with a
:class:`~speech_emotion.corpora.common.RejectReason`:

* ``GIT_LFS_POINTER``: the file is a Git LFS pointer stub (a small text file
  beginning ``version https://git-lfs.github.com/spec/``), as found in copies
  of CREMA-D cloned without ``git lfs``.
* ``NOT_AUDIO``: libsndfile does not recognise the file and it does not start
  with the magic bytes of any audio container (a text file or a JPEG renamed
  ``.wav``).
* ``TRUNCATED_AUDIO``: a RIFF/WAVE file whose ``data`` chunk is cut short
  (the header declares more whole frames than the file holds), or whose
  header ends before the ``data`` chunk (when libsndfile cannot open it
  either). libsndfile silently reads what is there, so this module walks the
  RIFF chunks itself to notice.
* ``UNREADABLE_AUDIO``: an audio container libsndfile cannot decode
  (unsupported codec, corrupt header), or decoded samples that are not finite.
* ``EMPTY_AUDIO``: a zero-byte file, or a valid file with zero frames.
* ``TOO_SHORT`` / ``SILENT_AUDIO``: raised by :func:`check_signal`.

Silence is judged on the **peak** level (``20*log10(max|y|)`` dBFS), not the
RMS: utterances with long leading/trailing pauses or quiet speakers have a
low RMS but are real speech, while a file with no signal at all (e.g.
CREMA-D's ``1076_MTI_SAD_XX``) has a peak at or near zero.
"""

from __future__ import annotations

import io
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from speech_emotion import storage
from speech_emotion.corpora.common import RejectReason

__all__ = [
    "TARGET_SR",
    "AudioError",
    "AudioInfo",
    "probe_audio",
    "read_audio",
    "decode_audio_bytes",
    "to_mono",
    "resample",
    "load_audio",
    "check_signal",
    "peak_dbfs",
    "is_git_lfs_pointer",
    "is_lfs_pointer_bytes",
]

TARGET_SR = 16000

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
# Real LFS pointers are ~130 bytes; anything much bigger is not a pointer.
_LFS_POINTER_MAX_BYTES = 1024

# Leading bytes of audio containers: a file libsndfile cannot open that starts
# with one of these is damaged audio (UNREADABLE), anything else is NOT_AUDIO.
_AUDIO_MAGICS: tuple[bytes, ...] = (
    b"RIFF",
    b"RIFX",
    b"RF64",
    b"BW64",
    b"FORM",  # AIFF / AIFC
    b"fLaC",
    b"OggS",
    b"caff",
    b".snd",
    b"ID3",
    b"wvpk",
    b"MThd",
)

# 0 and 0xFFFFFFFF are used by streaming writers for "size unknown".
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class AudioError(Exception):
    """A file cannot be used as audio; ``reason`` says why, ``detail`` how.

    ``detail`` does not repeat the path (it goes into the rejected table next
    to the path); ``str(error)`` names the file when ``path`` is known.
    """

    def __init__(self, reason: RejectReason, detail: str, path: str | os.PathLike | None = None):
        super().__init__(reason, detail, path)
        self.reason = RejectReason(reason)
        self.detail = detail
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.reason.value}: {self.detail}"


@dataclass(frozen=True)
class AudioInfo:
    """Facts about an audio file, as stored in it (native rate and channels)."""

    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    subtype: str  # libsndfile subtype, e.g. "PCM_16", "FLOAT"


# --------------------------------------------------------------------------- #
# Header inspection
# --------------------------------------------------------------------------- #


def is_lfs_pointer_bytes(data: bytes) -> bool:
    """True if a file's whole content is a Git LFS pointer stub."""
    return len(data) <= _LFS_POINTER_MAX_BYTES and data.startswith(LFS_POINTER_PREFIX)


def is_git_lfs_pointer(path: str | os.PathLike) -> bool:
    """True if ``path`` is a small text file that is a Git LFS pointer stub."""
    try:
        p = Path(path)
        if p.stat().st_size > _LFS_POINTER_MAX_BYTES:
            return False
        with p.open("rb") as f:
            head = f.read(len(LFS_POINTER_PREFIX))
    except OSError:
        return False
    return head == LFS_POINTER_PREFIX


def _looks_like_audio(head: bytes) -> bool:
    if any(head.startswith(m) for m in _AUDIO_MAGICS):
        return True
    # MPEG audio frame sync (11 set bits), as in a headerless .mp3.
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0


def _check_riff(f: BinaryIO, size: int) -> AudioError | None:
    """Walk the chunks of a RIFF/RIFX/RF64 WAVE file to notice truncation.

    ``f`` is positioned anywhere; ``size`` is the total byte length. Raises
    ``TRUNCATED_AUDIO`` when the ``data`` chunk declares more whole frames
    than the file holds. When the walk runs off the end of the file before a
    ``data`` chunk, the ``TRUNCATED_AUDIO`` error is *returned*, not raised:
    it only decides the reason if libsndfile cannot open the file either
    (libsndfile is more forgiving of odd chunk padding than this walk).
    Files that are not RIFF WAVE are left to libsndfile (returns ``None``).
    """
    f.seek(0)
    head = f.read(12)
    if len(head) < 4 or head[:4] not in (b"RIFF", b"RIFX", b"RF64", b"BW64"):
        return None
    if len(head) < 12:
        return AudioError(RejectReason.TRUNCATED_AUDIO, f"RIFF header cut short ({size} bytes)")
    if head[8:12] != b"WAVE":
        return None  # some other RIFF form (AVI, ...): libsndfile decides
    endian = ">" if head[:4] == b"RIFX" else "<"
    block_align = 0
    ds64_data_size: int | None = None
    offset = 12
    while True:
        if offset + 8 > size:
            return AudioError(
                RejectReason.TRUNCATED_AUDIO,
                f"WAV header ends at byte {size} before the 'data' chunk",
            )
        f.seek(offset)
        chunk_head = f.read(8)
        chunk_id = chunk_head[:4]
        (chunk_size,) = struct.unpack(endian + "I", chunk_head[4:8])
        body = offset + 8
        if chunk_id == b"data":
            if chunk_size == 0xFFFFFFFF and ds64_data_size is not None:
                chunk_size = ds64_data_size
            if chunk_size in _UNKNOWN_SIZES:
                return None
            available = size - body
            unit = block_align if block_align > 0 else 1
            declared_frames, present_frames = chunk_size // unit, available // unit
            if declared_frames > present_frames:
                raise AudioError(
                    RejectReason.TRUNCATED_AUDIO,
                    f"data chunk cut short: header declares {declared_frames} frames "
                    f"({chunk_size} bytes) but only {present_frames} are present "
                    f"({available} bytes)",
                )
            return None
        if chunk_id == b"fmt ":
            fmt = f.read(min(chunk_size, 16))
            if len(fmt) >= 14:
                (block_align,) = struct.unpack(endian + "H", fmt[12:14])
        elif chunk_id == b"ds64":
            ds64 = f.read(min(chunk_size, 16))
            if len(ds64) >= 16:
                (ds64_data_size,) = struct.unpack("<Q", ds64[8:16])
        offset = body + chunk_size + (chunk_size & 1)


def _sndfile_message(exc: Exception) -> str:
    """libsndfile's own words, without soundfile's "Error opening <object>:" prefix."""
    text = str(getattr(exc, "error_string", "") or "").strip()
    if not text:
        text = re.sub(r"^Error opening .*?: ", "", str(exc)).strip()
    if not text:
        code = getattr(exc, "code", None)
        text = type(exc).__name__ + (f" (libsndfile error {code})" if code is not None else "")
    return text


def _open_error(exc: Exception, head: bytes, pending: AudioError | None) -> AudioError:
    """Classify a libsndfile open failure (``pending``: what the RIFF walk found)."""
    if pending is not None:
        return pending
    message = _sndfile_message(exc)
    if not _looks_like_audio(head):
        shown = head[:8]
        return AudioError(
            RejectReason.NOT_AUDIO,
            f"not an audio file (starts with {shown!r}; libsndfile: {message})",
        )
    return AudioError(RejectReason.UNREADABLE_AUDIO, f"cannot decode: {message}")


def _inspect(f: BinaryIO, size: int) -> AudioError | None:
    """Checks common to probing and decoding, before libsndfile is asked.

    Raises what is certain; returns a pending error for :func:`_open_error`.
    """
    if size == 0:
        raise AudioError(RejectReason.EMPTY_AUDIO, "file is empty (0 bytes)")
    f.seek(0)
    head = f.read(len(LFS_POINTER_PREFIX))
    if size <= _LFS_POINTER_MAX_BYTES and head == LFS_POINTER_PREFIX:
        raise AudioError(
            RejectReason.GIT_LFS_POINTER,
            "Git LFS pointer stub, not audio (fetch the real file with `git lfs pull`)",
        )
    pending = _check_riff(f, size)
    f.seek(0)
    return pending


def _info_from(sfile: sf.SoundFile) -> AudioInfo:
    sr = int(sfile.samplerate)
    frames = int(sfile.frames)
    if sr <= 0:
        raise AudioError(RejectReason.UNREADABLE_AUDIO, f"invalid sample rate {sr}")
    if sfile.channels <= 0:
        raise AudioError(RejectReason.UNREADABLE_AUDIO, f"invalid channel count {sfile.channels}")
    if frames == 0:
        raise AudioError(RejectReason.EMPTY_AUDIO, "audio has zero frames")
    return AudioInfo(
        sample_rate=sr,
        channels=int(sfile.channels),
        frames=frames,
        duration_s=frames / sr,
        subtype=str(sfile.subtype),
    )


def _head_of(f: BinaryIO) -> bytes:
    f.seek(0)
    head = f.read(16)
    f.seek(0)
    return head


def probe_audio(path: str | os.PathLike) -> AudioInfo:
    """Read the header of ``path`` only and return its :class:`AudioInfo`.

    Raises :class:`AudioError` (GIT_LFS_POINTER, NOT_AUDIO, UNREADABLE_AUDIO,
    TRUNCATED_AUDIO or EMPTY_AUDIO), or :class:`FileNotFoundError`.
    """
    p = Path(path)
    size = p.stat().st_size
    try:
        with p.open("rb") as f:
            pending = _inspect(f, size)
            head = _head_of(f)
            try:
                with sf.SoundFile(f) as sfile:
                    return _info_from(sfile)
            except AudioError:
                raise
            except Exception as exc:  # libsndfile raises several types
                raise _open_error(exc, head, pending) from exc
    except AudioError as err:
        raise AudioError(err.reason, err.detail, p) from err.__cause__


def decode_audio_bytes(
    data: bytes, path: str | os.PathLike | None = None
) -> tuple[np.ndarray, AudioInfo]:
    """Decode a whole file held in memory.

    Returns ``(y, info)`` with ``y`` float32 of shape ``(frames, channels)`` at
    the native rate. ``path`` is only used in error messages. Used by ingestion
    so that each file is read from disk once (hash and decode share the bytes).
    """
    try:
        buf = io.BytesIO(data)
        pending = _inspect(buf, len(data))
        head = _head_of(buf)
        try:
            with sf.SoundFile(buf) as sfile:
                info = _info_from(sfile)
                y = sfile.read(dtype="float32", always_2d=True)
        except AudioError:
            raise
        except Exception as exc:
            raise _open_error(exc, head, pending) from exc
        if y.shape[0] == 0:
            raise AudioError(RejectReason.EMPTY_AUDIO, "audio has zero frames")
        if y.shape[0] < info.frames:
            raise AudioError(
                RejectReason.TRUNCATED_AUDIO,
                f"header declares {info.frames} frames but only {y.shape[0]} could be read",
            )
        if not np.isfinite(y).all():
            raise AudioError(RejectReason.UNREADABLE_AUDIO, "samples contain NaN or infinity")
    except AudioError as err:
        raise AudioError(err.reason, err.detail, path) from err.__cause__
    return y, info


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 samples of shape ``(frames, channels)``.

    Returns ``(y, sample_rate)`` at the file's native rate. Raises
    :class:`AudioError` (see the module docstring) or :class:`FileNotFoundError`.
    ``path`` may be an object-storage URL (``s3://...``; :mod:`speech_emotion.storage`).
    """
    y, info = decode_audio_bytes(storage.read_bytes(path), path)
    return y, info.sample_rate


# --------------------------------------------------------------------------- #
# Signal operations
# --------------------------------------------------------------------------- #


def to_mono(y: np.ndarray) -> np.ndarray:
    """Down-mix ``(frames, channels)`` (or pass ``(frames,)``) to float32 ``(frames,)``.

    The mono signal is the mean of the channels.
    """
    y = np.asarray(y)
    if y.ndim == 1:
        return y.astype(np.float32, copy=False)
    if y.ndim != 2:
        raise ValueError(f"expected a (frames,) or (frames, channels) array, got shape {y.shape}")
    if y.shape[1] == 1:
        return np.ascontiguousarray(y[:, 0], dtype=np.float32)
    return y.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(y: np.ndarray, sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """Resample ``y`` (``(frames,)`` or ``(frames, channels)``) from ``sr`` to ``target_sr``.

    Uses soxr with quality ``'HQ'``; returns float32. A no-op (beyond the
    dtype) when the rates are equal.
    """
    if sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {sr} -> {target_sr}")
    y = np.asarray(y, dtype=np.float32)
    if sr == target_sr or y.shape[0] == 0:
        return y
    out = soxr.resample(np.ascontiguousarray(y), sr, target_sr, quality="HQ")
    return np.asarray(out, dtype=np.float32)


def load_audio(path: str | os.PathLike, target_sr: int = TARGET_SR) -> np.ndarray:
    """Read ``path``, down-mix to mono and resample: float32 ``(frames,)`` at ``target_sr``."""
    y, sr = read_audio(path)
    return resample(to_mono(y), sr, target_sr)


def peak_dbfs(y: np.ndarray) -> float:
    """Peak level of ``y`` in dBFS (``-inf`` for an all-zero or empty signal)."""
    if y.size == 0:
        return float("-inf")
    peak = float(np.max(np.abs(y)))
    return 20.0 * float(np.log10(peak)) if peak > 0 else float("-inf")


def check_signal(
    y: np.ndarray, sr: int, *, min_duration_s: float, silence_dbfs: float
) -> None:
    """Validate a decoded signal (any channel layout, frames on axis 0).

    Raises :class:`AudioError` with, checked in this order:

    * ``EMPTY_AUDIO`` when there are zero frames;
    * ``TOO_SHORT`` when ``frames / sr < min_duration_s``;
    * ``SILENT_AUDIO`` when the **peak** level (over all channels) is below
      ``silence_dbfs`` dBFS (see the module docstring for why peak, not RMS).
    """
    y = np.asarray(y)
    frames = int(y.shape[0]) if y.ndim else 0
    if frames == 0:
        raise AudioError(RejectReason.EMPTY_AUDIO, "audio has zero frames")
    duration = frames / sr
    if duration < min_duration_s:
        raise AudioError(
            RejectReason.TOO_SHORT,
            f"duration {duration:.3f} s is below the minimum {min_duration_s:g} s",
        )
    level = peak_dbfs(y)
    if level < silence_dbfs:
        shown = "-inf" if level == float("-inf") else f"{level:.1f}"
        raise AudioError(
            RejectReason.SILENT_AUDIO,
            f"peak level {shown} dBFS is below the silence threshold {silence_dbfs:g} dBFS",
        )
