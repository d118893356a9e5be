"""Interrupted and killed runs: the process record, and real runs of a small pipeline with the
project's run hooks (tests/run_probe.py) stopped by SIGTERM / SIGINT or killed by SIGKILL."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from speech_emotion.processes import ProcessRecord, process_state, this_process
from tests.conftest import ROOT

# ----------------------------------------------------------------------------- the process record


def test_this_process_is_alive_and_survives_a_round_trip():
    record = this_process("local")
    assert ProcessRecord.from_dict(record.to_dict()) == record
    assert process_state(record)[0] == "alive"


def test_a_process_that_exited_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    import psutil

    record = dataclasses.replace(this_process("local"), pid=child.pid)
    if psutil.pid_exists(child.pid):  # the id was reused at once: then the start time tells them apart
        assert process_state(record)[0] == "gone"
    else:
        state, reason = process_state(record)
        assert state == "gone" and str(child.pid) in reason


def test_a_reused_pid_is_told_apart_by_its_start_time():
    record = dataclasses.replace(this_process("local"), started=this_process("local").started - 3600)
    state, reason = process_state(record)
    assert state == "gone" and "another process" in reason


def test_a_reboot_means_gone():
    record = this_process("local")
    if not record.boot_id:
        pytest.skip("the kernel does not say which boot this is")
    assert process_state(dataclasses.replace(record, boot_id="another-boot"))[0] == "gone"


def test_other_machines_and_remote_orchestrators_are_left_alone():
    record = this_process("local")
    assert process_state(dataclasses.replace(record, host="elsewhere.example"))[0] == "unknown"
    assert process_state(dataclasses.replace(record, orchestrator="kubernetes", pid=2**22 + 1))[0] == "unknown"


# ----------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def stack_id(zenml_home) -> str:
    from speech_emotion.cli import setup_stack

    return setup_stack(root=None, activate=False)


def _start(tmp_path, stack_id: str, name: str, seconds: float) -> tuple[subprocess.Popen, object]:
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"run_name": name, "parameters": {"seconds": seconds}}))
    log = tmp_path / f"{name}.log"
    zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
    proc = subprocess.Popen([zenml, "pipeline", "run", "tests.run_probe.probe_pipeline", "-c", str(config)],
                            cwd=ROOT, env={**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id},
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_sigint_as_from_a_terminal)
    return proc, log


def _sigint_as_from_a_terminal() -> None:
    """A suite started in the background by a non-interactive shell (``make test &``) inherits SIGINT
    ignored, and the run rightly leaves an ignored signal ignored (then only ZenML's own handler sees
    it, and the run ends failed): the probe gets SIGINT with its default action, as from a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_until_first_step(tmp_path, stack_id: str, name: str, sig: int) -> tuple[int, str]:
    """Start a probe run, send ``sig`` once its first step runs; its exit status and output."""
    proc, log = _start(tmp_path, stack_id, name, seconds=600)
    try:
        deadline = time.time() + 300
        while "PROBE first running" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        proc.send_signal(sig)
        return proc.wait(timeout=120), log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _mlflow(run_name: str):
    import mlflow
    from zenml.client import Client
    from zenml.stack.stack_component import StackComponent

    tracker = Client().get_stack_component("experiment_tracker", "mlflow_tracker")
    client = mlflow.MlflowClient(tracking_uri=StackComponent.from_model(tracker).get_tracking_uri())
    experiment = client.get_experiment_by_name("probe_pipeline")
    runs = client.search_runs([experiment.experiment_id], filter_string=f'tags.mlflow.runName = "{run_name}"')
    assert len(runs) == 1
    children = client.search_runs([experiment.experiment_id],
                                  filter_string=f'tags.mlflow.parentRunId = "{runs[0].info.run_id}"')
    return runs[0], children


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_run_and_mlflow_says_killed(tmp_path, stack_id, sig):
    from zenml.client import Client

    name = f"probe_{sig.name}"
    code, output = _run_until_first_step(tmp_path, stack_id, name, sig)
    assert code != 0
    assert "PROBE second ran" not in output  # the run stopped: nothing after the signal
    run = Client().get_pipeline_run(name)
    assert run.status.value == "stopped", output[-3000:]
    assert sig.name in run.get_body().status_reason and "'first'" in run.get_body().status_reason
    mlrun, children = _mlflow(name)
    assert mlrun.info.status == "KILLED"
    assert mlrun.data.tags["ser.end_reason"] == run.get_body().status_reason
    assert sig.name in mlrun.data.tags["mlflow.note.content"]  # the run's description in the MLflow UI
    assert [c.info.status for c in children] == ["KILLED"]  # the step's open child run too


@pytest.mark.slow
def test_killed_runs_are_marked_by_ser_runs_clean_and_by_the_next_run(tmp_path, stack_id):
    from zenml.client import Client

    code, _ = _run_until_first_step(tmp_path, stack_id, "probe_killed_1", signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert Client().get_pipeline_run("probe_killed_1").status.value == "running"
    assert _mlflow("probe_killed_1")[0].info.status == "RUNNING"  # what SIGKILL leaves behind
    record = Client().get_pipeline_run("probe_killed_1").run_metadata["ser_process"]
    assert record["orchestrator"] == "local" and record["pid"] > 0 and record["host"]

    ser = os.path.join(os.path.dirname(sys.executable), "ser")
    env = {**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id}
    dry = subprocess.run([ser, "runs", "clean", "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert dry.returncode == 0 and "probe_killed_1" in dry.stdout and "would be marked" in dry.stdout
    assert Client().get_pipeline_run("probe_killed_1").status.value == "running"
    clean = subprocess.run([ser, "runs", "clean"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0 and "probe_killed_1" in clean.stdout, clean.stdout + clean.stderr
    run = Client().get_pipeline_run("probe_killed_1")
    assert run.status.value == "failed" and "ser runs clean" in run.get_body().status_reason
    assert all(s.status.value == "failed" for s in run.steps.values())
    mlrun, children = _mlflow("probe_killed_1")
    assert mlrun.info.status == "KILLED" and "ser runs clean" in mlrun.data.tags["ser.end_reason"]
    assert [c.info.status for c in children] == ["KILLED"]

    # killed again; this time the next pipeline run finds it, and says so
    _run_until_first_step(tmp_path, stack_id, "probe_killed_2", signal.SIGKILL)
    proc, log = _start(tmp_path, stack_id, "probe_after_kill", seconds=0)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    run = Client().get_pipeline_run("probe_killed_2")
    assert run.status.value == "failed" and "run 'probe_after_kill'" in run.get_body().status_reason
    mlrun, _ = _mlflow("probe_killed_2")
    assert mlrun.info.status == "KILLED" and "run 'probe_after_kill'" in mlrun.data.tags["ser.end_reason"]
    assert Client().get_pipeline_run("probe_after_kill").status.value == "completed"
    assert _mlflow("probe_after_kill")[0].info.status == "FINISHED"
