"""Read-only folders and full disks: one clear message naming the place and what to do.

A run writes to the ZenML store, the artifact store, MLflow's tracking folder and the caches.
When one of them cannot be written, the error should say which and how to fix it, before the run
starts where possible (:func:`check_places`), and at the write call otherwise (:func:`writing`).

Whether a folder can be written is found out by writing to it: ``os.access`` and the permission
bits say yes to root even on a read-only mount, and say nothing about free space. The probe
creates the folder, writes, flushes and syncs a small file and removes it, and then asks the
file system how much space is left (``SER_MIN_FREE_MB``, default 100 MB: below that a run would
fail part-way, so it is refused before it starts).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MIN_FREE_ENV = "SER_MIN_FREE_MB"

#: write errors that mean "this place cannot take the run's files", with what they mean
REASONS = {
    errno.EROFS: "is on a read-only file system",
    errno.EACCES: "is not writable (permission denied)",
    errno.EPERM: "is not writable (operation not permitted)",
    errno.ENOSPC: "is on a full disk (no space left on the device)",
    errno.EDQUOT: "is over its disk quota",
}


def min_free_bytes() -> int:
    value = os.environ.get(MIN_FREE_ENV, "100")
    try:
        return int(float(value) * 2**20)
    except ValueError:
        raise ValueError(f"{MIN_FREE_ENV}={value!r} is not a number of megabytes") from None


def reason(exc: OSError) -> str | None:
    """What a write error says about the place, or None when it is another kind of error."""
    return REASONS.get(exc.errno)


@dataclass(frozen=True)
class Place:
    """A folder a run writes to: what it is, and what to do when it cannot be written."""

    path: Path
    what: str  # "the artifact store"
    fix: str  # "free space on it, or ..."

    def message(self, why: str) -> str:
        return f"{self.what} {self.path} {why}: {self.fix}"


class StorageError(OSError):
    """A place a run must write to cannot be written (read-only, no permission, full)."""


def probe(path: str | os.PathLike, min_free: int | None = None) -> str | None:
    """Why nothing can be written under ``path`` (created if missing), or None when it can."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        test = path / f".ser-write-check-{uuid.uuid4().hex[:12]}"
        try:
            with open(test, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())  # where a full disk shows up on file systems that allocate late
        finally:
            with contextlib.suppress(FileNotFoundError):
                test.unlink()
    except OSError as exc:
        return reason(exc) or f"cannot be written ({exc.strerror or exc})"
    free = shutil.disk_usage(path).free
    need = min_free_bytes() if min_free is None else min_free
    if free < need:
        return (f"has only {free / 2**20:.0f} MB free (a run needs at least {need / 2**20:.0f} MB; "
                f"{MIN_FREE_ENV} sets it)")
    return None


def check_places(required: list[Place], optional: list[Place] = ()) -> list[str]:
    """Messages for every ``required`` place that cannot be written; ``optional`` ones (caches) only warn.

    Returns the problems with the required places (empty: all is well).
    """
    for place in optional:
        why = probe(place.path)
        if why:
            logger.warning("%s", place.message(why))
    return [place.message(why) for place in required if (why := probe(place.path))]


@contextlib.contextmanager
def writing(place: Place) -> Iterator[None]:
    """Turn a write error at ``place`` (read-only, no permission, full) into one :class:`StorageError`
    naming it and the fix; other errors pass unchanged."""
    try:
        yield
    except OSError as exc:
        why = reason(exc)
        if why is None or isinstance(exc, StorageError):
            raise
        raise StorageError(exc.errno, place.message(f"{why} ({exc.filename or place.path})")) from exc
