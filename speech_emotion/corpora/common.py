"""Records and label set shared by every corpus parser.

The seven classes follow the seed (Ekman's basic emotions as used by the
LoopQPrize challenge). Their order fixes the integer label of each class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import Enum

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
    corpus: str  # one of CORPORA
    speaker: str  # prefixed by corpus, e.g. "ravdess_12"
    gender: str  # "female" | "male"
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
