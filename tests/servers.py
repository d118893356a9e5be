"""Starting real servers in tests: a free loopback port, wait until it answers, always stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (servers fork workers), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def running(cmd: list[str], ready_url: str, env: dict | None = None, cwd=None,
            timeout: float = 300) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` until the block ends; enter the block (with the process) once ``ready_url`` answers."""
    # output to a file, not a pipe: a busy server (a benchmark) would fill a pipe nobody reads, and block
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"{cmd[0]} exited with {proc.returncode}:\n"
                                     + log.read().decode(errors="replace")[-5000:])
            try:
                with urllib.request.urlopen(ready_url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise AssertionError(f"{' '.join(cmd)} did not answer {ready_url} in {timeout:.0f} s")
            time.sleep(0.5)
        yield proc
    finally:
        stop(proc)
        log.close()


#: dummy credentials for the loopback S3 server (moto accepts any)
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """A real S3 API on a free loopback port (``moto`` server). Yields the environment that points boto3, s3fs
    (``AWS_ENDPOINT_URL_S3``) and MLflow (``MLFLOW_S3_ENDPOINT_URL``) at it, with dummy credentials."""
    import shutil
    import sys

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
    with running([exe, "-H", "127.0.0.1", "-p", str(port)], f"{endpoint}/moto-api/", timeout=120):
        yield {**S3_CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint}
