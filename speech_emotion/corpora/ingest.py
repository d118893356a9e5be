"""Ingest the four corpora, and any custom ones, into one utterances table and one rejected table.

:func:`ingest_corpora` walks every corpus root, and puts **every** file it
finds (any extension, hidden files included) into exactly one of two tables:

* ``utterances`` (columns :meth:`Utterance.columns`): the usable audio files
  with their label, speaker, sentence and native audio facts;
* ``rejected`` (columns :meth:`Rejection.columns`): everything else, with a
  :class:`RejectReason` and a human-readable detail.

so that ``found == len(utterances) + len(rejected)`` always holds.

Checks, in order, for each file (the first failing one decides the reason):

1. extension: not ``.wav`` (any case) -> ``NOT_AUDIO`` "not a .wav file".
   Known metadata such as CREMA-D's ``VideoDemographics.csv`` is read (for
   speaker genders) *and* listed as ``NOT_AUDIO``, so that counts add up;
2. Git LFS pointer stub -> ``GIT_LFS_POINTER``;
3. file name -> ``UNPARSEABLE_NAME`` / ``UNKNOWN_EMOTION`` (per-corpus rules
   in :mod:`.tess`, :mod:`.savee`, :mod:`.ravdess`, :mod:`.crema`; a custom
   corpus's pattern and emotion map, :mod:`.custom`);
4. label policy -> ``EXCLUDED_LABEL`` (RAVDESS song and calm, see
   :class:`IngestOptions`; a custom code mapped to null);
5. audio decode and validation -> ``NOT_AUDIO``, ``UNREADABLE_AUDIO``,
   ``TRUNCATED_AUDIO``, ``EMPTY_AUDIO``, ``TOO_SHORT``, ``SILENT_AUDIO``
   (see :mod:`speech_emotion.audio`);
6. duplicates: byte-identical files (sha1) anywhere in the run; the
   lexicographically first absolute path (or URL) is kept, the others are
   ``DUPLICATE`` naming the kept file.

Each file is read once: the bytes are hashed and decoded from memory.

A root may be a local folder or an object-storage URL (``s3://bucket/corpora/TESS``, any fsspec
URL; :mod:`speech_emotion.storage`). Files under a URL are listed with fsspec and fetched
concurrently, a batch at a time; ``path`` is then the file's URL, and ``relpath`` (relative to
the root) is the same wherever the corpus lies, so ids and fingerprints survive a move.
Each rejection is logged as one warning on the ``speech_emotion.corpora``
logger and the run goes on.

The records the parsers share (:class:`ParsedName`, :class:`NameParseError`,
:class:`IngestOptions`, :func:`list_files`) live in :mod:`.common`, which the
parsers import; this module imports the parsers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath

import pandas as pd
from tqdm.auto import tqdm

from speech_emotion import storage
from speech_emotion.audio import AudioError, check_signal, decode_audio_bytes, is_git_lfs_pointer, is_lfs_pointer_bytes
from speech_emotion.corpora import crema, ravdess, savee, tess
from speech_emotion.corpora.common import (
    AUDIO_EXTENSIONS,
    CORPORA,
    EMOTIONS,
    IngestOptions,
    NameParseError,
    ParsedName,
    Rejection,
    RejectReason,
    Utterance,
    corpus_order,
    list_files,
)
from speech_emotion.corpora.custom import CustomCorpus, parse_name as parse_custom_name

__all__ = ["CorpusNamingError", "IngestResult", "check_naming", "ingest_corpora"]

logger = logging.getLogger("speech_emotion.corpora")


# --------------------------------------------------------------------------- #
# Result
# --------------------------------------------------------------------------- #


@dataclass
class IngestResult:
    """The two tables of one ingestion run, and how many files were found."""

    utterances: pd.DataFrame  # columns exactly Utterance.columns(), sorted by path
    rejected: pd.DataFrame  # columns exactly Rejection.columns(), sorted by path
    found: int  # == len(utterances) + len(rejected)

    def summary(self) -> str:
        """A plain-text report: ingested corpus x class counts, rejected corpus x reason."""
        lines = [
            f"found {self.found} files: {len(self.utterances)} ingested, "
            f"{len(self.rejected)} rejected",
            "",
            "ingested (corpus x emotion):",
        ]
        if len(self.utterances):
            table = pd.crosstab(
                self.utterances["corpus"],
                self.utterances["emotion"],
                margins=True,
                margins_name="total",
            )
            cols = [e for e in EMOTIONS if e in table.columns] + ["total"]
            rows = corpus_order(set(table.index) - {"total"}) + ["total"]
            lines.append(table.loc[rows, cols].to_string())
        else:
            lines.append("  (none)")
        lines += ["", "rejected (corpus x reason):"]
        if len(self.rejected):
            table = pd.crosstab(
                self.rejected["corpus"], self.rejected["reason"], margins=True, margins_name="total"
            )
            reasons = [r.value for r in RejectReason if r.value in table.columns] + ["total"]
            rows = corpus_order(set(table.index) - {"total"}) + ["total"]
            lines.append(table.loc[rows, reasons].to_string())
        else:
            lines.append("  (none)")
        return "\n".join(lines)

    def write(self, out_dir: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``utterances.csv`` and ``rejected.csv`` into ``out_dir`` (created)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        utt_path, rej_path = out / "utterances.csv", out / "rejected.csv"
        self.utterances.to_csv(utt_path, index=False)
        self.rejected.to_csv(rej_path, index=False)
        return utt_path, rej_path


# --------------------------------------------------------------------------- #
# Ingestion
# --------------------------------------------------------------------------- #

Parser = Callable[[Path], ParsedName]


@dataclass(frozen=True)
class _File:
    """One file found under a corpus root, local or on object storage."""

    path: str  # what the tables show: the absolute local path, or the URL
    relpath: str  # relative to the corpus root, "/"-separated
    name: PurePath  # for the name parsers (name, stem, parent folder); never opened
    remote: bool = False


def _list(root: str) -> list[_File]:
    """Every file under a local root (os.walk, as :func:`list_files`) or a URL root (fsspec), sorted."""
    if storage.is_url(root):
        return [_File(f.url, f.relpath, storage.name_path(f.url), remote=True)
                for f in storage.list_remote_files(root)]
    base = Path(root)
    # the path found, made absolute; a symlink is not replaced by its target
    return [_File(os.path.abspath(p), p.relative_to(base).as_posix(), p) for p in list_files(base)]


def _make_parser(
    corpus: str, root: str, files: list[_File], options: IngestOptions, spec: CustomCorpus | None = None
) -> Callable[[_File], ParsedName]:
    """The name parser for one corpus root, bound to the options (and CREMA genders, or a custom corpus)."""
    if spec is not None:
        return lambda f: parse_custom_name(PurePosixPath(f.relpath), spec)
    if corpus == "tess":
        return lambda f: tess.parse_name(f.name)
    if corpus == "savee":
        return lambda f: savee.parse_name(f.name)
    if corpus == "ravdess":
        return lambda f: ravdess.parse_name(f.name, options)
    if corpus == "crema":
        genders = crema.find_demographics(root, [f.path for f in files])
        return lambda f: crema.parse_name(f.name, genders=genders)
    raise ValueError(f"unknown corpus {corpus!r}; expected one of {CORPORA}")


class CorpusNamingError(ValueError):
    """No file under a corpus root follows the corpus's naming: most likely the wrong folder."""


def check_naming(corpus: str, root: str, files: list[_File], parse: Callable[[_File], ParsedName]) -> None:
    """Raise :class:`CorpusNamingError` unless at least one ``.wav`` file's name parses.

    RAVDESS given as ``tess`` would otherwise reject every file one by one and the run would
    train on without it. Only names are read (no audio), and it stops at the first match.
    """
    wavs = [f for f in files if f.name.suffix.lower() in AUDIO_EXTENSIONS]
    first_error: tuple[_File, str] | None = None
    for f in wavs:
        try:
            parse(f)
            return
        except NameParseError as err:
            first_error = first_error or (f, err.detail)
    if not files:
        why = "the folder is empty"
    elif first_error is None:
        why = f"{len(files)} files, none of them a .wav file"
    else:
        f, detail = first_error
        why = f"{len(wavs)} .wav files; the first, {f.relpath}: {detail}"
    raise CorpusNamingError(f"no file under {root} matches the {corpus} naming; is this the right folder? ({why})")


def _metadata_note(corpus: str, path: PurePath) -> str:
    if corpus == "crema" and path.name.lower() == "videodemographics.csv":
        return " (CREMA-D demographics, read for speaker genders)"
    return ""


@dataclass
class _Candidate:
    path: str
    utterance: Utterance


@dataclass
class _Run:
    options: IngestOptions
    utterances: list[_Candidate] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, path: str, corpus: str, reason: RejectReason, detail: str) -> None:
        self.rejected.append(
            Rejection(path=path, corpus=corpus, reason=reason.value, detail=detail)
        )
        logger.warning("rejected %s (%s): %s: %s", path, corpus, reason.value, detail)

    def process(self, corpus: str, f: _File, parse: Callable[[_File], ParsedName],
                data: bytes | Exception | None = None) -> None:
        """Check one file; ``data`` is its content when already fetched (object storage), else it is read here."""
        apath = f.path
        if f.name.suffix.lower() not in AUDIO_EXTENSIONS:
            detail = "not a .wav file" + _metadata_note(corpus, f.name)
            self.reject(apath, corpus, RejectReason.NOT_AUDIO, detail)
            return
        if (is_lfs_pointer_bytes(data) if isinstance(data, bytes) else not f.remote and is_git_lfs_pointer(f.path)):
            self.reject(
                apath,
                corpus,
                RejectReason.GIT_LFS_POINTER,
                "Git LFS pointer stub, not audio (fetch the real file with `git lfs pull`)",
            )
            return
        try:
            parsed = parse(f)
        except NameParseError as err:
            self.reject(apath, corpus, err.reason, err.detail)
            return
        if parsed.emotion is None:
            detail = parsed.excluded or "excluded by policy"
            self.reject(apath, corpus, RejectReason.EXCLUDED_LABEL, detail)
            return
        try:
            if isinstance(data, Exception):
                raise data
            if data is None:
                data = storage.read_bytes(f.path)
        except OSError as err:
            self.reject(apath, corpus, RejectReason.UNREADABLE_AUDIO, f"cannot read file: {err}")
            return
        if is_lfs_pointer_bytes(data):  # read here (a remote file fetched one by one)
            self.reject(apath, corpus, RejectReason.GIT_LFS_POINTER,
                        "Git LFS pointer stub, not audio (fetch the real file with `git lfs pull`)")
            return
        try:
            y, info = decode_audio_bytes(data, apath)
            check_signal(
                y,
                info.sample_rate,
                min_duration_s=self.options.min_duration_s,
                silence_dbfs=self.options.silence_dbfs,
            )
        except AudioError as err:
            self.reject(apath, corpus, err.reason, err.detail)
            return
        utt = Utterance(
            path=apath,
            relpath=f.relpath,
            corpus=corpus,
            speaker=parsed.speaker,
            gender=parsed.gender,
            emotion=parsed.emotion,
            source_label=parsed.source_label,
            sentence=parsed.sentence,
            duration_s=y.shape[0] / info.sample_rate,
            sample_rate=info.sample_rate,
            channels=info.channels,
            content_hash=hashlib.sha1(data).hexdigest(),
        )
        self.utterances.append(_Candidate(apath, utt))

    def drop_duplicates(self) -> list[Utterance]:
        """Keep the lexicographically first path of each content hash."""
        kept: dict[str, Utterance] = {}
        out: list[Utterance] = []
        for cand in sorted(self.utterances, key=lambda c: c.path):
            utt = cand.utterance
            first = kept.get(utt.content_hash)
            if first is None:
                kept[utt.content_hash] = utt
                out.append(utt)
            else:
                where = "" if first.corpus == utt.corpus else f" ({first.corpus})"
                self.reject(
                    utt.path,
                    utt.corpus,
                    RejectReason.DUPLICATE,
                    f"byte-identical to {first.path}{where} "
                    f"(sha1 {utt.content_hash[:12]}), which is kept",
                )
        return out


#: how many objects one concurrent fetch from object storage asks for
REMOTE_BATCH = 64


def _with_contents(files: list[_File]):
    """Each file with its bytes when it lies on object storage (fetched concurrently, a batch at a time,
    audio files only), or ``None`` (a local file is read when it is processed: the fast path)."""
    for start in range(0, len(files), REMOTE_BATCH):
        chunk = files[start : start + REMOTE_BATCH]
        wanted = [f.path for f in chunk if f.remote and f.name.suffix.lower() in AUDIO_EXTENSIONS]
        fetched = dict(zip(wanted, storage.read_many(wanted)))
        for f in chunk:
            yield f, fetched.get(f.path)


def _frame(records: list, columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame([r.to_dict() for r in records], columns=columns)
    if len(df):
        df = df.sort_values("path", kind="stable").reset_index(drop=True)
    return df


def ingest_corpora(
    roots: Mapping[str, str | os.PathLike | None],
    options: IngestOptions | None = None,
    progress: bool = True,
    custom: Sequence[CustomCorpus] = (),
) -> IngestResult:
    """Ingest the corpora under ``roots`` (keys in :data:`CORPORA`; ``None`` skipped) and the
    ``custom`` corpora (each with its own root, pattern and emotion map).

    Raises :class:`ValueError` for an unknown corpus key or a custom corpus name used twice,
    :class:`FileNotFoundError` (naming corpus and path) for a missing root, and
    :class:`CorpusNamingError` for a root under which no file's name parses (the wrong folder).
    Bad files never raise: they go to the rejected table (see the module
    docstring for the order of checks).
    """
    options = options or IngestOptions()
    selected: list[tuple[str, str, CustomCorpus | None]] = []
    wanted = [(corpus, root, None) for corpus, root in roots.items()]
    wanted += [(spec.name, spec.root, spec) for spec in custom]
    for corpus, root, spec in wanted:
        if spec is None and corpus not in CORPORA:
            raise ValueError(f"unknown corpus {corpus!r}; expected one of {CORPORA} (describe other corpora "
                             "as custom corpora)")
        if root is None:
            continue
        if spec is not None and any(corpus == name for name, _, _ in selected):
            raise ValueError(f"custom corpus name {corpus!r} is used twice")
        if storage.is_url(str(root)):  # object storage: a URL stays a string
            root_path = str(root).rstrip("/")
            if not storage.is_dir(root_path):
                raise FileNotFoundError(f"{corpus} root does not exist (no object under it): {root_path}")
        else:
            local = Path(root).expanduser()
            if not local.exists():
                raise FileNotFoundError(f"{corpus} root does not exist: {local}")
            if not local.is_dir():
                raise NotADirectoryError(f"{corpus} root is not a directory: {local}")
            root_path = str(local)
        selected.append((corpus, root_path, spec))

    listed = [(corpus, root, spec, _list(root)) for corpus, root, spec in selected]
    found = sum(len(files) for *_, files in listed)
    run = _Run(options)
    with tqdm(total=found, desc="ingest", unit="file", disable=not progress) as bar:
        for corpus, root, spec, files in listed:
            parse = _make_parser(corpus, root, files, options, spec)
            check_naming(corpus, root, files, parse)
            bar.set_postfix_str(corpus)
            for f, data in _with_contents(files):
                run.process(corpus, f, parse, data)
                bar.update(1)
    utterances = run.drop_duplicates()
    result = IngestResult(
        utterances=_frame(utterances, Utterance.columns()),
        rejected=_frame(run.rejected, Rejection.columns()),
        found=found,
    )
    assert result.found == len(result.utterances) + len(result.rejected), "counts must add up"
    logger.info(
        "ingested %d of %d files (%d rejected)", len(result.utterances), found, len(result.rejected)
    )
    return result
