"""librosa's numba kernels are compiled under an inter-process lock (speech_emotion.numba_cache).

Each case runs fresh Python processes on an empty ``NUMBA_CACHE_DIR``, as on a fresh install: without
the lock, processes compiling librosa's kernels at once left a cache that crashed every later process
with a segmentation fault (numba/numba#10128).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from filelock import FileLock

from tests.conftest import ROOT

EXTRACT = """
import sys
import numpy as np
from speech_emotion import numba_cache
from speech_emotion.features import FeatureParams, clip_features

numba_cache.librosa(timeout=float(sys.argv[1]))
t = np.arange(16000 * 2) / 16000
f = clip_features((0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), FeatureParams(duration_s=2.0))
np.save(sys.argv[2], np.concatenate([f.mfcc, f.chroma, f.mel]))
"""


def _start(tmp_path, name: str, timeout: float = -1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", EXTRACT, str(timeout), str(tmp_path / f"{name}.npy")],
                            cwd=ROOT, env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _use_cache_dir(monkeypatch, folder) -> None:
    """``NUMBA_CACHE_DIR`` for this process's numba (imported already, it reads the variable no more)
    and for its children."""
    import numba.core.config

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(folder))
    monkeypatch.setattr(numba.core.config, "CACHE_DIR", str(folder))


def _cached_kernels(cache_dir) -> list:
    return sorted(p.name for p in cache_dir.rglob("*.nbi")) if cache_dir.exists() else []


def test_a_process_waits_for_the_lock_before_compiling_librosas_kernels(tmp_path, monkeypatch):
    _use_cache_dir(monkeypatch, tmp_path / "numba")
    from speech_emotion import numba_cache

    with FileLock(str(numba_cache.lock_path())):
        proc = _start(tmp_path, "blocked", timeout=1)
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode != 0 and "Timeout" in out, out
        assert _cached_kernels(tmp_path / "numba") == []  # nothing compiled without the lock

    proc = _start(tmp_path, "free")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert any(name.startswith("utils._localmax") for name in _cached_kernels(tmp_path / "numba"))


def test_processes_started_together_on_an_empty_cache_all_work_and_so_does_the_next(tmp_path):
    together = [_start(tmp_path, f"together{i}") for i in range(3)]
    for proc in together:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
    after = _start(tmp_path, "after")  # loads every kernel from the cache the three wrote
    out, _ = after.communicate(timeout=600)
    assert after.returncode == 0, out

    results = [np.load(tmp_path / f"{name}.npy") for name in ("together0", "together1", "together2", "after")]
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


CRASH_WHILE = """
import os, signal, sys
from pathlib import Path
if (Path(sys.argv[1]) / "broken.nbi").exists():  # stands in for a cache whose kernels do not link
    os.kill(os.getpid(), signal.SIGSEGV)
(Path(sys.argv[1]) / "fresh.nbi").write_text("compiled again")
"""


def test_a_cache_that_crashes_the_process_loading_it_is_rebuilt_and_then_trusted(tmp_path, monkeypatch):
    import librosa.util
    from numba.core.caching import _CacheLocator

    cache = tmp_path / "numba"
    kernels = cache / _CacheLocator.get_suitable_cache_subpath(librosa.util.__file__)  # numba's folder for librosa/util
    kernels.mkdir(parents=True)
    (kernels / "broken.nbi").write_text("index")
    (kernels / "broken.1.nbc").write_text("kernel")
    (cache / "other_1234").mkdir()
    (cache / "other_1234" / "another_library.nbi").write_text("not librosa's")
    _use_cache_dir(monkeypatch, cache)
    from speech_emotion import numba_cache

    child = [sys.executable, "-c", CRASH_WHILE, str(kernels)]
    assert numba_cache.ensure_cache(child) == "rebuilt"
    assert sorted(p.name for p in kernels.iterdir()) == ["fresh.nbi"]  # the crashing files are gone
    assert (cache / "other_1234" / "another_library.nbi").exists()  # and only librosa's

    always_crashes = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    assert numba_cache.ensure_cache(always_crashes) == "unchanged"  # as last checked: no child runs
    (kernels / "fresh.nbi").write_text("written by another process since")
    with pytest.raises(RuntimeError, match=r"signal 11.*NUMBA_CACHE_DIR"):
        numba_cache.ensure_cache(always_crashes)
    assert not (kernels / "fresh.nbi").exists()


def test_the_cache_checked_and_locked_is_the_one_numba_uses_not_the_environments(tmp_path, monkeypatch):
    # ZenML sets NUMBA_CACHE_DIR=/tmp when it loads its integrations; a step that imported numba before
    # that still writes beside librosa's sources: its lock, its files and its child must be those
    import numba.core.config

    from speech_emotion import numba_cache

    monkeypatch.setattr(numba.core.config, "CACHE_DIR", "")
    beside_sources = numba_cache.lock_path()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "zenml_says"))
    assert numba_cache.cache_dir() == "" and numba_cache.lock_path() == beside_sources
    assert all(f.parent.name == "__pycache__" and "librosa" in f.parts for f in numba_cache.cache_files())

    seen = tmp_path / "child_saw.txt"
    report = [sys.executable, "-c", f"import os; open({str(seen)!r}, 'w').write(repr(os.environ.get('NUMBA_CACHE_DIR')))"]
    monkeypatch.setattr(numba_cache, "stamp_path", lambda: tmp_path / "stamp")
    numba_cache.ensure_cache(report)
    assert seen.read_text() == "None"  # the child checks the __pycache__ this process loads


def test_one_cache_folder_reached_through_a_symlink_has_one_lock(tmp_path, monkeypatch):
    # two clones sharing one .venv through a symlink write one __pycache__: they must take one lock
    from speech_emotion import numba_cache

    (tmp_path / "numba").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "numba")
    _use_cache_dir(monkeypatch, tmp_path / "link")
    through_link = numba_cache.lock_path()
    _use_cache_dir(monkeypatch, tmp_path / "numba")
    assert numba_cache.lock_path() == through_link
    _use_cache_dir(monkeypatch, tmp_path / "other")
    assert numba_cache.lock_path() != through_link


def test_extraction_workers_load_the_kernels_of_the_process_that_starts_them(tmp_path, monkeypatch):
    # in a ZenML step the environment says NUMBA_CACHE_DIR=/tmp while the step's numba uses librosa's
    # __pycache__: the workers it spawns inherited /tmp and compiled every kernel a second time there
    import numba.core.config
    import soundfile

    from speech_emotion.features import extract_features

    monkeypatch.setattr(numba.core.config, "CACHE_DIR", "")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "zenml_says"))
    t = np.arange(16000) / 16000
    paths = []
    for i in range(2):
        paths.append(str(tmp_path / f"{i}.wav"))
        soundfile.write(paths[-1], (0.3 * np.sin(2 * np.pi * (180 + 40 * i) * t)).astype(np.float32), 16000)
    features = extract_features(paths, [0, 1], ["tess", "tess"], workers=2, min_clips_per_worker=1, progress=False)
    assert len(features) == 2 and np.isfinite(features.mfcc).all()
    assert _cached_kernels(tmp_path / "zenml_says") == []


PINNED = """
import os
import numba
from speech_emotion import numba_cache

os.environ["NUMBA_CACHE_DIR"] = os.environ.pop("ZENML_SAYS")  # as ZenML does, after numba's import
numba_cache.librosa()
numba.njit(lambda x: x + 1)(1)  # a compilation after the warm-up: numba reads the environment again
print(repr(numba_cache.cache_dir()), repr(os.environ.get("NUMBA_CACHE_DIR")))
"""


def test_a_compilation_after_the_warm_up_keeps_the_cache_numba_was_imported_with(tmp_path):
    # numba reloads its settings from the environment before every compilation: without the pin, the
    # step's cache (its lock, its workers') switched to ZenML's NUMBA_CACHE_DIR=/tmp at the first one
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", PINNED], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(env, ZENML_SAYS=str(tmp_path / "zenml_says"), PYTHONPATH=str(ROOT)))
    assert out.stdout.split() == ["''", "None"], out.stdout + out.stderr
    assert not (tmp_path / "zenml_says").exists()
