"""Records and label set shared by every corpus parser and by ingestion.

The seven classes follow the seed (Ekman's basic emotions as used by the
LoopQPrize challenge). Their order fixes the integer label of each class.

The parsers (:mod:`.tess`, :mod:`.savee`, :mod:`.ravdess`, :mod:`.crema`,
:mod:`.custom`) import only this module; :mod:`.ingest` imports them. Nothing
here imports another module of the project.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Literal

EMOTIONS: tuple[str, ...] = (
    "fear",
    "angry",
    "happy",
    "disgust",
    "sadness",
    "neutral",
    "surprise",
)
EMOTION_TO_INDEX: dict[str, int] = {e: i for i, e in enumerate(EMOTIONS)}

CORPORA: tuple[str, ...] = ("tess", "savee", "ravdess", "crema")

AUDIO_EXTENSIONS: frozenset[str] = frozenset({".wav"})  # compared lower-cased


def corpus_order(names) -> list[str]:
    """Corpus names in report order: the built-in ones as in :data:`CORPORA`, then custom ones sorted."""
    names = set(names)
    return [c for c in CORPORA if c in names] + sorted(names - set(CORPORA))


class RejectReason(str, Enum):
    """Why a file found under a corpus root was not ingested."""

    UNPARSEABLE_NAME = "unparseable_name"
    UNKNOWN_EMOTION = "unknown_emotion"
    EXCLUDED_LABEL = "excluded_label"
    UNREADABLE_AUDIO = "unreadable_audio"
    TRUNCATED_AUDIO = "truncated_audio"
    GIT_LFS_POINTER = "git_lfs_pointer"
    EMPTY_AUDIO = "empty_audio"
    SILENT_AUDIO = "silent_audio"
    TOO_SHORT = "too_short"
    DUPLICATE = "duplicate"
    NOT_AUDIO = "not_audio"


@dataclass(frozen=True)
class Utterance:
    """One ingested audio file with its label and audio facts."""

    path: str  # absolute
    relpath: str  # relative to the corpus root, "/"-separated: stays the same wherever the corpus is mounted
    corpus: str  # one of CORPORA, or a custom corpus's name
    speaker: str  # prefixed by corpus, e.g. "ravdess_12"
    gender: str  # "female" | "male" | "unknown" (custom corpora)
    emotion: str  # one of EMOTIONS
    source_label: str  # the label as the corpus spells it, e.g. "ps", "ANG", "05"
    sentence: str  # sentence/word id within the corpus (for leakage-aware splits)
    duration_s: float
    sample_rate: int  # native rate of the file
    channels: int
    content_hash: str  # sha1 of the file bytes (duplicates, feature cache)

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Rejection:
    """One file found under a corpus root that was not ingested, and why."""

    path: str
    corpus: str
    reason: str  # a RejectReason value
    detail: str  # human-readable explanation naming what was wrong

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ParsedName:
    """What a file's name (and, for SAVEE's original layout, folder) says.

    ``emotion`` is one of :data:`EMOTIONS`, or ``None`` when the label policy
    (:class:`IngestOptions`, or a custom corpus's ``emotions: {code: null}``)
    excludes the file; ``excluded`` then says why (e.g. ``"song, excluded by
    option ravdess_song=False"``).
    """

    corpus: str
    speaker: str  # prefixed by the corpus, e.g. "crema_1001"
    gender: str  # "female" | "male" (| "unknown" for a custom corpus)
    emotion: str | None
    source_label: str  # as the corpus spells it: "ps", "ANG", "05", "sa"
    sentence: str  # sentence / word id within the corpus
    excluded: str | None = None

    def __post_init__(self) -> None:
        if self.emotion is not None and self.emotion not in EMOTIONS:
            raise ValueError(f"emotion {self.emotion!r} is not one of {EMOTIONS}")
        if (self.emotion is None) != (self.excluded is not None):
            raise ValueError("exactly one of emotion and excluded must be set")


class NameParseError(ValueError):
    """A file name does not follow its corpus's naming rules.

    ``reason`` is ``UNPARSEABLE_NAME`` or ``UNKNOWN_EMOTION``.
    """

    def __init__(self, reason: RejectReason, detail: str):
        super().__init__(reason, detail)
        self.reason = RejectReason(reason)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


@dataclass
class IngestOptions:
    """Label policy and audio validation thresholds."""

    ravdess_song: bool = False  # include RAVDESS sung utterances
    ravdess_calm: Literal["drop", "neutral"] = "drop"  # RAVDESS calm: drop or merge into neutral
    min_duration_s: float = 0.5  # shorter files are TOO_SHORT
    silence_dbfs: float = -60.0  # files whose peak is below this are SILENT_AUDIO

    def __post_init__(self) -> None:
        if self.ravdess_calm not in ("drop", "neutral"):
            raise ValueError(f"ravdess_calm must be 'drop' or 'neutral', got {self.ravdess_calm!r}")


def list_files(root: str | os.PathLike) -> list[Path]:
    """Every file under ``root`` (recursively, hidden files included), sorted.

    Symbolic links to directories are not followed (no cycles, no double
    counting); symbolic links to files are listed.
    """
    root = Path(root)
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        # Everything that is not a directory counts as found, broken links
        # included (they end up rejected as unreadable), so counts add up.
        out.extend(base / name for name in filenames)
    return sorted(out)
