"""One data fingerprint for the whole product: what the audio is, not where it lies.

A fingerprint hashes each file's path relative to its corpus root together
with the sha1 of its bytes, so moving or re-mounting a corpus is not a change,
while adding, removing, renaming or editing a file is.

- :func:`data_fingerprint` digests an utterance table (its ``corpus``,
  ``relpath`` and ``content_hash`` columns): the Model version's metadata,
  MLflow's dataset digest and retraining use it.
- :func:`files_fingerprint` digests every file under the corpus roots before
  ingestion (the ingest step's cache key). Content hashes are cached by
  (relative path, size, modification time) in ``cache_dir``, so an unchanged
  corpus is fingerprinted with one ``stat`` per file. A root on object storage
  (``s3://...``) is listed once, and a hash is reused while the object's size
  and version (ETag, generation or modification time) are unchanged.

Both are 32-character hex digests (MD5 of the sorted records; not a security
boundary, only an identity).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from speech_emotion.storage import is_url, list_remote_files, read_many

logger = logging.getLogger(__name__)

__all__ = ["ContentHashCache", "data_fingerprint", "file_sha1", "files_fingerprint", "source_fingerprint"]


def _digest(records: Iterable[tuple[str, str, str]]) -> str:
    digest = hashlib.md5()
    for corpus, relpath, sha1 in sorted(records):
        digest.update(f"{corpus}\0{relpath}\0{sha1}\n".encode())
    return digest.hexdigest()


def data_fingerprint(utterances) -> str:
    """Digest of an utterance table: ``(corpus, relpath, content_hash)`` of every row."""
    missing = {"corpus", "relpath", "content_hash"} - set(utterances.columns)
    if missing:
        raise ValueError(f"utterance table lacks the columns {sorted(missing)} needed for its fingerprint")
    return _digest(zip(utterances["corpus"], utterances["relpath"], utterances["content_hash"]))


def file_sha1(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ContentHashCache:
    """sha1 of each file under one root, remembered by (relative path, size, mtime).

    One JSON file per root in ``cache_dir``; written atomically, so concurrent
    runs at worst recompute a hash. Without ``cache_dir`` every file is hashed.
    A root may be an object-storage URL: its entries are then validated by the
    object's size and version (see :func:`speech_emotion.storage.list_remote_files`).
    """

    def __init__(self, root: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
        self.root = root if is_url(root) else Path(root)
        self.path: Path | None = None
        self.entries: dict[str, list] = {}
        if cache_dir is not None:
            where = str(self.root).rstrip("/") if is_url(root) else str(self.root.resolve())
            key = hashlib.sha1(where.encode()).hexdigest()[:16]
            self.path = Path(cache_dir) / f"{key}.json"
            try:
                self.entries = json.loads(self.path.read_text())
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as exc:
                logger.warning("ignoring unreadable content-hash cache %s: %s", self.path, exc)
        self._dirty = False

    def sha1(self, relpath: str, path: Path) -> str | None:
        """The file's sha1, or None when it cannot be read (it is then left out)."""
        try:
            st = path.stat()
        except OSError:
            return None
        return self._cached(relpath, st.st_size, st.st_mtime_ns, lambda: file_sha1(path))

    def remote_sha1s(self, files, batch: int = 64) -> list[str | None]:
        """The sha1 of each object (:class:`speech_emotion.storage.RemoteFile`), None where unreadable.
        Objects whose hash is not known are fetched concurrently, a batch at a time. Without a version
        from the store an object is read every time (never a stale hash)."""
        out: list[str | None] = []
        for start in range(0, len(files), batch):
            chunk = files[start : start + batch]
            known = {f.relpath: self._known(f.relpath, f.size, f.version) for f in chunk if f.version}
            todo = [f for f in chunk if known.get(f.relpath) is None]
            fetched = dict(zip((f.relpath for f in todo), read_many([f.url for f in todo])))
            for f in chunk:
                if known.get(f.relpath) is not None:
                    out.append(known[f.relpath])
                    continue
                data = fetched[f.relpath]
                sha = None if isinstance(data, Exception) else hashlib.sha1(data).hexdigest()
                if sha is not None and f.version:
                    self.entries[f.relpath] = [f.size, f.version, sha]
                    self._dirty = True
                out.append(sha)
        return out

    def _known(self, relpath: str, size: int, version) -> str | None:
        entry = self.entries.get(relpath)
        return entry[2] if entry and entry[0] == size and entry[1] == version else None

    @staticmethod
    def _hash(compute) -> str | None:
        try:
            return compute()
        except OSError:
            return None

    def _cached(self, relpath: str, size: int, version, compute) -> str | None:
        known = self._known(relpath, size, version)
        if known is not None:
            return known
        sha = self._hash(compute)
        if sha is None:
            return None
        self.entries[relpath] = [size, version, sha]
        self._dirty = True
        return sha

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.entries))
            os.replace(tmp, self.path)
        except OSError as exc:
            logger.warning("could not write the content-hash cache %s (%s); hashes will be recomputed next time",
                           self.path, exc)


def files_fingerprint(roots: Mapping[str, str | os.PathLike], cache_dir: str | os.PathLike | None = None) -> str:
    """Digest of every file under the corpus roots (relative path and content); roots may be URLs."""
    from speech_emotion.corpora.ingest import list_files

    records = []
    for corpus in sorted(roots):
        root = roots[corpus]
        cache = ContentHashCache(root, cache_dir)
        if is_url(root):
            files = list_remote_files(str(root))
            for f, sha in zip(files, cache.remote_sha1s(files)):
                records.append((corpus, f.relpath, sha or "unreadable"))
        else:
            root = Path(root)
            for path in list_files(root):
                relpath = path.relative_to(root).as_posix()
                sha = cache.sha1(relpath, path)
                records.append((corpus, relpath, sha or "unreadable"))
        cache.save()
    return _digest(records)


def source_fingerprint(files: str, ingest_options: dict) -> str:
    """The files' fingerprint together with the ingestion options that decide which of them are used:
    equal values mean an ingestion would give the same utterances (the retraining's cheap check)."""
    import json

    blob = json.dumps({"files": files, "ingest": ingest_options}, sort_keys=True, default=str)
    return hashlib.md5(blob.encode()).hexdigest()
