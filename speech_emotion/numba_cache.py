"""librosa, with numba's on-disk cache of its compiled kernels written by one process at a time.

librosa compiles its numba kernels with ``cache=True``: the first process that needs one compiles it
and writes it to numba's cache (``__pycache__`` beside librosa, or ``NUMBA_CACHE_DIR``); later
processes load it from there. Two processes compiling the same vectorized kernel at once can leave
files of the two compilations side by side, and every process that loads them afterwards dies of a
segmentation fault (numba/numba#10128, #4807). On a fresh install, two training runs started together
did exactly that, and every later run on that install crashed in its first librosa call.

:func:`librosa` is how the project imports librosa: the first call in a process compiles, or loads,
the kernels the project uses (half a second of a tone through the same librosa calls) while holding
an inter-process lock, so that only one process writes the cache at a time.

The lock does not make a cache whole that is already broken (a process killed between a kernel's two
files, or written by a version without the lock): a cold demo and a run started after a killed one
each died in their first librosa call, in ``piptrack``'s ``localmax``. So, under the lock, whenever
librosa's cache files differ from the last state known to load, the warm-up first runs in a child
process (:func:`ensure_cache`); if the child dies of a signal, the cache files are deleted and the
child recompiles them (about 30 s on 2 cores), and only then does this process load them. A process
that finds the cache as last checked (every extraction worker, every later run) runs no child.

The cache meant throughout is the one numba itself uses in this process (:func:`cache_dir`), not the
one ``NUMBA_CACHE_DIR`` names now: ZenML changes that variable after numba is imported, and steps that
followed it took a lock over the wrong folder while writing librosa's ``__pycache__``; one of three
seed runs started together segfaulted in ``piptrack`` that way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

_warmed = False

#: the child of :func:`ensure_cache`: the warm-up, in a fresh interpreter
WARM_UP_CHILD = "import numpy, librosa; from speech_emotion.numba_cache import _warm_up; _warm_up(librosa, numpy)"


def lock_path() -> Path:
    """The lock shared by every process that writes the same numba cache: one per cache folder
    (:func:`cache_dir`, or the installed copy of librosa whose ``__pycache__`` folders hold it). Keyed
    on the folder's real path, so that environments reached through different paths (a symlinked
    ``.venv`` in two clones) that write the same ``__pycache__`` share one lock."""
    where = cache_dir() or _librosa_folder() or sys.prefix
    digest = hashlib.sha256(os.path.realpath(where).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"speech_emotion-numba-{digest}.lock"


def cache_dir() -> str:
    """The ``NUMBA_CACHE_DIR`` this process's numba writes to, "" for the ``__pycache__`` folders beside
    the sources: once numba is imported, its own setting counts, not the environment's. They differ in
    a ZenML step: ZenML sets ``NUMBA_CACHE_DIR=/tmp`` when it loads its integrations
    (``zenml/integrations/evidently``), and a process that imported numba before that writes beside
    librosa's sources while its environment says ``/tmp``. numba reads the environment again before
    each compilation (``config.reload_config()``), so the first call of :func:`librosa` sets the
    environment back to this folder."""
    config = sys.modules.get("numba.core.config")
    if config is not None:
        return config.CACHE_DIR or ""
    return os.environ.get("NUMBA_CACHE_DIR", "")


def librosa(timeout: float = -1):
    """The ``librosa`` module, its kernels compiled or loaded under the lock on the first call in this
    process. ``timeout``: seconds to wait for another process's compilation (-1: as long as it takes);
    past it, :class:`filelock.Timeout`."""
    global _warmed
    if not _warmed:
        # numba reloads its settings from the environment before every compilation: pin the environment
        # to the cache numba loaded with, or a ZenML step's NUMBA_CACHE_DIR=/tmp would become numba's
        # cache at the first kernel compiled after the warm-up (and the lock's and the workers' with it)
        _set_cache_dir(os.environ, cache_dir())
    import librosa as module

    if not _warmed:
        import numpy as np
        from filelock import FileLock

        with FileLock(str(lock_path()), timeout=timeout):
            ensure_cache()
            _warm_up(module, np)
            _warmed = True
    return module


def _warm_up(librosa, np) -> None:
    """Half a second of a float32 tone through the librosa calls of the features and reports: the STFT,
    mel, dB, MFCC and chroma with its tuning estimate (piptrack's peak-picking kernels)."""
    sr = 16000
    y = np.sin(2 * np.pi * 220.0 * np.arange(sr // 2, dtype=np.float32) / sr).astype(np.float32)
    power = np.abs(librosa.stft(y, n_fft=512, hop_length=128)) ** 2
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=32), ref=np.max)
    librosa.feature.mfcc(S=mel_db, n_mfcc=13)
    librosa.feature.chroma_stft(S=power, sr=sr, n_fft=512, hop_length=128)


def cache_files() -> list[Path]:
    """librosa's numba cache files: the index and data files in the folders numba gives librosa's
    source folders under :func:`cache_dir` when there is one (not the rest of it: ZenML's is ``/tmp``),
    otherwise in the ``__pycache__`` folders beside librosa's sources."""
    library = _librosa_folder()
    if not library:
        return []
    sources = sorted({f.parent for f in Path(library).rglob("*.py")})
    where = cache_dir()
    if where:
        from numba.core.caching import _CacheLocator

        folders = [Path(where) / _CacheLocator.get_suitable_cache_subpath(str(d / "x.py")) for d in sources]
    else:
        folders = [d / "__pycache__" for d in sources]
    return sorted(f for folder in folders if folder.is_dir() for f in folder.glob("*.nb[ic]"))


def _librosa_folder() -> str | None:
    spec = importlib.util.find_spec("librosa")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return locations[0] if locations else None


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for f in cache_files():
        try:
            info = f.stat()
        except FileNotFoundError:
            continue
        digest.update(f"{f}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def stamp_path() -> Path:
    """Where the fingerprint of the cache last known to load is kept, beside the lock."""
    return lock_path().with_suffix(".loads")


def ensure_cache(command: list[str] | None = None) -> str:
    """Check, in a child process, that librosa's cached kernels load; rebuild the cache if they do not.
    Call it holding the lock. ``command`` (tests): the child, by default the warm-up (:data:`WARM_UP_CHILD`).

    Returns ``"unchanged"`` (the cache is as last checked: no child ran), ``"checked"`` (the child
    loaded, or compiled, every kernel) or ``"rebuilt"`` (the child died of a signal; the cache files
    were deleted and a second child compiled them again). A child that dies again after the rebuild
    raises :class:`RuntimeError`; one that fails with a Python error is left to this process's own
    warm-up, which raises that error with its traceback.
    """
    stamp = stamp_path()
    if stamp.exists() and stamp.read_text() == _fingerprint():
        return "unchanged"
    command = command or [sys.executable, "-c", WARM_UP_CHILD]
    outcome = "checked"
    child = _run(command)
    if child.returncode < 0:
        files = cache_files()
        logger.warning("librosa's numba cache crashed a process that loaded it (signal %d; numba/numba#10128): "
                       "deleting its %d files and compiling them again (about 30 s)\n%s",
                       -child.returncode, len(files), child.stdout[-2000:])
        for f in files:
            f.unlink(missing_ok=True)
        outcome = "rebuilt"
        child = _run(command)
        if child.returncode < 0:
            raise RuntimeError(
                f"librosa's numba kernels crash a fresh process (signal {-child.returncode}) even after their "
                f"cache was rebuilt; set NUMBA_CACHE_DIR to an empty folder and try again\n{child.stdout[-2000:]}")
    if child.returncode == 0:
        stamp.write_text(_fingerprint())
    return outcome


def _set_cache_dir(env, folder: str) -> None:
    """``NUMBA_CACHE_DIR`` in ``env`` (a dict, or ``os.environ``) set to ``folder``, or removed for ""."""
    if folder:
        env["NUMBA_CACHE_DIR"] = folder
    else:
        env.pop("NUMBA_CACHE_DIR", None)


def use_cache_dir(folder: str) -> None:
    """In a process started by another (an extraction worker): use ``folder``, the starting process's
    :func:`cache_dir`, as numba's cache. Without it a worker spawned from a ZenML step inherits the
    step's ``NUMBA_CACHE_DIR=/tmp``, compiles every librosa kernel a second time into ``/tmp`` (12 s on
    a cold demo, where the step's own kernels were already compiled beside librosa's sources) and
    locks another folder than its parent. Call it before librosa is imported: numba picks a
    function's cache folder when the function is defined."""
    if "librosa" in sys.modules:
        logger.warning("numba_cache.use_cache_dir(%r) after librosa was imported: its kernels keep the "
                       "cache folder they were defined with (%r)", folder, cache_dir())
    _set_cache_dir(os.environ, folder)
    config = sys.modules.get("numba.core.config")
    if config is not None:  # imported already: numba reads the environment again only at its next compilation
        config.CACHE_DIR = folder


def _run(command: list[str]) -> subprocess.CompletedProcess:
    package_root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, PYTHONFAULTHANDLER="1")
    _set_cache_dir(env, cache_dir())  # the child checks the cache this process loads, not the environment's
    return subprocess.run(command, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
