"""Model versions: the ZenML Model ``speech_emotion`` and its MLflow registered twin, kept in step.

Every training run creates a ZenML Model version linked to its predictor; the
registration step logs the same predictor to MLflow's registry. Promotion sets
the ZenML stage ``production`` and the MLflow alias ``champion`` together (not
MLflow's deprecated stages); the version promoted over records its predecessor
(``previous_production``), which is what ``rollback`` returns to.

ZenML and MLflow are imported inside the functions: the CLI imports this module.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from speech_emotion.predictor import MANIFEST, Predictor

logger = logging.getLogger(__name__)

MODEL_NAME = "speech_emotion"
ALIAS = "champion"
PREDICTOR_ARTIFACT = "predictor"


class ModelNotFound(LookupError):
    """No model version (or predictor folder) matches what was asked for."""


def _client():
    from zenml.client import Client

    return Client()


def tracking_uri() -> str | None:
    """MLflow tracking URI of the active stack's MLflow tracker (None without one)."""
    tracker = _client().active_stack.experiment_tracker
    if tracker is None or tracker.flavor != "mlflow":
        return None
    return tracker.get_tracking_uri()


def _mlflow(uri: str | None = None):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri) if uri else mlflow.MlflowClient()


def production_version(model_name: str = MODEL_NAME):
    from zenml.enums import ModelStages

    try:
        return _client().get_model_version(model_name, ModelStages.PRODUCTION)
    except KeyError:
        return None


def _has_predictor(mv) -> bool:
    return PREDICTOR_ARTIFACT in (mv.model_artifact_ids or {}) or PREDICTOR_ARTIFACT in (mv.data_artifact_ids or {})


def all_versions(model_name: str = MODEL_NAME) -> list:
    """Every version of the Model, newest first (empty when the Model does not exist)."""
    client = _client()
    try:
        client.get_model(model_name)
    except KeyError:
        return []
    page = client.list_model_versions(model_name_or_id=model_name, sort_by="desc:number", size=1000, hydrate=True)
    return list(page.items)


def get_version(spec: str, model_name: str = MODEL_NAME):
    """``production``, ``latest`` (the newest version with a predictor), a version name or a number."""
    if spec == "production":
        mv = production_version(model_name)
        if mv is None:
            raise ModelNotFound(f"model {model_name!r} has no production version")
        return mv
    if spec == "latest":
        for mv in all_versions(model_name):
            if _has_predictor(mv):
                return mv
        raise ModelNotFound(f"model {model_name!r} has no version with a predictor")
    try:
        return _client().get_model_version(model_name, spec)
    except KeyError:
        raise ModelNotFound(f"model {model_name!r} has no version {spec!r}") from None


def load_predictor(mv) -> Predictor:
    artifact = mv.get_artifact(PREDICTOR_ARTIFACT)
    if artifact is None:
        raise ModelNotFound(f"version {mv.name} of {mv.model.name} has no predictor")
    return artifact.load()


def resolve_predictor(spec: str | None, model_name: str = MODEL_NAME) -> tuple[Predictor, str]:
    """The predictor for ``ser predict --model``, and a line saying which one it is.

    ``None`` means production, falling back to the latest version with a note.
    A folder holding ``manifest.json`` is loaded directly, without ZenML.
    """
    if spec and Path(spec, MANIFEST).is_file():
        return Predictor.load(spec), f"predictor folder {spec}"
    if spec and (Path(spec).is_dir() or "/" in spec):
        raise ModelNotFound(f"{spec} is not a predictor folder: it has no {MANIFEST}")
    note = ""
    if spec is None:
        mv = production_version(model_name)
        if mv is None:
            mv = get_version("latest", model_name)
            note = " (no production version yet: using the latest)"
    else:
        mv = get_version(spec, model_name)
    stage = f", {mv.stage}" if mv.stage else ""
    return load_predictor(mv), f"{model_name} version {mv.name}{stage}{note}"


def _mlflow_version_of(mv) -> int | None:
    value = (mv.run_metadata or {}).get("mlflow_model_version")
    return int(value) if value else None


def promote(mv, mlflow_version: int | None = None, uri: str | None = None, registered_model: str = MODEL_NAME) -> None:
    """Make ``mv`` production in ZenML and ``champion`` in MLflow; remember the version it replaces."""
    previous = production_version(mv.model.name)
    _set_production(mv, mlflow_version, uri, registered_model)
    if previous is not None and previous.id != mv.id:
        _client().create_run_metadata(
            metadata={"previous_production": previous.name},
            resources=[_resource(mv)],
        )


def _set_production(mv, mlflow_version: int | None, uri: str | None, registered_model: str) -> None:
    """The ZenML stage (archiving the previous production version) and the MLflow alias, together."""
    from zenml.enums import ModelStages

    mv.set_stage(ModelStages.PRODUCTION, force=True)
    version = mlflow_version or _mlflow_version_of(mv)
    if version:
        _mlflow(uri).set_registered_model_alias(registered_model, ALIAS, str(version))
    else:
        logger.warning("version %s has no MLflow registered version: the %r alias is unchanged", mv.name, ALIAS)


def _resource(mv):
    from zenml.enums import MetadataResourceTypes
    from zenml.models import RunMetadataResource

    return RunMetadataResource(id=mv.id, type=MetadataResourceTypes.MODEL_VERSION)


def rollback(model_name: str = MODEL_NAME, uri: str | None = None):
    """Return production to the version the current one replaced; returns that version."""
    current = production_version(model_name)
    if current is None:
        raise ModelNotFound(f"model {model_name!r} has no production version to roll back")
    previous = (current.run_metadata or {}).get("previous_production")
    if not previous:
        raise ModelNotFound(f"production version {current.name} records no previous production version")
    target = get_version(str(previous), model_name)
    _set_production(target, None, uri, model_name)
    return target


def versions_table(model_name: str = MODEL_NAME) -> pd.DataFrame:
    rows = []
    for mv in all_versions(model_name):
        meta = mv.run_metadata or {}
        rows.append({
            "version": mv.name,
            "stage": str(mv.stage.value if hasattr(mv.stage, "value") else mv.stage or ""),
            "created": mv.created.strftime("%Y-%m-%d %H:%M"),
            "model": meta.get("deployed_model", ""),
            "test_f1_macro": meta.get("test_f1_macro"),
            "test_accuracy": meta.get("test_accuracy"),
            "mlflow_version": meta.get("mlflow_model_version"),
            "data_fingerprint": str(meta.get("data_fingerprint", ""))[:12],
            "predictor": _has_predictor(mv),
        })
    return pd.DataFrame(rows)


def archive_old_versions(model_name: str = MODEL_NAME, keep: int = 5) -> list[str]:
    """Archive every version beyond the newest ``keep`` that is neither in production nor archived already."""
    from zenml.enums import ModelStages

    archived = []
    for mv in all_versions(model_name)[keep:]:
        stage = str(getattr(mv.stage, "value", mv.stage) or "")
        if stage not in (ModelStages.PRODUCTION.value, ModelStages.ARCHIVED.value):
            mv.set_stage(ModelStages.ARCHIVED, force=True)
            archived.append(mv.name)
    return archived
