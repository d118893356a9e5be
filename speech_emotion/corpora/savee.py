"""SAVEE (Surrey Audio-Visual Expressed Emotion) file naming.

Four male speakers, ``DC JE JK KL`` (speaker ids ``savee_DC`` ...). Each file
name is an emotion prefix plus a two-digit number:

====== ========  ====== ========
prefix emotion   prefix emotion
====== ========  ====== ========
``a``  angry     ``n``  neutral
``d``  disgust   ``sa`` sadness
``f``  fear      ``su`` surprise
``h``  happy
====== ========  ====== ========

Beware: ``sa``/``su`` are two letters; a bare ``s`` is not a SAVEE prefix
(``UNKNOWN_EMOTION``). Two layouts exist:

* original: ``AudioData/DC/a01.wav`` -- the speaker comes from the folder;
* Kaggle: ``ALL/DC_a01.wav`` -- the speaker comes from the name (preferred
  when both are present).

``sentence`` is the prefix plus the number (``sa01``), ``source_label`` the
prefix. Matching is case-insensitive. 480 files at 44.1 kHz.
"""

from __future__ import annotations

import re
from pathlib import Path

from speech_emotion.corpora.common import NameParseError, ParsedName, RejectReason, list_files

__all__ = ["CORPUS", "SPEAKERS", "EMOTION_CODES", "parse_name", "list_files"]

CORPUS = "savee"
SPEAKERS: dict[str, str] = {"DC": "male", "JE": "male", "JK": "male", "KL": "male"}
EMOTION_CODES: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "n": "neutral",
    "sa": "sadness",
    "su": "surprise",
}

# optional "<SPK>_" then letters then exactly two digits
_NAME = re.compile(r"^(?:(?P<speaker>[A-Za-z]{2})_)?(?P<prefix>[A-Za-z]+)(?P<number>\d{2})$")


def parse_name(path: Path, options: object | None = None) -> ParsedName:
    """Parse a SAVEE file name (and its folder, for the original layout).

    ``options`` is accepted for a uniform interface and unused. Raises
    :class:`NameParseError` (``UNPARSEABLE_NAME`` or ``UNKNOWN_EMOTION``).
    """
    path = Path(path)
    m = _NAME.match(path.stem)
    if m is None:
        raise NameParseError(
            RejectReason.UNPARSEABLE_NAME,
            f"SAVEE name {path.name!r} is not [<SPEAKER>_]<a|d|f|h|n|sa|su><NN>.wav",
        )
    if m["speaker"] is not None:
        speaker = m["speaker"].upper()
        if speaker not in SPEAKERS:
            raise NameParseError(
                RejectReason.UNPARSEABLE_NAME,
                f"SAVEE name {path.name!r}: unknown speaker {m['speaker']!r} "
                f"(expected one of {', '.join(SPEAKERS)})",
            )
    else:
        speaker = path.parent.name.upper()
        if speaker not in SPEAKERS:
            raise NameParseError(
                RejectReason.UNPARSEABLE_NAME,
                f"SAVEE name {path.name!r} has no speaker and its folder {path.parent.name!r} "
                f"is not one of {', '.join(SPEAKERS)} (expected AudioData/<SPEAKER>/{path.name} "
                f"or <SPEAKER>_{path.name})",
            )
    prefix = m["prefix"].lower()
    emotion = EMOTION_CODES.get(prefix)
    if emotion is None:
        raise NameParseError(
            RejectReason.UNKNOWN_EMOTION,
            f"SAVEE name {path.name!r}: unknown emotion prefix {m['prefix']!r} "
            f"(expected one of {', '.join(EMOTION_CODES)})",
        )
    return ParsedName(
        corpus=CORPUS,
        speaker=f"{CORPUS}_{speaker}",
        gender=SPEAKERS[speaker],
        emotion=emotion,
        source_label=prefix,
        sentence=f"{prefix}{m['number']}",
    )
