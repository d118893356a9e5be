"""`ser schedule` manages one crontab line per project (in a file here, never the real crontab),
and `ser retrain` refuses to start while another retraining run holds the lock."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from speech_emotion import schedule
from tests.conftest import ROOT

SER = os.path.join(os.path.dirname(sys.executable), "ser")


def _ser(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SER, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_print_shows_the_line_and_installs_nothing(tmp_path):
    crontab = tmp_path / "crontab"
    proc = _ser("schedule", "install", "--cron", "0 3 * * 1", "--print", "--crontab-file", str(crontab))
    assert proc.returncode == 0, proc.stderr
    root = ROOT.resolve()
    assert proc.stdout.strip() == (
        f"0 3 * * 1 mkdir -p {root}/data/schedule && cd {root} && {SER} retrain --config configs/retrain.yaml "
        f">> {root}/data/schedule/retrain.log 2>&1 # ser-retrain:{root}")
    assert not crontab.exists()
    assert schedule.command_of(proc.stdout.strip()).startswith(f"mkdir -p {root}/data/schedule && cd {root} && ")


def test_install_replaces_its_line_and_keeps_the_users_others(tmp_path):
    crontab = tmp_path / "crontab"
    crontab.write_text("MAILTO=me@example.org\n15 * * * * /usr/bin/backup\n")
    env = {schedule.CRONTAB_ENV: str(crontab)}
    assert _ser("schedule", "install", env=env).returncode == 0
    assert _ser("schedule", "install", "--cron", "@daily", env=env).returncode == 0
    lines = crontab.read_text().splitlines()
    assert lines[:2] == ["MAILTO=me@example.org", "15 * * * * /usr/bin/backup"]
    assert len(lines) == 3 and lines[2].startswith("@daily mkdir -p ")
    listed = _ser("schedule", "list", env=env)
    assert listed.stdout.strip() == lines[2]
    assert _ser("schedule", "remove", env=env).returncode == 0
    assert crontab.read_text().splitlines() == lines[:2]
    assert "no retraining was scheduled" in _ser("schedule", "remove", env=env).stdout


@pytest.mark.parametrize("cron", ["0 3 * *", "every monday", "@sometimes", "0 3 * * 1; rm -rf /"])
def test_a_bad_cron_expression_is_refused(tmp_path, cron):
    proc = _ser("schedule", "install", "--cron", cron, "--crontab-file", str(tmp_path / "c"))
    assert proc.returncode == 2 and "cron" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_retrain_refuses_to_overlap_a_running_retrain(tmp_path):
    from filelock import FileLock

    lock = tmp_path / "retrain.lock"
    with FileLock(str(lock)):
        proc = _ser("retrain", "--lock", str(lock))
    assert proc.returncode == 3
    assert "another retraining run is in progress" in proc.stderr and str(lock) in proc.stderr
