"""TESS (Toronto Emotional Speech Set) file naming.

Files are named ``<SPEAKER>_<word>_<emotion>.wav``, e.g. ``OAF_back_angry.wav``
or ``YAF_wire_ps.wav``:

* speaker: ``OAF`` (older adult female) or ``YAF`` (younger adult female);
  both are female. Speaker ids become ``tess_OAF`` / ``tess_YAF``.
* word: the carrier word ("Say the word ..."), used as the ``sentence`` id
  (lower-cased).
* emotion: ``angry disgust fear happy neutral sad ps``, where ``ps`` (pleasant
  surprise) is also spelled ``pleasant_surprise`` or ``pleasant_surprised``
  in some copies. Matching is case-insensitive; ``source_label`` keeps the
  spelling found in the name.

Folder names are inconsistent across popular copies (``OAF_Fear``,
``YAF_pleasant_surprised``, a nested ``TESS Toronto emotional speech set
data/`` folder, ...): the label is **always** taken from the file name, never
the folder. 2800 files at 24414 Hz in the original distribution.
"""

from __future__ import annotations

import re
from pathlib import Path

from speech_emotion.corpora.common import NameParseError, ParsedName, RejectReason, list_files

__all__ = ["CORPUS", "SPEAKERS", "EMOTION_CODES", "parse_name", "list_files"]

CORPUS = "tess"
SPEAKERS: dict[str, str] = {"OAF": "female", "YAF": "female"}
EMOTION_CODES: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sadness",
    "ps": "surprise",
    "pleasant_surprise": "surprise",
    "pleasant_surprised": "surprise",
}

# speaker _ word _ emotion (the emotion part may itself contain underscores)
_NAME = re.compile(r"^(?P<speaker>[A-Za-z]+)_(?P<word>[A-Za-z']+)_(?P<emotion>[A-Za-z_]+)$")


def parse_name(path: Path, options: object | None = None) -> ParsedName:
    """Parse a TESS file name; ``options`` is accepted for a uniform interface and unused.

    Raises :class:`NameParseError` (``UNPARSEABLE_NAME`` or ``UNKNOWN_EMOTION``).
    """
    stem = Path(path).stem
    m = _NAME.match(stem)
    if m is None:
        raise NameParseError(
            RejectReason.UNPARSEABLE_NAME,
            f"TESS name {Path(path).name!r} is not <OAF|YAF>_<word>_<emotion>.wav",
        )
    speaker = m["speaker"].upper()
    if speaker not in SPEAKERS:
        raise NameParseError(
            RejectReason.UNPARSEABLE_NAME,
            f"TESS name {Path(path).name!r}: unknown speaker {m['speaker']!r} "
            "(expected OAF or YAF)",
        )
    label = m["emotion"]
    emotion = EMOTION_CODES.get(label.lower())
    if emotion is None:
        raise NameParseError(
            RejectReason.UNKNOWN_EMOTION,
            f"TESS name {Path(path).name!r}: unknown emotion {label!r} "
            f"(expected one of {', '.join(EMOTION_CODES)})",
        )
    return ParsedName(
        corpus=CORPUS,
        speaker=f"{CORPUS}_{speaker}",
        gender=SPEAKERS[speaker],
        emotion=emotion,
        source_label=label,
        sentence=m["word"].lower(),
    )
