"""RAVDESS (Ryerson Audio-Visual Database of Emotional Speech and Song) file naming.

Files live in ``Actor_XX/`` folders and are named by seven two-digit fields,
e.g. ``Actor_12/03-01-05-01-02-01-12.wav``:

1. modality: ``03`` audio-only. ``01`` (full AV) and ``02`` (video-only) are
   video files, not our modality: ``UNPARSEABLE_NAME``.
2. vocal channel: ``01`` speech, ``02`` song.
3. emotion: ``01`` neutral, ``02`` calm, ``03`` happy, ``04`` sad, ``05`` angry,
   ``06`` fearful, ``07`` disgust, ``08`` surprised (other codes:
   ``UNKNOWN_EMOTION``).
4. intensity: ``01`` normal, ``02`` strong.
5. statement: ``01`` "Kids are talking by the door", ``02`` "Dogs are sitting
   by the door" -- the ``sentence`` id is this code.
6. repetition: ``01`` or ``02``.
7. actor: ``01``-``24``; odd actors are male, even actors female. Speaker ids
   keep the two digits: ``ravdess_01`` ... ``ravdess_24``.

``source_label`` is the emotion code (``"05"``). The actor is taken from the
name, not the folder.

Label policy (:class:`~speech_emotion.corpora.common.IngestOptions`):

* song (vocal channel ``02``) is excluded unless ``ravdess_song=True``;
* calm has no place among the seven classes: dropped by default
  (``ravdess_calm="drop"``), merged into neutral with ``ravdess_calm="neutral"``.

An excluded file parses to ``emotion=None`` with the reason in ``excluded``.

The original distribution has 1440 speech and 1012 song files at 48 kHz. The
Kaggle copy holds every actor folder twice (``audio_speech_actors_01-24/
Actor_01/...`` and ``Actor_01/...``); the byte-identical copies are caught as
duplicates by ingestion.
"""

from __future__ import annotations

import re
from pathlib import Path

from speech_emotion.corpora.common import IngestOptions, NameParseError, ParsedName, RejectReason, list_files

__all__ = [
    "CORPUS",
    "EMOTION_CODES",
    "STATEMENTS",
    "actor_gender",
    "parse_name",
    "list_files",
]

CORPUS = "ravdess"
MODALITIES: dict[str, str] = {"01": "full-AV video", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS: dict[str, str] = {"01": "speech", "02": "song"}
EMOTION_CODES: dict[str, str] = {
    "01": "neutral",
    "02": "calm",  # not one of the 7 classes: see the label policy
    "03": "happy",
    "04": "sadness",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
INTENSITIES: dict[str, str] = {"01": "normal", "02": "strong"}
STATEMENTS: dict[str, str] = {
    "01": "Kids are talking by the door",
    "02": "Dogs are sitting by the door",
}
REPETITIONS: frozenset[str] = frozenset({"01", "02"})
N_ACTORS = 24

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def actor_gender(actor: int) -> str:
    """RAVDESS convention: odd-numbered actors are male, even-numbered female."""
    return "male" if actor % 2 == 1 else "female"


def _bad(path: Path, what: str) -> NameParseError:
    return NameParseError(RejectReason.UNPARSEABLE_NAME, f"RAVDESS name {path.name!r}: {what}")


def parse_name(path: Path, options: IngestOptions | None = None) -> ParsedName:
    """Parse a RAVDESS file name and apply the song / calm label policy.

    Raises :class:`NameParseError` (``UNPARSEABLE_NAME`` or ``UNKNOWN_EMOTION``).
    """
    path = Path(path)
    options = options or IngestOptions()
    m = _NAME.match(path.stem)
    if m is None:
        raise _bad(path, "expected seven two-digit fields MM-VV-EE-II-SS-RR-AA")
    modality, channel, emo, intensity, statement, repetition, actor_code = m.groups()
    if modality != "03":
        kind = MODALITIES.get(modality)
        what = f"{kind} file, not audio-only (03)" if kind else "unknown code"
        raise _bad(path, f"modality {modality}: {what}")
    if channel not in VOCAL_CHANNELS:
        raise _bad(path, f"vocal channel {channel} is not 01 (speech) or 02 (song)")
    if emo not in EMOTION_CODES:
        raise NameParseError(
            RejectReason.UNKNOWN_EMOTION,
            f"RAVDESS name {path.name!r}: unknown emotion code {emo} (expected 01-08)",
        )
    if intensity not in INTENSITIES:
        raise _bad(path, f"intensity {intensity} is not 01 or 02")
    if statement not in STATEMENTS:
        raise _bad(path, f"statement {statement} is not 01 or 02")
    if repetition not in REPETITIONS:
        raise _bad(path, f"repetition {repetition} is not 01 or 02")
    actor = int(actor_code)
    if not 1 <= actor <= N_ACTORS:
        raise _bad(path, f"actor {actor_code} is not 01-{N_ACTORS}")

    emotion: str | None = EMOTION_CODES[emo]
    excluded: str | None = None
    if channel == "02" and not options.ravdess_song:
        emotion, excluded = None, "song, excluded by option ravdess_song=False"
    elif emotion == "calm":
        if options.ravdess_calm == "neutral":
            emotion = "neutral"
        else:
            emotion, excluded = None, "calm, excluded by option ravdess_calm='drop'"
    return ParsedName(
        corpus=CORPUS,
        speaker=f"{CORPUS}_{actor_code}",
        gender=actor_gender(actor),
        emotion=emotion,
        source_label=emo,
        sentence=statement,
        excluded=excluded,
    )
