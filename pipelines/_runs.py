"""Interrupted and killed runs: ZenML and MLflow say what happened to them.

Every pipeline of the project carries these hooks (:data:`RUN_HOOKS`):

- ``on_init`` (once per run, in the orchestrator's process, before any step): on the local
  orchestrator, SIGTERM and SIGINT stop the run: the handler asks ZenML to stop it, with the reason
  (one store write), and raises KeyboardInterrupt, so that no further step starts. Left to itself,
  ZenML 0.98 marks the current step and the run failed and goes on with every step that does not
  depend on the interrupted one.
- ``on_start`` (before each step that executes; cached steps do not): records once per run which
  process runs it, as the run's metadata ``ser_process`` (host, boot id, pid, the process's start
  time, orchestrator flavor); and, once per process, marks the runs whose process is gone
  (:func:`clean_stale_runs`).
- ``on_failure``: when a step was interrupted by SIGTERM or SIGINT, its MLflow run (and its open
  child runs) end ``KILLED`` (ZenML's clean-up would end them ``FAILED``) with the note (MLflow tag
  ``ser.end_reason`` and the run's description; the ZenML run, ``stopped``, has it as its status
  reason), before the process exits. A signal between two steps is marked at exit.

A run killed outright (SIGKILL, out of memory, power cut) cannot record anything. The next run's
first executed step, or ``ser runs clean``, finds runs still marked running whose recorded process
is gone from this machine, and marks them failed in ZenML and ``KILLED`` in MLflow, with a note
naming who found them. Runs on other machines or remote orchestrators, and runs without the
record, are left alone (see :func:`speech_emotion.processes.process_state`).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
from typing import Any

from speech_emotion.processes import IN_PROCESS_ORCHESTRATORS, ProcessRecord, process_state, this_process

logger = logging.getLogger(__name__)

#: the run metadata key holding the :class:`ProcessRecord` of the process that runs the run
METADATA_KEY = "ser_process"
#: MLflow tag with the note on why a run ended as it did
END_REASON_TAG = "ser.end_reason"
_DESCRIPTION_TAG = "mlflow.note.content"

_signal_received: int | None = None  # the signal that stops this process's run, once one came
_recorded_runs: set[str] = set()  # runs whose process record this process has written
_current: dict[str, str] = {}  # the run this process executes: id and name (once a step started)
_marked: set[str] = set()  # runs this process has already marked as interrupted
_cleaned = False


# ----------------------------------------------------------------------------- where we are


def _orchestrator_flavor() -> str:
    from zenml.client import Client

    return str(Client().active_stack.orchestrator.flavor)


def _current_run():
    """(pipeline run, step run or None) of the running step, or of a dynamic pipeline's run."""
    from zenml import get_step_context

    try:
        context = get_step_context()
        return context.pipeline_run, context.step_run
    except RuntimeError:
        pass
    from zenml.execution.pipeline.dynamic.run_context import DynamicPipelineRunContext

    context = DynamicPipelineRunContext.get()
    return (context.run, None) if context is not None else (None, None)


def _tracking_uri() -> str | None:
    from zenml.client import Client

    tracker = Client().active_stack.experiment_tracker
    if tracker is None or tracker.flavor != "mlflow":
        return None
    return tracker.get_tracking_uri()


# ----------------------------------------------------------------------------- signals


def _stop_on_signal(signum: int, frame: Any) -> None:
    global _signal_received
    first = _signal_received is None
    _signal_received = signum
    if first:
        _request_stop()
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received: the run stops")


def _request_stop() -> None:
    """Ask ZenML to stop the run, with the reason: once its running step has ended (failed, from the
    KeyboardInterrupt raised next), the run is ``stopped`` instead of ``failed``. One store write,
    from the signal handler (as ZenML's own handler does); if it fails the run ends ``failed``."""
    try:
        from zenml import get_step_context

        try:
            context = get_step_context()
            run_id, run_name, step = str(context.pipeline_run.id), context.pipeline_run.name, context.step_run.name
        except RuntimeError:  # between two steps
            run_id, run_name, step = _current.get("id"), _current.get("name"), None
        if run_id is None:
            return  # no step has started: ZenML marks the run failed
        from uuid import UUID

        from zenml.client import Client
        from zenml.enums import ExecutionStatus
        from zenml.models import PipelineRunUpdate

        note = _interruption_note(step)
        _current.update(id=run_id, name=run_name, note=note)
        Client().zen_store.update_run(UUID(run_id), PipelineRunUpdate(status=ExecutionStatus.STOPPING,
                                                                      status_reason=note))
    except Exception as exc:
        logger.warning("could not ask ZenML to stop the run: %s", exc)


def on_init() -> None:
    """Pipeline init hook: on the local orchestrator, SIGTERM and SIGINT stop the whole run."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if _orchestrator_flavor() not in IN_PROCESS_ORCHESTRATORS:
            return  # a remote orchestrator stops its own runs
    except Exception as exc:  # never stop a run from starting
        logger.warning("could not tell the orchestrator (%s): signals keep ZenML's handling", exc)
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # e.g. nohup: whoever started us wants it ignored
            signal.signal(sig, _stop_on_signal)
    atexit.register(_mark_at_exit)


def is_interruption(exc: BaseException | None) -> bool:
    """A signal stopped the step (our handler, Ctrl-C, or ZenML's own signal handler)."""
    from steps._tracking import interrupted

    return _signal_received is not None or (exc is not None and interrupted(exc))


def _interruption_note(step_name: str | None) -> str:
    what = signal.Signals(_signal_received).name if _signal_received is not None else "SIGTERM or SIGINT"
    where = f" while step '{step_name}' ran" if step_name else " between two steps"
    return f"stopped by {what}{where} (pid {os.getpid()} on {socket.gethostname()})"


def on_failure(exception: BaseException | None = None) -> None:
    """Step (static pipelines) or run (dynamic) failure hook: an interrupted run's MLflow run ends KILLED."""
    if not is_interruption(exception):
        return
    try:
        run, step_run = _current_run()
        if run is None or str(run.id) in _marked:
            return
        note = _current.get("note") or _interruption_note(step_run.name if step_run is not None else None)
        _end_active_mlflow_runs("KILLED")  # before ZenML's clean-up would end them FAILED
        uri = _tracking_uri()
        if uri is not None:
            mark_mlflow_killed(uri, run.name, note)
        _marked.add(str(run.id))
        logger.warning("run %s: %s; MLflow run marked KILLED", run.name, note)
    except Exception as exc:
        logger.warning("could not mark the interrupted run in MLflow: %s", exc)


def _mark_at_exit() -> None:
    """A signal that came between two steps (no failure hook ran): mark the MLflow run at exit."""
    if _signal_received is None or not _current.get("id") or _current["id"] in _marked:
        return
    try:
        uri = _tracking_uri()
        if uri is not None:
            mark_mlflow_killed(uri, _current["name"], _current.get("note") or _interruption_note(None))
        _marked.add(_current["id"])
    except Exception as exc:
        logger.warning("could not mark the interrupted run %s in MLflow: %s", _current.get("name"), exc)


def _end_active_mlflow_runs(status: str) -> None:
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run(status=status)


# ----------------------------------------------------------------------------- MLflow


def mark_mlflow_killed(tracking_uri: str, run_name: str, note: str) -> list[str]:
    """End the MLflow run named after a ZenML run, and its open child runs, as KILLED with ``note``.

    Returns the ids of the runs changed. A run that FINISHED or FAILED is marked KILLED too: its
    pipeline run did not finish, and a step's clean-up may have ended it FAILED before a run-level
    hook (dynamic pipelines) got here."""
    import mlflow
    from mlflow.entities import ViewType

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    roots = [r for r in client.search_runs(experiments, filter_string=f'tags.mlflow.runName = "{run_name}"',
                                           run_view_type=ViewType.ALL)
             if "zenml" in r.data.tags and "mlflow.parentRunId" not in r.data.tags]
    changed = []
    for root in roots:
        client.set_tag(root.info.run_id, END_REASON_TAG, note)
        description = root.data.tags.get(_DESCRIPTION_TAG, "")
        if note not in description:
            client.set_tag(root.info.run_id, _DESCRIPTION_TAG, f"{description}\n\n{note}".strip())
        if root.info.status != "KILLED":
            client.set_terminated(root.info.run_id, status="KILLED")
            changed.append(root.info.run_id)
        pending = [root.info.run_id]
        while pending:  # open child runs (tuning families, trials)
            parent = pending.pop()
            for child in client.search_runs([root.info.experiment_id],
                                            filter_string=f'tags.mlflow.parentRunId = "{parent}"'):
                pending.append(child.info.run_id)
                if child.info.status in ("RUNNING", "SCHEDULED"):
                    client.set_tag(child.info.run_id, END_REASON_TAG, note)
                    client.set_terminated(child.info.run_id, status="KILLED")
                    changed.append(child.info.run_id)
    return changed


# ----------------------------------------------------------------------------- killed runs


@dataclass
class StaleRun:
    """A run marked running in ZenML, and what :func:`clean_stale_runs` made of it."""

    name: str
    status: str
    state: str  # alive | gone | unknown
    reason: str
    marked: bool = False


_OPEN = ("initializing", "provisioning", "running", "stopping")


def clean_stale_runs(found_by: str, dry_run: bool = False) -> list[StaleRun]:
    """Mark runs whose process is gone as failed (ZenML) and KILLED (MLflow), with a note naming
    ``found_by``; leave the others alone. Returns every run that was marked running."""
    from zenml.client import Client

    client = Client()
    runs = []
    for status in _OPEN:
        runs += client.list_pipeline_runs(status=status, size=1000, hydrate=True).items
    uri = None
    found = []
    for run in runs:
        record = (run.run_metadata or {}).get(METADATA_KEY)
        if not isinstance(record, dict):
            found.append(StaleRun(run.name, str(run.status.value), "unknown",
                                  "no process recorded for it (it ran no step, or ran elsewhere)"))
            continue
        process = ProcessRecord.from_dict(record)
        state, reason = process_state(process)
        item = StaleRun(run.name, str(run.status.value), state, f"{process.describe()}: {reason}")
        found.append(item)
        if state != "gone" or dry_run:
            continue
        note = f"killed: {process.describe()} is gone ({reason}); marked by {found_by}"
        try:
            _mark_zenml_failed(run, note)
            uri = uri or _tracking_uri()
            if uri is not None:
                mark_mlflow_killed(uri, run.name, note)
            item.marked = True
            logger.warning("run %s was left running by a process that is gone: marked failed (%s)", run.name, note)
        except Exception as exc:  # e.g. another run marked it a moment ago
            item.reason += f"; not marked: {exc}"
    return found


def _mark_zenml_failed(run, note: str) -> None:
    from zenml.client import Client
    from zenml.enums import ExecutionStatus
    from zenml.models import PipelineRunUpdate
    from zenml.orchestrators.publish_utils import publish_step_run_status_update
    from zenml.utils.time_utils import utc_now

    for step in run.steps.values():
        if not step.status.is_finished:
            publish_step_run_status_update(step.id, ExecutionStatus.FAILED, end_time=utc_now())
    Client().zen_store.update_run(run.id, PipelineRunUpdate(status=ExecutionStatus.FAILED, status_reason=note))


def on_start() -> None:
    """Step (static) or run (dynamic) start hook: record this run's process; clean up after killed runs."""
    global _cleaned
    try:
        run, _ = _current_run()
        if run is None:
            return
        flavor = _orchestrator_flavor()
        _current.update(id=str(run.id), name=run.name)
        if str(run.id) not in _recorded_runs:
            from zenml import log_metadata

            log_metadata(metadata={METADATA_KEY: this_process(flavor).to_dict()}, run_id_name_or_prefix=run.id)
            _recorded_runs.add(str(run.id))
        if flavor in IN_PROCESS_ORCHESTRATORS and not _cleaned:
            _cleaned = True
            clean_stale_runs(found_by=f"run '{run.name}'")
    except Exception as exc:  # bookkeeping must never fail a step
        logger.warning("could not record this run's process or clean up killed runs: %s", exc)


#: the keyword arguments every pipeline of the project passes to ``@pipeline``
RUN_HOOKS: dict[str, Any] = {"on_init": on_init, "on_start": on_start, "on_failure": on_failure}
