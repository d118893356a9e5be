"""Moving files between a local folder and the (possibly remote) artifact store."""

from __future__ import annotations

import os

from zenml.io import fileio


def upload_dir(local_dir: str, uri: str) -> None:
    for name in sorted(os.listdir(local_dir)):
        fileio.copy(os.path.join(local_dir, name), os.path.join(uri, name), overwrite=True)


def download_dir(uri: str, local_dir: str) -> None:
    for name in fileio.listdir(uri):
        name = name.decode() if isinstance(name, bytes) else str(name)
        fileio.copy(os.path.join(uri, name), os.path.join(local_dir, name), overwrite=True)


def is_local(uri: str) -> bool:
    return os.path.isdir(uri)
