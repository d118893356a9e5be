"""Read-only folders and full disks: one clear message naming the place and the fix; a read-only or full
feature cache is not fatal.

How the faults are made, since the tests may run as root (then chmod does not stop a write, and
``os.access`` says yes even on a read-only mount):
- a real read-only folder: ``chmod 0555`` when not root; as root a read-only tmpfs mount when the
  machine allows it; otherwise the test is skipped (the simulated tests below still run);
- a real full file system: a small tmpfs filled up, as root where mounting is allowed (the probe, and
  MLflow's SQLite database: "database or disk is full");
- everywhere: the error is simulated at the write call itself (``numpy.savez`` for the feature cache,
  ``os.fsync`` for the write probe, ``zenml.io.fileio.copy`` for the artifact store) by raising
  ``OSError`` with EROFS, EACCES or ENOSPC, as the kernel would.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speech_emotion.features import FeatureCache, FeatureParams, extract_features
from speech_emotion.disks import Place, StorageError, probe, writing

ROOT = Path(__file__).resolve().parents[1]
PARAMS = FeatureParams(duration_s=2.0)


@contextlib.contextmanager
def _tmpfs(folder: Path, options: str):
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)  # lazy: an open database file cannot block it


@pytest.fixture
def read_only_dir(tmp_path):
    folder = tmp_path / "read-only"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with _tmpfs(folder, "ro,size=1m"):
        yield folder


@pytest.fixture
def full_dir(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a real full file system needs a tmpfs mount (root); the simulated ENOSPC tests still run")
    with _tmpfs(tmp_path / "full", "size=256k") as folder:
        with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 65536)
        yield folder


def _clips(demo_corpus, n=4):
    paths = sorted(str(p) for p in Path(demo_corpus["tess"]).rglob("*.wav"))[:n]
    return paths, [0] * len(paths), ["tess"] * len(paths), [f"{i:040x}" for i in range(len(paths))]


def _same(a, b):
    for kind in ("mfcc", "chroma", "mel", "logmel"):
        np.testing.assert_array_equal(getattr(a, kind), getattr(b, kind))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_cache_write_error_is_not_fatal(demo_corpus, tmp_path, monkeypatch, caplog, code):
    """Simulated at the write call: numpy.savez raises OSError(code) as a full or read-only disk would."""
    paths, labels, corpus, hashes = _clips(demo_corpus)
    expected = extract_features(paths, labels, corpus, params=PARAMS, progress=False)
    calls = []

    def failing_savez(file, **arrays):
        calls.append(file)
        raise OSError(code, os.strerror(code), str(file))

    monkeypatch.setattr(np, "savez", failing_savez)
    with caplog.at_level(logging.WARNING, logger="speech_emotion.features"):
        got = extract_features(paths, labels, corpus, hashes, params=PARAMS, cache_dir=tmp_path / "cache",
                               progress=False)
    _same(got, expected)
    assert len(calls) == 1  # warned once, then no more attempts
    warnings = [r.getMessage() for r in caplog.records if "feature cache" in r.getMessage()]
    assert len(warnings) == 1 and str(tmp_path / "cache") in warnings[0]
    assert "without caching" in warnings[0] and "features.cache_dir" in warnings[0]
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # no torn files left


def test_another_write_error_is_not_swallowed(demo_corpus, tmp_path, monkeypatch):
    paths, labels, corpus, hashes = _clips(demo_corpus, 1)

    def broken(file, **arrays):
        raise OSError(errno.EIO, "Input/output error", str(file))

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="Input/output"):
        extract_features(paths, labels, corpus, hashes, params=PARAMS, cache_dir=tmp_path / "c", progress=False)


def test_a_read_only_cache_folder_still_serves_and_extraction_goes_on(demo_corpus, read_only_dir, caplog):
    paths, labels, corpus, hashes = _clips(demo_corpus)
    with caplog.at_level(logging.WARNING, logger="speech_emotion.features"):
        got = extract_features(paths, labels, corpus, hashes, params=PARAMS, cache_dir=read_only_dir, progress=False)
    _same(got, extract_features(paths, labels, corpus, params=PARAMS, progress=False))
    assert any("without caching" in r.getMessage() and str(read_only_dir) in r.getMessage() for r in caplog.records)
    assert not FeatureCache(read_only_dir, PARAMS).writable


def test_probe_names_a_read_only_folder(read_only_dir):
    why = probe(read_only_dir / "store")
    assert why in ("is on a read-only file system", "is not writable (permission denied)")


def test_probe_names_a_full_file_system(full_dir):
    assert probe(full_dir / "store", min_free=0) == "is on a full disk (no space left on the device)"
    assert "MB free" in probe(full_dir.parent, min_free=2**50)


@pytest.mark.parametrize("code, words", [(errno.EROFS, "read-only"), (errno.EACCES, "permission denied"),
                                         (errno.ENOSPC, "full disk")])
def test_probe_and_writing_name_the_place_and_the_fix(tmp_path, monkeypatch, code, words):
    """Simulated at the write call: os.fsync raises OSError(code)."""
    assert probe(tmp_path / "ok", min_free=0) is None
    assert list((tmp_path / "ok").iterdir()) == []  # the probe leaves nothing behind

    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    assert words in probe(tmp_path / "bad", min_free=0)
    place = Place(tmp_path / "store", "the artifact store", "free space there")
    with pytest.raises(StorageError) as err:
        with writing(place):
            os.fsync(0)
    assert f"the artifact store {tmp_path / 'store'}" in str(err.value) and words in str(err.value)
    assert "free space there" in str(err.value)


def test_the_artifact_store_upload_says_which_store_is_full(tmp_path, monkeypatch):
    """Simulated at the write call: ZenML's fileio.copy raises ENOSPC."""
    from zenml.io import fileio

    from materializers._files import upload_dir

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.npy").write_bytes(b"x")

    def full(src, dst, overwrite=False):
        raise OSError(errno.ENOSPC, "No space left on device", dst)

    monkeypatch.setattr(fileio, "copy", full)
    with pytest.raises(StorageError, match="the artifact store .*full disk.*clean-stores"):
        upload_dir(str(tmp_path / "src"), str(tmp_path / "store"))


def test_check_storage_names_each_store_and_warns_for_caches(tmp_path, monkeypatch, caplog, zenml_home):
    from pipelines.disk_check import check_storage

    check_storage({"the feature cache": str(tmp_path / "cache")}, root=tmp_path)  # all fine: no error
    check_storage({"the feature cache": "s3://bucket/cache/features"}, root=tmp_path)  # object storage: not probed
    assert not (tmp_path / "s3:").exists()  # (it once made a local folder "s3:/bucket/...")
    monkeypatch.setenv("SER_MIN_FREE_MB", str(2**40))  # more than any disk has: a real refusal
    with caplog.at_level(logging.WARNING, logger="speech_emotion.disks"), pytest.raises(SystemExit) as stop:
        check_storage({"the feature cache": "cache"}, root=tmp_path)
    message = str(stop.value.code)
    assert message.startswith("cannot start the run")
    assert f"the ZenML store folder {zenml_home}" in message and "the artifact store" in message
    assert "ZENML_CONFIG_PATH" in message and "SER_MIN_FREE_MB" in message
    assert any(f"the feature cache {tmp_path / 'cache'}" in r.getMessage() and "goes on without it" in r.getMessage()
               for r in caplog.records)


def test_zenml_pipeline_run_refuses_with_one_message_and_no_traceback(tmp_path):
    """The real command line: a run on a disk with too little room stops before it does anything."""
    import yaml

    config = yaml.safe_load((ROOT / "configs" / "test.yaml").read_text())
    config["parameters"]["corpora"]["demo"]["root"] = str(tmp_path / "demo")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "SER_MIN_FREE_MB": str(2**40), "ZENML_CONFIG_PATH": str(tmp_path / "home"),
           "ZENML_REPOSITORY_PATH": str(tmp_path)}
    env.pop("ZENML_ACTIVE_STACK_ID", None)
    zenml = str(Path(sys.executable).with_name("zenml"))
    proc = subprocess.run([zenml, "pipeline", "run", "pipelines.training.training_pipeline", "-c",
                           str(tmp_path / "run.yaml")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "cannot start the run:\n- the ZenML store folder" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "demo").exists()  # refused before the demo corpus was even generated


def test_ser_setup_refuses_a_store_folder_it_cannot_fill(tmp_path):
    env = {**os.environ, "SER_MIN_FREE_MB": str(2**40), "ZENML_CONFIG_PATH": str(tmp_path / "home")}
    proc = subprocess.run([str(Path(sys.executable).with_name("ser")), "setup", "--root", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert f"the ZenML store folder {tmp_path / 'home'} has only" in proc.stderr and "ZENML_CONFIG_PATH" in proc.stderr
    assert not (tmp_path / "home" / "config.yaml").exists()


def test_mlflow_logging_names_the_tracking_folder_when_its_disk_fills(tmp_path):
    """A real full file system (a small tmpfs, root only): SQLite's 'database or disk is full' becomes
    one StorageError naming the MLflow tracking folder."""
    import mlflow

    from steps import _tracking

    with _tmpfs(tmp_path / "mlflow", "size=2m") as folder:
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
        try:
            with mlflow.start_run():
                _tracking.log_metrics({"ok": 1.0})
                with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
                    while True:
                        f.write(b"\0" * 4096)
                with pytest.raises(StorageError, match=f"the MLflow tracking folder {folder} is on a full disk"):
                    for step in range(10_000):
                        _tracking.log_metrics({f"m{i}": float(i) for i in range(50)}, step=step)
                (folder / "filler").unlink()  # room again, so the run can be closed
        finally:
            mlflow.set_tracking_uri(previous)
