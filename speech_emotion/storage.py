"""Local paths and object-storage URLs (``s3://``, ``gs://``, any fsspec URL) behind one small interface.

Corpus roots, the feature cache and the files given to the predictor may live on object storage,
so pods on a cluster need no shared disk. Rules:

- A URL stays a string: ``Path("s3://b/k")`` would make it ``s3:/b/k``. :func:`is_url` tells them
  apart, :func:`join` joins with ``/``.
- Local paths keep the fast path (``os``/``pathlib``, no fsspec import): nothing changes for a
  local corpus.
- URLs go through :mod:`fsspec` (``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``, installed
  separately). Credentials and endpoints come from the usual places: ``AWS_*`` variables,
  ``AWS_ENDPOINT_URL_S3`` for an S3-compatible server (MinIO, moto), or fsspec's own
  ``FSSPEC_S3_*`` variables.
- Listings are never served from fsspec's directory cache: a file added to a bucket since the
  last listing is seen (caching must never serve a stale result).

No ZenML imports: the ZenML artifact store is not involved (its ``fileio`` serves ``s3://`` only once
an S3 artifact store is registered; corpora must be readable on any stack).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

__all__ = [
    "RemoteFile",
    "exists",
    "filesystem",
    "is_dir",
    "is_file",
    "is_url",
    "join",
    "list_remote_files",
    "name_path",
    "open_file",
    "parent",
    "read_bytes",
    "read_many",
    "resolve",
    "write_bytes",
]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: str | os.PathLike | None) -> bool:
    """True for ``scheme://...`` (``s3://bucket/key``, ``gs://``, ``memory://``, ``file://``), False for a path."""
    return isinstance(path, str) and bool(_URL.match(path))


def filesystem(url: str):
    """The fsspec filesystem of ``url`` and the path inside it (no protocol)."""
    from fsspec.core import url_to_fs

    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as err:  # e.g. s3fs missing: say which URL needs what
        raise ImportError(f"cannot open {url}: {err}") from err


def join(root: str | os.PathLike, *parts: str) -> str:
    """``root`` joined with ``parts``: with ``/`` for a URL, ``os.path.join`` for a local path."""
    if is_url(root):
        out = str(root).rstrip("/")
        for part in parts:
            out += "/" + str(part).strip("/")
        return out
    return os.path.join(root, *parts)


def parent(path: str | os.PathLike) -> str:
    """The folder holding ``path`` (a URL stays a URL)."""
    if is_url(path):
        head, _, _ = str(path).rstrip("/").rpartition("/")
        return head
    return str(Path(path).parent)


def resolve(path: str | os.PathLike, base: str | os.PathLike) -> str:
    """A URL as it is; a local path expanded (``~``) and made absolute against ``base``."""
    if is_url(path):
        return str(path)
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else Path(base) / p)


def name_path(path: str | os.PathLike) -> PurePosixPath | Path:
    """A path object for reading names (``name``, ``stem``, ``suffix``, ``parent.name``), never for I/O:
    a local path as ``Path``, a URL as the ``PurePosixPath`` of its part after ``scheme://``."""
    if is_url(path):
        return PurePosixPath(_URL.sub("", str(path)))
    return Path(path)


def exists(path: str | os.PathLike) -> bool:
    if is_url(path):
        fs, inner = filesystem(path)
        fs.invalidate_cache(inner)
        return fs.exists(inner)
    return Path(path).exists()


def is_dir(path: str | os.PathLike) -> bool:
    """A local folder, or a URL under which objects lie (object stores have prefixes, not folders)."""
    if is_url(path):
        fs, inner = filesystem(path)
        fs.invalidate_cache(inner)
        return fs.isdir(inner)
    return Path(path).is_dir()


def is_file(path: str | os.PathLike) -> bool:
    if is_url(path):
        fs, inner = filesystem(path)
        fs.invalidate_cache(inner)
        return fs.isfile(inner)
    return Path(path).is_file()


def read_bytes(path: str | os.PathLike) -> bytes:
    """The whole file. Raises ``FileNotFoundError`` / ``OSError`` as a local read would."""
    if is_url(path):
        fs, inner = filesystem(path)
        return fs.cat_file(inner)
    return Path(path).read_bytes()


def read_many(paths: Sequence[str]) -> list[bytes | Exception]:
    """The bytes of each URL (in order), fetched concurrently where the filesystem can (s3fs); a file that
    cannot be read gives its exception instead. All URLs share one filesystem (one corpus root)."""
    if not paths:
        return []
    fs, _ = filesystem(paths[0])
    inner = [filesystem(p)[1] for p in paths]
    got = fs.cat(inner, on_error="return")
    out: list[bytes | Exception] = []
    for p in inner:
        value = got.get(p, FileNotFoundError(p))
        out.append(value if isinstance(value, (bytes, Exception)) else OSError(str(value)))
    return out


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole file. A URL is written in one request (an object store's PUT is atomic); a local file
    through a temporary name and a rename, so a reader never sees half a file."""
    if is_url(path):
        fs, inner = filesystem(path)
        fs.pipe_file(inner, data)
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, p)


@contextmanager
def open_file(path: str | os.PathLike, mode: str = "rb") -> Iterator[IO]:
    if is_url(path):
        import fsspec

        with fsspec.open(str(path), mode) as f:
            yield f
    else:
        with open(path, mode) as f:
            yield f


@dataclass(frozen=True)
class RemoteFile:
    """One object under a URL root: its URL, its path relative to the root, and what identifies its version."""

    url: str
    relpath: str  # "/"-separated, relative to the root
    size: int
    version: str  # ETag, generation or modification time: changes when the content does ("" if unknown)


def _version(info: dict) -> str:
    for key in ("ETag", "etag", "generation", "md5Hash", "LastModified", "mtime", "updated", "last_modified",
                "modified"):
        if info.get(key):
            return f"{key}={info[key]}"
    return ""


def list_remote_files(root: str) -> list[RemoteFile]:
    """Every object under the URL ``root`` (recursively, hidden names included), sorted by relative path.

    Listed fresh from the store every time (fsspec's listing cache is dropped first)."""
    fs, inner = filesystem(root)
    inner = inner.rstrip("/")
    fs.invalidate_cache(inner)
    found = fs.find(inner, detail=True)
    out = []
    prefix = inner + "/"
    for key, info in found.items():
        if info.get("type", "file") != "file" or not key.startswith(prefix):
            continue
        rel = key[len(prefix):]
        out.append(RemoteFile(url=join(root, rel), relpath=rel, size=int(info.get("size") or 0),
                              version=_version(info)))
    return sorted(out, key=lambda f: f.relpath)
