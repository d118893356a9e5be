"""Starting real servers in tests: a free loopback port, wait until it answers, always stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
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
def running(cmd: list[str], ready_url: str, env: dict | None = None, cwd=None, timeout: float = 300,
            log: str | os.PathLike | None = None) -> Iterator[None]:
    """Run ``cmd`` until the block ends; enter the block once ``ready_url`` answers.

    A server that logs every request must be given a ``log`` file: its output would otherwise fill the
    pipe nobody reads while the block runs, and the server would hang on its next log line."""
    out = open(log, "wb") if log is not None else subprocess.PIPE
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def output() -> str:
        if log is None:
            return proc.stdout.read().decode(errors="replace")[-5000:]
        out.flush()
        with open(log, "rb") as f:
            return f.read().decode(errors="replace")[-5000:]

    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{cmd[0]} exited with {proc.returncode}:\n" + output())
            try:
                with urllib.request.urlopen(ready_url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise AssertionError(f"{' '.join(cmd)} did not answer {ready_url} in {timeout:.0f} s")
            time.sleep(0.5)
        yield
    finally:
        stop(proc)
        if log is not None:
            out.close()


#: dummy credentials for the loopback S3 server (moto accepts any)
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """A real S3 API on a free loopback port (``moto`` server). Yields the environment that points boto3, s3fs
    (``AWS_ENDPOINT_URL_S3``) and MLflow (``MLFLOW_S3_ENDPOINT_URL``) at it, with dummy credentials."""
    import shutil
    import sys

    import tempfile

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
    with tempfile.TemporaryDirectory(prefix="moto-") as tmp, \
            running([exe, "-H", "127.0.0.1", "-p", str(port)], f"{endpoint}/moto-api/", timeout=120,
                    log=os.path.join(tmp, "moto.log")):
        yield {**S3_CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint}
