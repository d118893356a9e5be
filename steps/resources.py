"""Steps declare their resource needs through ZenML settings.

Which steps are of which kind lives here (:data:`GPU_STEPS`, :data:`CPU_STEPS`); how much each kind asks
for comes from the run configuration (``parameters.resources``, :class:`speech_emotion.config.ResourcesConfig`):
nothing by default (the local orchestrator ignores requests and warns about each), a GPU per training and
tuning step and cores for ingestion and features in ``configs/stacks/*.yaml``.
"""

from __future__ import annotations

from typing import Any

from zenml.config import ResourceSettings

from speech_emotion.config import ResourcesConfig, StepResources

#: Keras fitting: a GPU when there is one (tensorflow places work on it by itself)
GPU_STEPS = ("tune_model", "train_model", "train_stacking_model")
#: decoding and DSP on CPU cores; the three feature-extraction steps are independent and can run at once
CPU_STEPS = ("ingest_corpora", "check_for_new_data", "extract_features", "augment_training_features",
             "extract_functionals", "tune_functionals_svm", "train_functionals_svm_model")


def step_settings(resources: StepResources) -> dict[str, Any]:
    """The ``settings`` (and ``step_operator``) a step of this kind is given: empty when nothing is asked."""
    out: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    requested = {k: v for k, v in resources.model_dump(include={"cpu_count", "gpu_count", "memory"}).items()
                 if v is not None}
    if requested:
        settings["resources"] = ResourceSettings(**requested)
    if resources.orchestrator:
        settings["orchestrator"] = dict(resources.orchestrator)
    if resources.step_operator_settings:
        settings["step_operator"] = dict(resources.step_operator_settings)
    if settings:
        out["settings"] = settings
    if resources.step_operator:
        out["step_operator"] = resources.step_operator
    return out


def with_resources(step, resources: ResourcesConfig):
    """``step`` with the settings of its kind (itself when its kind asks for nothing)."""
    name = step.name
    kind = resources.gpu if name in GPU_STEPS else resources.cpu if name in CPU_STEPS else None
    if kind is None:
        raise ValueError(f"step {name!r} is neither in GPU_STEPS nor in CPU_STEPS")
    options = step_settings(kind)
    return step.with_options(**options) if options else step
