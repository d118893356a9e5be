"""A small real pipeline with the project's run hooks, for the interrupted/killed-run tests.

``probe_pipeline``: ``first`` (tracked, opens an MLflow child run, then waits ``seconds``) ->
``second``. Each step prints a line the tests wait for.
"""

from __future__ import annotations

import time

from zenml import pipeline, step

from pipelines._runs import RUN_HOOKS
from steps import _tracking


@step(experiment_tracker=True, enable_cache=False)
def first(seconds: float) -> int:
    _tracking.log_metrics({"first_started": 1.0})
    with _tracking.child_run("first/child"):
        print("PROBE first running", flush=True)
        time.sleep(seconds)
    return 1


@step(experiment_tracker=True, enable_cache=False)
def second(value: int) -> int:
    print("PROBE second ran", flush=True)
    return value + 1


@pipeline(enable_cache=False, **RUN_HOOKS)
def probe_pipeline(seconds: float = 60.0) -> None:
    value = first(seconds)
    second(value)
