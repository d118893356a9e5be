"""The corpora: naming rules, label set and ingestion.

* :mod:`.common` -- the shared records (:class:`Utterance`, :class:`Rejection`,
  :class:`RejectReason`, :class:`ParsedName`, :class:`NameParseError`,
  :class:`IngestOptions`), :func:`list_files` and the label set :data:`EMOTIONS`;
* :mod:`.tess`, :mod:`.savee`, :mod:`.ravdess`, :mod:`.crema` -- one parser
  per corpus (``parse_name(path) -> ParsedName``), importing only :mod:`.common`;
* :mod:`.custom` -- any other corpus, described in configuration by a pattern
  and an emotion map (:class:`~.custom.CustomCorpus`);
* :mod:`.ingest` -- :func:`~.ingest.ingest_corpora`, which turns corpus roots
  into an utterances table and a rejected table whose counts add up.

Import ingestion from :mod:`speech_emotion.corpora.ingest`: it decodes audio
(:mod:`speech_emotion.audio`, which itself needs :mod:`.common`), so this
package does not import it.
"""

from __future__ import annotations

from speech_emotion.corpora import crema, custom, ravdess, savee, tess
from speech_emotion.corpora.common import (
    AUDIO_EXTENSIONS,
    CORPORA,
    EMOTION_TO_INDEX,
    EMOTIONS,
    IngestOptions,
    NameParseError,
    ParsedName,
    Rejection,
    RejectReason,
    Utterance,
    list_files,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "CORPORA",
    "EMOTIONS",
    "EMOTION_TO_INDEX",
    "IngestOptions",
    "NameParseError",
    "ParsedName",
    "RejectReason",
    "Rejection",
    "Utterance",
    "list_files",
    "crema",
    "custom",
    "ravdess",
    "savee",
    "tess",
]
