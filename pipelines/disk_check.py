"""Before a run starts: can the stack's stores and the caches be written?

A read-only or full ZenML store folder, artifact store or MLflow tracking folder would fail the run
part-way, in a deep traceback. Checked here, in the pipeline function (which ZenML runs when it
compiles the run, before it records anything), the run is refused with one message per place,
naming it and what to do. A cache that cannot be written only gets a warning: the run goes on
without it (:class:`speech_emotion.features.FeatureCache`).
"""

from __future__ import annotations

from pathlib import Path

from speech_emotion.disks import Place, check_places

SPACE = "free space there (`make clean-stores` removes every old run and model, `make clean` the caches)"


def _local(uri: str) -> Path | None:
    """The folder of a local store URI (a path, file:, sqlite:///), or None for a remote one."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file://").removeprefix("file:"))
    return None if "://" in uri else Path(uri)


def stack_places() -> list[Place]:
    """The active stack's local places that every run writes to."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    places = [Place(Path(GlobalConfiguration().config_directory), "the ZenML store folder",
                     f"{SPACE}, or make it writable, or point ZENML_CONFIG_PATH at a writable folder with room")]
    stack = Client().active_stack
    artifacts = _local(stack.artifact_store.path)
    if artifacts is not None:
        places.append(Place(artifacts, "the artifact store",
                            f"{SPACE}, or make it writable, or use a stack whose artifact store is elsewhere "
                            "(`zenml artifact-store register NAME --flavor local --path DIR`)"))
    tracker = stack.experiment_tracker
    if tracker is not None and tracker.flavor == "mlflow":
        mlflow_dir = _local(tracker.get_tracking_uri())
        if mlflow_dir is not None:
            places.append(Place(mlflow_dir, "the MLflow tracking folder",
                                f"{SPACE}, or make it writable, or set the tracker's tracking_uri to another place"))
    return places


def check_storage(cache_dirs: dict[str, str | None] | None = None, root: Path | None = None) -> None:
    """Refuse the run (``SystemExit`` with the message, no traceback) when a store cannot be written;
    warn for each cache in ``cache_dirs`` (what -> folder, relative to ``root``, default the project
    root) that cannot."""
    if root is None:
        from zenml.utils import source_utils

        root = Path(source_utils.get_source_root())
    caches = [Place(root / folder, what, "the run goes on without it; free space there, make it writable, or "
                    "point it at another folder")
              for what, folder in (cache_dirs or {}).items() if folder and _local(folder) is not None]  # not s3://
    problems = check_places(stack_places(), caches)
    if problems:
        raise SystemExit("cannot start the run:\n" + "\n".join(f"- {p}" for p in problems))
