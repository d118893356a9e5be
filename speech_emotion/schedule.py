"""Scheduled retraining on a machine with cron (the local stack, whose orchestrator has no schedules).

``ser schedule install --cron "0 3 * * 1"`` adds one line to the user's crontab. The line runs
``ser retrain`` in the project, which takes an inter-process lock (the ``filelock`` package, not
``flock(1)``, which a machine may lack) so that two retraining runs never overlap, and appends to a
log file under the project. Installing again replaces the line. Each project's line carries a marker
comment naming the project, so ``list`` and ``remove`` touch only that line.

Tests (and careful users) point everything at a file instead of the real crontab with
``--crontab-file`` or ``SER_CRONTAB_FILE``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

CRONTAB_ENV = "SER_CRONTAB_FILE"
DEFAULT_CONFIG = "configs/retrain.yaml"

_FIELD = re.compile(r"^[\d*/,\-A-Za-z]+$")


class ScheduleError(RuntimeError):
    """A schedule cannot be read, written or understood; the message says why and what to do."""


def check_cron(expression: str) -> str:
    """Five fields (minute hour day month weekday), or a cron nickname such as ``@weekly``."""
    expression = " ".join(expression.split())
    if expression.startswith("@"):
        if expression not in ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"):
            raise ScheduleError(f"unknown cron nickname {expression!r}")
        return expression
    fields = expression.split(" ")
    if len(fields) != 5 or not all(_FIELD.match(f) for f in fields):
        raise ScheduleError(f"cron expression {expression!r} must have five fields: minute hour day-of-month "
                            "month day-of-week, e.g. '0 3 * * 1' (Mondays at 03:00)")
    return expression


def marker(root: Path) -> str:
    return f"# ser-retrain:{root}"


STATE_ENV = "SER_SCHEDULE_DIR"


def state_dir(root: Path) -> Path:
    """Where the lock and the log of scheduled runs live (``SER_SCHEDULE_DIR`` overrides)."""
    return Path(os.environ[STATE_ENV]) if os.environ.get(STATE_ENV) else root / "data" / "schedule"


def cron_line(expression: str, root: Path, config: str = DEFAULT_CONFIG, ser: str | None = None) -> str:
    """The crontab line: in the project, ``ser retrain`` under its lock, appending to the log."""
    root = root.resolve()
    ser = ser or str(Path(sys.executable).with_name("ser"))
    log = state_dir(root) / "retrain.log"
    command = (f"mkdir -p {shlex.quote(str(log.parent))} && cd {shlex.quote(str(root))} && "
               f"{shlex.quote(ser)} retrain --config {shlex.quote(config)} >> {shlex.quote(str(log))} 2>&1")
    return f"{check_cron(expression)} {command} {marker(root)}"


def command_of(line: str) -> str:
    """The shell command of a crontab line (what cron would run)."""
    body = line.split(" # ser-retrain:", 1)[0]
    if body.startswith("@"):
        return body.split(" ", 1)[1]
    return body.split(" ", 5)[5]


def _crontab_file(path: str | os.PathLike | None) -> Path | None:
    path = path or os.environ.get(CRONTAB_ENV)
    return Path(path) if path else None


def read_crontab(path: str | os.PathLike | None = None) -> str:
    file = _crontab_file(path)
    if file is not None:
        return file.read_text() if file.exists() else ""
    if shutil.which("crontab") is None:
        raise ScheduleError("the `crontab` command is not installed: install cron (e.g. apt-get install cron), "
                            "or print the line with --print and add it to your scheduler yourself")
    proc = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    if proc.returncode != 0:
        if "no crontab" in proc.stderr.lower():
            return ""
        raise ScheduleError(f"crontab -l failed: {proc.stderr.strip()}")
    return proc.stdout


def write_crontab(text: str, path: str | os.PathLike | None = None) -> None:
    file = _crontab_file(path)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        return
    proc = subprocess.run(["crontab", "-"], input=text, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ScheduleError(f"crontab - failed: {proc.stderr.strip()}")


def installed(root: Path, path: str | os.PathLike | None = None) -> list[str]:
    return [line for line in read_crontab(path).splitlines() if line.endswith(marker(root.resolve()))]


def install(line: str, root: Path, path: str | os.PathLike | None = None) -> None:
    """Add ``line``, replacing this project's previous one."""
    kept = [l for l in read_crontab(path).splitlines() if not l.endswith(marker(root.resolve()))]
    write_crontab("\n".join([*kept, line]) + "\n", path)


def remove(root: Path, path: str | os.PathLike | None = None) -> int:
    """Remove this project's line; returns how many were removed."""
    lines = read_crontab(path).splitlines()
    kept = [l for l in lines if not l.endswith(marker(root.resolve()))]
    write_crontab("\n".join(kept) + ("\n" if kept else ""), path)
    return len(lines) - len(kept)


def run_locked(command: list[str], lock_path: Path) -> int:
    """Run ``command`` holding the retraining lock; refuse at once when another run holds it."""
    from filelock import FileLock, Timeout

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ScheduleError(f"another retraining run is in progress (it holds {lock_path}); not starting a second "
                            "one. It will run at the next scheduled time.") from None
    try:
        return subprocess.call(command)
    finally:
        lock.release()
