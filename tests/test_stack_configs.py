"""The Kubernetes and Kubeflow recipes (configs/stacks/) against the installed ZenML's own config classes.

No cluster is needed: the run configs parse as ZenML run configurations, their parameters validate against the
pipeline's signature and equal configs/paper.yaml's but for storage and resources, their settings validate
against the Docker, Kubernetes and Kubeflow settings classes, and every option of every `zenml ... register`
line of the shell recipes is a field of that flavor's configuration.
"""

from __future__ import annotations

import inspect
import re
import shlex
import typing

import pytest
import yaml
from pydantic import TypeAdapter

from tests.conftest import ROOT

STACKS = ROOT / "configs" / "stacks"
KINDS = ("kubernetes", "kubeflow")


def _orchestrator_settings(kind: str):
    if kind == "kubernetes":
        from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings

        return KubernetesOrchestratorSettings
    from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import KubeflowOrchestratorSettings

    return KubeflowOrchestratorSettings


def _validate_orchestrator_settings(settings_class, values: dict) -> dict:
    """Validate orchestrator settings. Pod settings' validators build the Kubernetes client's models: without the
    ``kubernetes`` package (ZenML's kubernetes integration, not installed here) their keys are checked against
    ``KubernetesPodSettings`` and the rest of the settings validated fully."""
    from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings

    try:
        import kubernetes  # noqa: F401
    except ImportError:
        pod = values.get("pod_settings", {})
        assert set(pod) <= set(KubernetesPodSettings.model_fields), set(pod) - set(KubernetesPodSettings.model_fields)
        assert set(values) <= set(settings_class.model_fields), set(values) - set(settings_class.model_fields)
        try:  # Kubeflow's settings build pod settings even when none are given: only the names can be checked
            settings_class.model_validate({k: v for k, v in values.items() if k != "pod_settings"})
        except ModuleNotFoundError as err:
            assert err.name == "kubernetes", err
    else:
        settings_class.model_validate(values)
    return values


@pytest.mark.parametrize("kind", KINDS)
def test_run_config_validates_against_zenml_and_the_pipeline(kind):
    from zenml.config import DockerSettings
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    from pipelines.training import check_configuration, training_pipeline
    from steps.resources import step_settings

    raw = yaml.safe_load((STACKS / f"{kind}.yaml").read_text())
    run = PipelineRunConfiguration.model_validate(raw)
    # every parameter is one of the pipeline's, of its type
    hints = typing.get_type_hints(training_pipeline.entrypoint)
    assert set(run.parameters) <= set(hints), set(run.parameters) - set(hints)
    values = {name: TypeAdapter(hints[name]).validate_python(value) for name, value in run.parameters.items()}
    check_configuration(values["families"], values["tuning"], values.get("search_spaces", {}), values["features"],
                        values["ablation"], corpora=values["corpora"], split=values["split"])

    # the seed's settings, as configs/paper.yaml has them: only storage and resources differ
    paper = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())["parameters"]
    ours = raw["parameters"]
    assert {k: v for k, v in ours.items() if k not in ("corpora", "features", "resources")} == \
        {k: v for k, v in paper.items() if k not in ("corpora", "features")}
    assert {k: v for k, v in ours["features"].items() if k != "cache_dir"} == \
        {k: v for k, v in paper["features"].items() if k != "cache_dir"}
    assert set(ours["corpora"]) == set(paper["corpora"])
    assert all(root.startswith("s3://") for root in ours["corpora"].values())
    assert ours["features"]["cache_dir"].startswith("s3://")

    # settings: the image installs the project and libsndfile; the orchestrator's pod settings are valid
    docker = DockerSettings.model_validate(raw["settings"]["docker"])
    assert "libsndfile1" in docker.apt_packages and "pip install" in docker.local_project_install_command
    assert (ROOT / docker.build_config.dockerignore).is_file()
    orchestrator = _orchestrator_settings(kind)
    _validate_orchestrator_settings(orchestrator, raw["settings"]["orchestrator"])

    # training and tuning request a GPU (ResourceSettings) and GPU nodes (pod settings); features request cores
    resources = values["resources"]
    gpu = step_settings(resources.gpu)["settings"]
    assert gpu["resources"].gpu_count == 1
    pod = _validate_orchestrator_settings(orchestrator, gpu["orchestrator"])["pod_settings"]
    assert pod["tolerations"] and pod["node_selectors"]
    cpu = step_settings(resources.cpu)["settings"]
    assert cpu["resources"].cpu_count >= values["features"].workers and not cpu["resources"].gpu_count


def test_steps_declare_their_kind_and_ask_nothing_by_default():
    from zenml.config import ResourceSettings

    from pipelines.training import training_pipeline
    from speech_emotion.config import ResourcesConfig, StepResources
    from steps import extract_features, ingest_corpora, train_model, tune_model
    from steps.resources import step_settings, with_resources

    assert step_settings(StepResources()) == {}  # the local stack: no request, no warning per step
    assert with_resources(train_model, ResourcesConfig()) is train_model
    resources = ResourcesConfig(gpu={"gpu_count": 1, "step_operator": "gpu_op"}, cpu={"cpu_count": 4})
    for step in (train_model, tune_model):
        configured = with_resources(step, resources).configuration
        assert ResourceSettings.model_validate(configured.settings["resources"].model_dump()).gpu_count == 1
        assert configured.step_operator == "gpu_op"
    for step in (ingest_corpora, extract_features):
        configured = with_resources(step, resources).configuration
        requested = ResourceSettings.model_validate(configured.settings["resources"].model_dump())
        assert requested.cpu_count == 4 and requested.gpu_count is None and configured.step_operator is None
    assert inspect.signature(training_pipeline.entrypoint).parameters["resources"].default == ResourcesConfig()


def _register_lines(script: str) -> list[list[str]]:
    """The `zenml ... register` commands, continuation lines joined, variables replaced by their defaults."""
    defaults = dict(re.findall(r"^(\w+)=\$\{\w+:-([^}]*)\}", script, flags=re.M))
    text = re.sub(r"\\\n\s*", " ", script)
    text = re.sub(r"\$(\w+)", lambda m: defaults.get(m.group(1), "x"), text)
    return [shlex.split(line, comments=True) for line in text.splitlines()
            if re.match(r"\s*zenml ([a-z-]+ register|secret create) ", line)]


def _flavor_config(component: str, flavor: str):
    from zenml.integrations.aws.flavors import AWSContainerRegistryFlavor
    from zenml.integrations.kaniko.flavors import KanikoImageBuilderFlavor
    from zenml.integrations.kubeflow.flavors import KubeflowOrchestratorFlavor
    from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorFlavor, KubernetesStepOperatorFlavor
    from zenml.integrations.mlflow.flavors import MLFlowExperimentTrackerFlavor
    from zenml.integrations.s3.flavors import S3ArtifactStoreFlavor

    flavors = {
        ("artifact-store", "s3"): S3ArtifactStoreFlavor, ("container-registry", "aws"): AWSContainerRegistryFlavor,
        ("image-builder", "kaniko"): KanikoImageBuilderFlavor, ("experiment-tracker", "mlflow"): MLFlowExperimentTrackerFlavor,
        ("orchestrator", "kubernetes"): KubernetesOrchestratorFlavor, ("orchestrator", "kubeflow"): KubeflowOrchestratorFlavor,
        ("step-operator", "kubernetes"): KubernetesStepOperatorFlavor,
    }
    return flavors[(component, flavor)]().config_class


@pytest.mark.parametrize("kind", KINDS)
def test_register_commands_use_each_flavors_own_options(kind):
    script = (STACKS / f"{kind}.sh").read_text()
    lines = _register_lines(script)
    registered = {}
    from zenml.client import Client

    for words in lines:
        if words[1] == "secret":  # the recipe's secrets, with dummy values: the secret references must resolve
            name = f"{words[3]}"
            try:
                Client().get_secret(name)
            except KeyError:
                Client().create_secret(name, values={o.removeprefix("--").split("=", 1)[0]: "dummy" for o in words[4:]})
            continue
        component, name, options = words[1], words[3], words[4:]
        if component == "stack":
            continue
        values = dict(o.removeprefix("--").split("=", 1) for o in options)
        flavor = values.pop("flavor")
        config_class = _flavor_config(component, flavor)
        assert set(values) <= set(config_class.model_fields), (component, set(values) - set(config_class.model_fields))
        try:
            config_class(**values)  # secret references, URIs: valid values
        except ModuleNotFoundError as err:  # Kubeflow's config builds pod settings (the kubernetes client's models)
            assert err.name == "kubernetes" and flavor == "kubeflow", err
        registered[name] = component
    stack = next(words for words in lines if words[1] == "stack")
    flags = {"-o": "orchestrator", "-a": "artifact-store", "-c": "container-registry", "-i": "image-builder",
             "-e": "experiment-tracker", "-s": "step-operator"}
    given = dict(zip(stack[4::2], stack[5::2])) if "--set" not in stack else dict(zip(stack[4:-1:2], stack[5:-1:2]))
    assert {flags[f]: registered[n] for f, n in given.items() if f in flags} == {flags[f]: flags[f] for f in given
                                                                                   if f in flags}
    assert set(flags) <= set(given)
