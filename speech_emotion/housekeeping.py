"""Cleaning up without losing anything by accident.

Two kinds of things live in the project folder:

- caches, which a later run rebuilds: the per-clip feature cache and the corpus content-hash cache
  (``data/cache/``), and temporary folders (``.pytest_cache``, ``build``). ``make clean`` (=
  ``ser clean``) removes these only;
- stores, which hold every trained model, version and run and cannot be rebuilt: the ZenML store,
  its local artifact store and the MLflow tracking database, all under ``.zenml-home`` (or
  ``ZENML_CONFIG_PATH``). ``make clean-stores`` (= ``ser clean --stores``) removes them after
  saying what they hold, with the counts read from the ZenML and MLflow stores themselves, and only
  when confirmed.

ZenML and MLflow are imported inside the functions: the CLI imports this module.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

#: project-relative folders that only hold caches or temporary files
CACHE_DIRS = ("data/cache", ".pytest_cache", "build")


def cache_paths(root: Path) -> list[Path]:
    """The cache and temporary folders that exist in the project at ``root``."""
    return [root / rel for rel in CACHE_DIRS if (root / rel).exists()]


def remove_caches(root: Path) -> list[Path]:
    """Remove the caches (never a store); returns what was removed."""
    removed = []
    for path in cache_paths(root):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        removed.append(path)
    return removed


@dataclass
class StoreInventory:
    """What the stores under one ZenML config folder hold, as their own databases count it."""

    home: Path
    zenml: dict[str, int] = field(default_factory=dict)  # models, model versions, pipeline runs, artifact versions
    mlflow: dict[str, dict[str, int]] = field(default_factory=dict)  # per tracking database
    outside: list[str] = field(default_factory=list)  # stores of the stack that lie elsewhere (not deleted)
    problems: list[str] = field(default_factory=list)  # stores that could not be counted, and why

    def lines(self) -> list[str]:
        out = [f"{self.home} (ZenML store, local artifact store, MLflow tracking) holds:"]
        if self.zenml:
            z = self.zenml
            out.append(f"  ZenML: {z['models']} model(s) with {z['model_versions']} version(s), "
                       f"{z['pipeline_runs']} pipeline run(s), {z['artifact_versions']} artifact version(s)")
        for db, m in self.mlflow.items():
            out.append(f"  MLflow {db}: {m['registered_models']} registered model(s) with {m['model_versions']} "
                       f"version(s), {m['runs']} run(s) in {m['experiments']} experiment(s)")
        out += [f"  could not count: {p}" for p in self.problems]
        out += [f"  not deleted (outside {self.home.name}): {p}" for p in self.outside]
        return out


def _zenml_counts(inv: StoreInventory) -> None:
    from zenml.client import Client

    client = Client()
    inv.zenml = {
        "models": client.list_models(size=1).total,
        "model_versions": client.list_model_versions(size=1).total,
        "pipeline_runs": client.list_pipeline_runs(size=1).total,
        "artifact_versions": client.list_artifact_versions(size=1).total,
    }
    try:
        stack = client.active_stack
    except Exception:  # noqa: BLE001 - a store without a usable stack still has counts
        return
    places = [stack.artifact_store.path]
    tracker = stack.experiment_tracker
    if tracker is not None and tracker.flavor == "mlflow":
        places.append(tracker.get_tracking_uri())
    for place in places:
        local = place.removeprefix("sqlite:///").removeprefix("file://")
        if "://" in local or not Path(local).resolve().is_relative_to(inv.home.resolve()):
            inv.outside.append(place)


def _paged_total(fetch) -> int:
    total, token = 0, None
    while True:
        page = fetch(token)
        total += len(page)
        token = page.token
        if not token:
            return total


def mlflow_counts(db: Path) -> dict[str, int]:
    """Experiments, runs (every lifecycle stage, child runs included), registered models and versions."""
    import mlflow
    from mlflow.entities import ViewType

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiments = client.search_experiments(view_type=ViewType.ALL, max_results=50000)
    ids = [e.experiment_id for e in experiments]
    runs = _paged_total(lambda t: client.search_runs(ids, run_view_type=ViewType.ALL, max_results=50000,
                                                     page_token=t)) if ids else 0
    return {
        "experiments": len(experiments),
        "runs": runs,
        "registered_models": _paged_total(lambda t: client.search_registered_models(max_results=1000, page_token=t)),
        "model_versions": _paged_total(lambda t: client.search_model_versions(max_results=10000, page_token=t)),
    }


def inventory(home: Path) -> StoreInventory:
    """Count what the stores under ``home`` (the ZenML config folder in use) hold.

    Uses the ZenML client of this process, so ``ZENML_CONFIG_PATH`` must point at ``home``.
    """
    inv = StoreInventory(home=home)
    try:
        _zenml_counts(inv)
    except Exception as exc:  # noqa: BLE001 - report it, still list the rest
        inv.problems.append(f"ZenML store: {type(exc).__name__}: {exc}")
    for db in sorted(home.rglob("mlflow.db")):
        try:
            inv.mlflow[str(db.relative_to(home))] = mlflow_counts(db)
        except Exception as exc:  # noqa: BLE001
            inv.problems.append(f"MLflow {db}: {type(exc).__name__}: {exc}")
    return inv


def remove_stores(home: Path) -> None:
    shutil.rmtree(home)
