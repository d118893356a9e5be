"""Which process runs a pipeline run, and whether that process is still there.

A pipeline run on the local orchestrator lives in one process on one machine. When that process is
killed (SIGKILL, out of memory, power cut) nothing can record its end, and the run stays "running"
in ZenML and MLflow. :func:`this_process` describes the current process when a run starts; later,
:func:`process_state` says whether the described process is ``alive``, ``gone`` (provably: same
machine and boot, and no process with that id and start time; or the machine has rebooted since),
or ``unknown`` (another machine, or a remote orchestrator: not ours to judge).

No ZenML here: :mod:`pipelines._runs` records the description in the run's metadata and acts on it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

#: orchestrators whose steps run inside the process that submitted the run, on this machine
IN_PROCESS_ORCHESTRATORS = frozenset({"local"})

State = Literal["alive", "gone", "unknown"]


def boot_id() -> str:
    """This boot of this machine (Linux); empty where the kernel does not say."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class ProcessRecord:
    """Where a run runs: host name, boot id, process id and start time, and the orchestrator flavor."""

    host: str
    pid: int
    started: float  # the process's creation time (epoch seconds): a reused pid has another one
    boot_id: str
    orchestrator: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ProcessRecord":
        return cls(host=str(values["host"]), pid=int(values["pid"]), started=float(values["started"]),
                   boot_id=str(values.get("boot_id", "")), orchestrator=str(values["orchestrator"]))

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.orchestrator} orchestrator)"


def this_process(orchestrator: str) -> ProcessRecord:
    return ProcessRecord(host=socket.gethostname(), pid=os.getpid(), started=psutil.Process().create_time(),
                         boot_id=boot_id(), orchestrator=orchestrator)


def process_state(record: ProcessRecord) -> tuple[State, str]:
    """Whether the process ``record`` describes still runs, with the reason."""
    if record.orchestrator not in IN_PROCESS_ORCHESTRATORS:
        return "unknown", f"runs on the {record.orchestrator} orchestrator, which tracks its own runs"
    if record.host != socket.gethostname():
        return "unknown", f"ran on another machine ({record.host})"
    current_boot = boot_id()
    if record.boot_id and current_boot and record.boot_id != current_boot:
        return "gone", "the machine has restarted since the run started"
    try:
        started = psutil.Process(record.pid).create_time()
    except psutil.NoSuchProcess:
        return "gone", f"process {record.pid} no longer exists"
    except psutil.Error as exc:  # e.g. access denied: it exists
        return "alive", f"process {record.pid} exists ({exc.__class__.__name__})"
    if abs(started - record.started) > 1.0:
        return "gone", f"process {record.pid} no longer exists (the id now belongs to another process)"
    return "alive", f"process {record.pid} is running"
