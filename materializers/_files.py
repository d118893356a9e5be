"""Moving files between a local folder and the (possibly remote) artifact store."""

from __future__ import annotations

import os
from pathlib import Path

from zenml.io import fileio

from speech_emotion.disks import Place, writing

ARTIFACT_STORE_FIX = ("free space there (`make clean-stores` removes every old run and model), make it writable, "
                      "or use a stack whose artifact store is elsewhere")


def upload_dir(local_dir: str, uri: str) -> None:
    """Copy a folder's files, sub-folders included, to ``uri``; a read-only or full artifact store
    gives one :class:`~speech_emotion.disks.StorageError` naming it and the fix."""
    with writing(Place(Path(uri), "the artifact store", ARTIFACT_STORE_FIX)):
        _upload(local_dir, uri)


def _upload(local_dir: str, uri: str) -> None:
    for name in sorted(os.listdir(local_dir)):
        source, target = os.path.join(local_dir, name), os.path.join(uri, name)
        if os.path.isdir(source):
            fileio.makedirs(target)
            _upload(source, target)
        else:
            fileio.copy(source, target, overwrite=True)


def download_dir(uri: str, local_dir: str) -> None:
    """Copy the files under ``uri``, sub-folders included, into ``local_dir``."""
    for name in fileio.listdir(uri):
        name = name.decode() if isinstance(name, bytes) else str(name)
        source, target = os.path.join(uri, name), os.path.join(local_dir, name)
        if fileio.isdir(source):
            os.makedirs(target, exist_ok=True)
            download_dir(source, target)
        else:
            fileio.copy(source, target, overwrite=True)


def is_local(uri: str) -> bool:
    return os.path.isdir(uri)
