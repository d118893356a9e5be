"""The four corpora: naming rules, label set and ingestion.

* :mod:`.common` -- the shared records (:class:`Utterance`, :class:`Rejection`,
  :class:`RejectReason`) and the label set :data:`EMOTIONS`;
* :mod:`.tess`, :mod:`.savee`, :mod:`.ravdess`, :mod:`.crema` -- one parser
  per corpus (``parse_name(path) -> ParsedName``, ``list_files(root)``);
* :mod:`.ingest` -- :func:`ingest_corpora`, which turns corpus roots into an
  utterances table and a rejected table whose counts add up.

The ingestion names are re-exported lazily (PEP 562): :mod:`speech_emotion.audio`
imports :mod:`.common`, and :mod:`.ingest` imports :mod:`speech_emotion.audio`,
so an eager import here would make ``import speech_emotion.audio`` circular.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from speech_emotion.corpora.common import (
    AUDIO_EXTENSIONS,
    CORPORA,
    EMOTION_TO_INDEX,
    EMOTIONS,
    Rejection,
    RejectReason,
    Utterance,
)

if TYPE_CHECKING:  # pragma: no cover
    from speech_emotion.corpora import crema, ravdess, savee, tess
    from speech_emotion.corpora.ingest import (
        IngestOptions,
        IngestResult,
        NameParseError,
        ParsedName,
        ingest_corpora,
        list_files,
    )

_FROM_INGEST = frozenset(
    {
        "IngestOptions",
        "IngestResult",
        "NameParseError",
        "ParsedName",
        "ingest_corpora",
        "list_files",
    }
)
_SUBMODULES = frozenset({"tess", "savee", "ravdess", "crema", "ingest", "common"})

__all__ = [
    "AUDIO_EXTENSIONS",
    "CORPORA",
    "EMOTIONS",
    "EMOTION_TO_INDEX",
    "IngestOptions",
    "IngestResult",
    "NameParseError",
    "ParsedName",
    "RejectReason",
    "Rejection",
    "Utterance",
    "ingest_corpora",
    "list_files",
    "crema",
    "ravdess",
    "savee",
    "tess",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_INGEST:
        module = importlib.import_module("speech_emotion.corpora.ingest")
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f"speech_emotion.corpora.{name}")
    raise AttributeError(f"module 'speech_emotion.corpora' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
