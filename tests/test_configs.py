"""Every profile under configs/ validates against the pipeline's typed parameters,
and paper.yaml holds the seed's tables."""

from __future__ import annotations

import inspect
import typing

import pytest
import yaml
from pydantic import TypeAdapter

from speech_emotion.config import check_families
from tests.conftest import ROOT

PROFILES = sorted((ROOT / "configs").glob("*.yaml"))


def _signature(path) -> dict:
    """The parameters of the pipeline a profile is for, and their (resolved) types."""
    from pipelines.inference import inference_pipeline
    from pipelines.retraining import retraining_pipeline
    from pipelines.training import training_pipeline

    pipe = {"inference": inference_pipeline, "retrain": retraining_pipeline}.get(path.stem.split("_")[0],
                                                                                 training_pipeline)
    hints = typing.get_type_hints(pipe.entrypoint)
    return {name: hints[name] for name in inspect.signature(pipe.entrypoint).parameters}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_profile_validates(path):
    config = yaml.safe_load(path.read_text())
    params = config["parameters"]
    signature = _signature(path)
    # retraining versions the model at run time; a protocol run is an evaluation run and versions nothing
    evaluation_run = params.get("evaluation", {}).get("protocol", "holdout") != "holdout"
    if "model" in config or not ("retrain" in path.stem or evaluation_run):
        assert config["model"]["name"] == "speech_emotion"
    unknown = set(params) - set(signature)
    assert not unknown, f"{path.name}: unknown pipeline parameters {unknown}"
    for name, value in params.items():
        TypeAdapter(signature[name]).validate_python(value)
    if "families" in signature:
        check_families(params.get("families", {"cnn2d_lstm": {}}))


def test_paper_profile_is_the_seed():
    p = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())["parameters"]
    f = p["families"]
    # Table 3
    assert f["cnn2d_lstm"] == {"kernel_size": 5, "conv_blocks": 3, "filters_first": 128, "filters_next": 256,
                               "lstm_units": 48, "learning_rate": 0.0001, "optimizer": "adam"}
    # Table 5
    assert (f["cnn1d_lstm"]["kernel_size"], f["cnn1d_lstm"]["conv_blocks"], f["cnn1d_lstm"]["lstm_units"],
            f["cnn1d_lstm"]["dropout"], f["cnn1d_lstm"]["learning_rate"]) == (3, 2, 48, 0.5, 0.0002)
    # Table 8 and Table 10
    assert (f["lstm_cnn_1d"]["lstm_units"], f["lstm_cnn_1d"]["dropout"]) == (52, 0.2)
    assert (f["lstm_cnn_2d"]["lstm_units"], f["lstm_cnn_2d"]["filters_first"], f["lstm_cnn_2d"]["filters_next"]) == (64, 128, 256)
    assert set(f) == {"cnn_lstm_fused", "cnn1d_lstm", "cnn2d_lstm", "lstm_cnn_2d", "lstm_cnn_1d", "cnn_transformer",
                      "functionals_svm"}  # the six of the seed, and the classical baseline
    assert f["functionals_svm"] == {"features": "compare", "C": 10.0, "gamma": "scale"}
    # section 3 features, section 5 validation split, section 6.2 meta MLP
    assert (p["features"]["n_mfcc"], p["features"]["n_mels"], p["features"]["n_chroma"], p["features"]["duration_s"]) == (40, 128, 12, 8.0)
    assert p["split"]["val_fraction"] == 0.2
    assert (p["stacking"]["meta_units"], p["stacking"]["meta_dropout"]) == (512, 0.4)


def test_unknown_family_and_bad_hparams_are_refused():
    with pytest.raises(KeyError, match="unknown model family 'resnet'"):
        check_families({"resnet": {}})
    with pytest.raises(ValueError, match="lstm"):
        check_families({"cnn2d_lstm": {"lstm": 3}})
    with pytest.raises(ValueError, match="no model family"):
        check_families({})


def test_configuration_that_would_be_ignored_or_contradictory_is_refused():
    from pipelines.training import check_configuration
    from speech_emotion.config import AblationConfig, FeatureConfig, TuningConfig

    ok = dict(families={"cnn2d_lstm": {"filters_first": 8}}, tuning=TuningConfig(), search_spaces={},
              features=FeatureConfig(), ablation=AblationConfig(scaling=False))
    check_configuration(**ok)
    with pytest.raises(ValueError, match="tuning.space is not used"):
        check_configuration(**{**ok, "tuning": TuningConfig(space={"lstm_units": [8]})})
    with pytest.raises(ValueError, match="both fixed in families and searched"):
        check_configuration(**{**ok, "search_spaces": {"cnn2d_lstm": {"filters_first": [8, 16]}}})
    with pytest.raises(ValueError, match="not trained"):
        check_configuration(**{**ok, "search_spaces": {"cnn1d_lstm": {"dropout": [0.0]}}})
    with pytest.raises(ValueError, match="ablation families"):
        check_configuration(**{**ok, "ablation": AblationConfig(scaling=True, families=["cnn1d_lstm"])})
    with pytest.raises(ValueError, match="ablation families"):
        check_configuration(**{**ok, "ablation": AblationConfig(logmel_scaling=True, families=["cnn1d_lstm"])})
    two = {**ok, "families": {"cnn2d_lstm": {}, "cnn1d_lstm": {}}}
    check_configuration(**{**two, "ablation": AblationConfig(logmel_scaling=True, families=["cnn1d_lstm", "cnn2d_lstm"])})
    with pytest.raises(ValueError, match=r"ablation.logmel_scaling: none of ablation.families \['cnn1d_lstm'\] reads"):
        check_configuration(**{**two, "ablation": AblationConfig(logmel_scaling=True, families=["cnn1d_lstm"])})
    with pytest.raises(ValueError, match="ablation.logmel_scaling compares two log-mel scalings, but features.scale"):
        check_configuration(**{**ok, "features": FeatureConfig(scale=False),
                               "ablation": AblationConfig(logmel_scaling=True, families=["cnn2d_lstm"])})
    with pytest.raises(ValueError, match="logmel_scaling"):
        FeatureConfig(logmel_scaling="global")
    assert FeatureConfig(logmel_scaling="band").params() == FeatureConfig().params()  # the feature cache's key

    with pytest.raises(ValueError, match=r"search_spaces.cnn2d_lstm.lstm: cnn2d_lstm has no hyperparameter 'lstm'"):
        check_configuration(**{**ok, "search_spaces": {"cnn2d_lstm": {"lstm": [8]}}})
    with pytest.raises(ValueError, match=r"search_spaces.cnn2d_lstm.dropout: .*must be in \[0, 1\)"):
        check_configuration(**{**ok, "search_spaces": {"cnn2d_lstm": {"dropout": [0.0, 1.5]}}})
    with pytest.raises(ValueError, match=r"search_spaces is set for \['cnn2d_lstm'\] but tuning.enabled is false"):
        check_configuration(**{**ok, "tuning": TuningConfig(enabled=False),
                               "search_spaces": {"cnn2d_lstm": {"lstm_units": [8]}}})


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_profile_passes_the_pipeline_checks(path):
    from pipelines.training import check_configuration
    from speech_emotion.config import (
        AblationConfig,
        CorporaConfig,
        EvaluationConfig,
        FeatureConfig,
        SplitConfig,
        TuningConfig,
    )

    p = yaml.safe_load(path.read_text())["parameters"]
    if "corpora" not in p:  # the inference pipeline reads a folder, not corpora
        pytest.skip(f"{path.name} configures no training")
    check_configuration(
        p.get("families", {"cnn2d_lstm": {}}), TuningConfig(**p.get("tuning", {"enabled": False})),
        p.get("search_spaces", {}), FeatureConfig(**p.get("features", {})), AblationConfig(**p.get("ablation", {})),
        corpora=CorporaConfig(**p["corpora"]), split=SplitConfig(**p.get("split", {})),
        evaluation=EvaluationConfig(**p.get("evaluation", {})),
    )
