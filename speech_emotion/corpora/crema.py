"""CREMA-D (Crowd-sourced Emotional Multimodal Actors Dataset) file naming.

Files are ``AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav``, e.g.
``AudioWAV/1001_DFA_ANG_XX.wav``:

* actor: ``1001``-``1091`` (speaker ids ``crema_1001`` ...);
* sentence: one of 12 codes ``IEO TIE IOM IWW TAI MTI IWL ITH DFA ITS TSI
  WSI`` (the ``sentence`` id);
* emotion: ``ANG DIS FEA HAP NEU SAD`` (no surprise in CREMA-D; any other code
  is ``UNKNOWN_EMOTION``); ``source_label`` is this code;
* level: ``LO MD HI XX`` (XX: unspecified).

Matching is case-insensitive. Gender comes from the actor. The corpus's
``VideoDemographics.csv`` (columns ``ActorID,Age,Sex,...``) is not in every
copy, so the real demographics (48 male, 43 female actors) are embedded here;
when a ``VideoDemographics.csv`` is found under the root (or next to a root
that is the ``AudioWAV`` folder itself) it is preferred for the actors it
lists. The CSV is still counted among the found files, as a ``NOT_AUDIO``
rejection, so counts add up.

7442 files at 16 kHz. Known bad files: ``1076_MTI_SAD_XX`` (no signal) and, in
some copies, Git LFS pointer stubs instead of wavs; ingestion rejects both.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from speech_emotion.corpora.common import NameParseError, ParsedName, RejectReason, list_files

__all__ = [
    "CORPUS",
    "ACTORS",
    "MALE_ACTORS",
    "SENTENCES",
    "EMOTION_CODES",
    "LEVELS",
    "DEMOGRAPHICS_FILE",
    "actor_gender",
    "read_demographics",
    "find_demographics",
    "parse_name",
    "list_files",
]

logger = logging.getLogger("speech_emotion.corpora")

CORPUS = "crema"
ACTORS: range = range(1001, 1092)
MALE_ACTORS: frozenset[int] = frozenset(
    {
        1001, 1005, 1011, 1014, 1015, 1016, 1017, 1019, 1022, 1023, 1026, 1027,
        1031, 1032, 1033, 1034, 1035, 1036, 1038, 1039, 1040, 1041, 1042, 1044,
        1045, 1048, 1050, 1051, 1057, 1059, 1062, 1064, 1065, 1066, 1067, 1068,
        1069, 1070, 1071, 1077, 1080, 1081, 1083, 1085, 1086, 1087, 1088, 1090,
    }
)  # fmt: skip
SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
EMOTION_CODES: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sadness",
}
LEVELS: dict[str, str] = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
DEMOGRAPHICS_FILE = "VideoDemographics.csv"

_NAME = re.compile(
    r"^(?P<actor>\d+)_(?P<sentence>[A-Za-z]+)_(?P<emotion>[A-Za-z]+)_(?P<level>[A-Za-z]+)$"
)


def actor_gender(actor: int, genders: Mapping[int, str] | None = None) -> str:
    """Gender of a CREMA-D actor: from ``genders`` if it lists the actor, else embedded."""
    if genders is not None and actor in genders:
        return genders[actor]
    return "male" if actor in MALE_ACTORS else "female"


def read_demographics(csv_path: str | Path) -> dict[int, str]:
    """Read ``VideoDemographics.csv`` (a path or an object-storage URL) into ``{actor_id: "male" | "female"}``.

    Rows whose id or sex cannot be read are skipped. Raises :class:`OSError`
    or :class:`ValueError` (missing columns) for an unusable file.
    """
    from speech_emotion import storage

    out: dict[int, str] = {}
    text = storage.read_bytes(csv_path).decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
    if "actorid" not in fields or "sex" not in fields:
        raise ValueError(
            f"{csv_path}: expected columns ActorID and Sex, got {reader.fieldnames}"
        )
    for row in reader:
        try:
            actor = int(str(row[fields["actorid"]]).strip())
        except (TypeError, ValueError):
            continue
        sex = str(row[fields["sex"]] or "").strip().lower()
        if sex in ("male", "female"):
            out[actor] = sex
    return out


def find_demographics(root: str | Path, files: Iterable[str | Path] = ()) -> dict[int, str] | None:
    """Find and read a ``VideoDemographics.csv`` for a CREMA-D root (a folder or an object-storage URL), if any.

    Looks among ``files`` (the files found under the root, first in sorted
    order wins), then next to ``root`` when ``root`` is the ``AudioWAV``
    folder. Returns ``None`` (use the embedded table) when there is none or it
    cannot be read (logged as a warning).
    """
    from speech_emotion import storage

    candidates = sorted((str(p) for p in files if storage.name_path(p).name.lower() == DEMOGRAPHICS_FILE.lower()))
    if storage.name_path(root).name.lower() == "audiowav":
        beside = storage.join(storage.parent(root), DEMOGRAPHICS_FILE)
        if storage.is_file(beside):
            candidates.append(beside)
    for csv_path in candidates:
        try:
            table = read_demographics(csv_path)
        except (OSError, ValueError, UnicodeDecodeError, csv.Error) as err:
            logger.warning(
                "cannot read CREMA-D demographics %s (%s); using the embedded table", csv_path, err
            )
            continue
        if table:
            return table
    return None


def parse_name(
    path: Path, options: object | None = None, *, genders: Mapping[int, str] | None = None
) -> ParsedName:
    """Parse a CREMA-D file name. ``genders`` overrides the embedded actor table.

    ``options`` is accepted for a uniform interface and unused. Raises
    :class:`NameParseError` (``UNPARSEABLE_NAME`` or ``UNKNOWN_EMOTION``).
    """
    path = Path(path)
    m = _NAME.match(path.stem)
    if m is None:
        raise NameParseError(
            RejectReason.UNPARSEABLE_NAME,
            f"CREMA-D name {path.name!r} is not <actor>_<sentence>_<emotion>_<level>.wav",
        )
    actor = int(m["actor"])
    if actor not in ACTORS or len(m["actor"]) != 4:
        raise NameParseError(
            RejectReason.UNPARSEABLE_NAME,
            f"CREMA-D name {path.name!r}: actor {m['actor']} is not 1001-1091",
        )
    sentence = m["sentence"].upper()
    if sentence not in SENTENCES:
        raise NameParseError(
            RejectReason.UNPARSEABLE_NAME,
            f"CREMA-D name {path.name!r}: unknown sentence code {m['sentence']!r}",
        )
    code = m["emotion"].upper()
    emotion = EMOTION_CODES.get(code)
    if emotion is None:
        raise NameParseError(
            RejectReason.UNKNOWN_EMOTION,
            f"CREMA-D name {path.name!r}: unknown emotion code {m['emotion']!r} "
            f"(expected one of {', '.join(EMOTION_CODES)})",
        )
    if m["level"].upper() not in LEVELS:
        raise NameParseError(
            RejectReason.UNPARSEABLE_NAME,
            f"CREMA-D name {path.name!r}: unknown level {m['level']!r} (expected LO, MD, HI or XX)",
        )
    return ParsedName(
        corpus=CORPUS,
        speaker=f"{CORPUS}_{actor}",
        gender=actor_gender(actor, genders),
        emotion=emotion,
        source_label=code,
        sentence=sentence,
    )
