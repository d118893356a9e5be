"""Stacking ensemble (seed section 6.2): seven one-vs-rest CNN2D-LSTMs, frozen, under an MLP."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from materializers import TrainedModelMaterializer
from speech_emotion.features import FeatureSet
from speech_emotion.models.stacking import StackingConfig, train_stacking
from speech_emotion.models.trained import TrainedModel
from steps import _tracking
from steps.train import epoch_logger, log_calibration


@step(experiment_tracker=True, output_materializers=TrainedModelMaterializer)
def train_stacking_model(train: FeatureSet, val: FeatureSet, config: StackingConfig,
                         calibration: str = "none") -> Annotated[TrainedModel, "stacking_model"]:
    """``calibration`` is ``training.calibration``: the stacking model's probabilities are
    temperature-scaled on validation as every family's are."""
    _tracking.log_params("stacking", config.model_dump())
    trained = train_stacking(train, val, config, callbacks_factory=lambda stage: [epoch_logger(f"stacking.{stage}")])
    _tracking.log_metrics({"stacking.n_params": float(trained.n_params)})
    log_calibration(trained, val, calibration)
    return trained
