"""Any corpus described in configuration: a name, a root, a pattern and an emotion map.

Beside the four built-in parsers, a corpus can be described in YAML
(``corpora.custom`` in a pipeline configuration, or the ``custom:`` list of
``ser ingest --corpus-config FILE``)::

    custom:
      - name: emodb
        root: /data/emodb/wav
        pattern: '^(?P<speaker>\\d\\d)[a-z]\\d\\d(?P<emotion>[A-Z])[a-z]?\\.wav$'
        emotions: {W: angry, E: disgust, A: fear, F: happy, T: sadness, N: neutral, L: null}
        genders: {"03": male, "08": female}   # optional, per speaker; or `gender: female` for all
        license: "free for research use"        # optional, for the model card, as are
        language: German                         # `language` and `speech` (acted | elicited |
        speech: acted                            # natural | synthetic)

Rules (:func:`parse_name`):

* ``pattern`` is matched (``re.fullmatch``) against the file's path relative to
  ``root``, with ``/`` separators: ``angry/clip1.wav`` for a folder-per-emotion
  layout. Its named groups: ``emotion`` (required), ``speaker``, ``gender`` and
  ``text`` (optional). A file it does not match is ``UNPARSEABLE_NAME``.
* ``emotions`` maps the corpus's emotion codes (exactly as matched) to the seven
  classes. A code mapped to ``null`` is excluded (``EXCLUDED_LABEL``); a code
  missing from the map is ``UNKNOWN_EMOTION``. Left out, it maps each of the
  seven class names to itself.
* speakers are prefixed with the corpus name, as the built-in ones are
  (``emodb_03``); without a ``speaker`` group every file is ``<name>_unknown``.
* gender: the ``gender`` group (``m``/``male``/``f``/``female``, any case), else
  ``genders[speaker]``, else ``gender``, else ``unknown``.
* ``text`` becomes the utterance's sentence id (empty without the group).

Everything else (which files count, Git LFS stubs, bad audio, duplicates) is
done by :mod:`.ingest`, the same code as for the built-in corpora.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from speech_emotion.corpora.common import CORPORA, EMOTIONS, NameParseError, ParsedName, RejectReason

__all__ = ["CustomCorpus", "GROUPS", "load_custom_corpora", "parse_name"]

#: the named groups a pattern may use
GROUPS: frozenset[str] = frozenset({"emotion", "speaker", "gender", "text"})
GENDER_CODES: dict[str, str] = {"m": "male", "male": "male", "f": "female", "female": "female"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class CustomCorpus(BaseModel):
    """One corpus described by configuration (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    root: str
    pattern: str
    emotions: dict[str, str | None] = Field(default_factory=lambda: {e: e for e in EMOTIONS})
    genders: dict[str, Literal["male", "female"]] = Field(default_factory=dict)
    gender: Literal["male", "female"] | None = None
    #: for the model card: the corpus's licence, language and kind of speech
    license: str | None = None
    language: str | None = None
    speech: Literal["acted", "elicited", "natural", "synthetic"] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"custom corpus name {value!r}: use letters, digits, '_' or '-', starting with a letter")
        if value.lower() in CORPORA:
            raise ValueError(f"custom corpus name {value!r} is a built-in corpus; give it its own folder under "
                             f"corpora.{value.lower()}, or another name")
        return value

    @field_validator("genders", mode="before")
    @classmethod
    def _speaker_keys_are_strings(cls, value: object) -> object:
        # YAML reads {03: male} as {3: male}: speakers are matched as text
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _pattern_and_map(self) -> "CustomCorpus":
        try:
            compiled = re.compile(self.pattern)
        except re.error as err:
            raise ValueError(f"custom corpus {self.name!r}: pattern {self.pattern!r} is not a regular expression "
                             f"({err})") from None
        groups = set(compiled.groupindex)
        if "emotion" not in groups:
            raise ValueError(f"custom corpus {self.name!r}: pattern {self.pattern!r} needs a named group "
                             "(?P<emotion>...)")
        if unknown := groups - GROUPS:
            raise ValueError(f"custom corpus {self.name!r}: pattern groups {sorted(unknown)} are not among "
                             f"{sorted(GROUPS)}")
        if bad := {code: e for code, e in self.emotions.items() if e is not None and e not in EMOTIONS}:
            raise ValueError(f"custom corpus {self.name!r}: emotions {bad} are not among the seven classes "
                             f"{list(EMOTIONS)} (map a code to null to exclude it)")
        if not any(e is not None for e in self.emotions.values()):
            raise ValueError(f"custom corpus {self.name!r}: emotions maps no code to a class")
        return self

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    def resolved(self, base: Path) -> "CustomCorpus":
        """This corpus with ``root`` made absolute (relative roots are taken from ``base``; a URL stays as it is)."""
        from speech_emotion.storage import resolve

        return self.model_copy(update={"root": resolve(self.root, base)})


def _gender(corpus: CustomCorpus, groups: dict[str, str | None], speaker: str | None) -> str:
    code = groups.get("gender")
    if code and code.lower() in GENDER_CODES:
        return GENDER_CODES[code.lower()]
    if speaker is not None:
        for key in (speaker, f"{corpus.name}_{speaker}"):
            if key in corpus.genders:
                return corpus.genders[key]
        if speaker.isdigit():  # YAML reads an unquoted 03 as the number 3
            for key, value in corpus.genders.items():
                if key.isdigit() and int(key) == int(speaker):
                    return value
    return corpus.gender or "unknown"


def parse_name(path: Path, corpus: CustomCorpus) -> ParsedName:
    """Parse ``path`` (absolute, or relative to ``corpus.root``) by the corpus's pattern and maps.

    Raises :class:`NameParseError` (``UNPARSEABLE_NAME`` or ``UNKNOWN_EMOTION``).
    """
    path = Path(path)
    rel = path.relative_to(corpus.root) if path.is_absolute() else path
    rel_text = PurePath(rel).as_posix()
    m = corpus.regex.fullmatch(rel_text)
    if m is None:
        raise NameParseError(
            RejectReason.UNPARSEABLE_NAME,
            f"{corpus.name}: {rel_text!r} does not match the pattern {corpus.pattern!r}",
        )
    groups = m.groupdict()
    code = groups["emotion"] or ""
    if code not in corpus.emotions:
        raise NameParseError(
            RejectReason.UNKNOWN_EMOTION,
            f"{corpus.name}: {rel_text!r}: emotion code {code!r} is not in the corpus's emotions map "
            f"(known: {', '.join(map(str, corpus.emotions))})",
        )
    speaker = groups.get("speaker") or None
    emotion = corpus.emotions[code]
    return ParsedName(
        corpus=corpus.name,
        speaker=f"{corpus.name}_{speaker if speaker is not None else 'unknown'}",
        gender=_gender(corpus, groups, speaker),
        emotion=emotion,
        source_label=code,
        sentence=groups.get("text") or "",
        excluded=None if emotion is not None else f"emotion code {code!r} mapped to null in {corpus.name}'s emotions",
    )


def load_custom_corpora(path: str | Path) -> list[CustomCorpus]:
    """The ``custom:`` list of a YAML file, roots made absolute (relative ones are taken from the
    file's folder). Raises ValueError naming the file and what is wrong with it."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ValueError(f"cannot read corpus configuration {path}: {err}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"corpus configuration {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("custom"), list) or not data["custom"]:
        raise ValueError(f"corpus configuration {path}: expected a top-level 'custom:' list of corpora "
                         "(name, root, pattern, emotions)")
    if extra := set(data) - {"custom"}:
        raise ValueError(f"corpus configuration {path}: unknown top-level keys {sorted(extra)}; only 'custom:'")
    corpora = []
    for i, entry in enumerate(data["custom"]):
        try:
            corpora.append(CustomCorpus.model_validate(entry).resolved(path.parent.resolve()))
        except ValidationError as err:
            raise ValueError(f"corpus configuration {path}, custom[{i}]: {err}") from None
    names = [c.name for c in corpora]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"corpus configuration {path}: names {twice} are used more than once")
    return corpora
