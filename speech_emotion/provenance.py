"""Fingerprints of the code and libraries that compute a result, for cache keys.

ZenML keys a step's cache on the step's own source only: after an edit to
``speech_emotion/`` (features, models, ensemble, evaluation) a re-run would
return the old results. :func:`code_fingerprint` hashes every Python file of
the library (and of ``steps/`` and ``materializers/`` beside it) together with
the versions of the numerical libraries; the training pipeline's
``CachePolicy(cache_func=...)`` adds it to every step's cache key.

:func:`feature_code_fingerprint` does the same for the per-clip feature cache
(:class:`speech_emotion.features.FeatureCache`): the feature and audio code and
the libraries they call.

No ZenML import here: this is plain hashing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

__all__ = [
    "FEATURE_PACKAGES",
    "NUMERICAL_PACKAGES",
    "code_fingerprint",
    "feature_code_fingerprint",
    "library_files",
    "package_versions",
]

#: libraries whose version changes what the pipeline computes
NUMERICAL_PACKAGES: tuple[str, ...] = ("numpy", "tensorflow", "keras", "librosa", "scikit-learn", "deap")
#: libraries the per-clip features depend on
FEATURE_PACKAGES: tuple[str, ...] = ("numpy", "scipy", "librosa", "soundfile", "soxr")
#: the modules that compute per-clip features, relative to the package folder
FEATURE_MODULES: tuple[str, ...] = ("features.py", "audio.py", "augmentation.py")
#: folders beside the package whose code also computes the artifacts
SIBLING_FOLDERS: tuple[str, ...] = ("steps", "materializers")

_PACKAGE_DIR = Path(__file__).resolve().parent
_ALIASES = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu")}


def package_versions(packages: Iterable[str] = NUMERICAL_PACKAGES) -> dict[str, str]:
    """Installed version of each package (``tensorflow`` also as ``tensorflow-cpu``); "absent" if none."""
    out = {}
    for name in packages:
        version = "absent"
        for dist in _ALIASES.get(name, (name,)):
            try:
                version = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        out[name] = version
    return out


def library_files(package_dir: str | Path | None = None) -> list[Path]:
    """Every ``*.py`` file of the library package and of ``steps/`` and ``materializers/`` beside it."""
    package_dir = Path(package_dir or _PACKAGE_DIR)
    files = list(package_dir.rglob("*.py"))
    for sibling in SIBLING_FOLDERS:
        folder = package_dir.parent / sibling
        if folder.is_dir():
            files.extend(folder.rglob("*.py"))
    return sorted(files)


def _digest(files: Iterable[Path], base: Path, versions: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    for name, version in sorted(versions.items()):
        digest.update(f"{name}=={version}\n".encode())
    return digest.hexdigest()


def code_fingerprint(package_dir: str | Path | None = None) -> str:
    """A digest of the library's code (:func:`library_files`) and the numerical libraries' versions.

    The training pipeline's cache function: every step's cache key includes it, so an
    edit to the library or an upgrade of numpy/TensorFlow/Keras/librosa/scikit-learn/DEAP
    makes the steps run again instead of returning stale results.
    """
    package_dir = Path(package_dir or _PACKAGE_DIR)
    return _digest(library_files(package_dir), package_dir.parent, package_versions(NUMERICAL_PACKAGES))


def feature_code_fingerprint(package_dir: str | Path | None = None) -> str:
    """A digest of the per-clip feature code (``features.py``, ``audio.py``) and the libraries it calls."""
    package_dir = Path(package_dir or _PACKAGE_DIR)
    files = [package_dir / name for name in FEATURE_MODULES]
    return _digest(files, package_dir, package_versions(FEATURE_PACKAGES))
