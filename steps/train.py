"""Train one network family on the training split, to convergence with early stopping."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from materializers import TrainedModelMaterializer
from speech_emotion.config import ModelConfig, TrainingConfig
from speech_emotion.features import FeatureSet
from speech_emotion.models.trained import TrainedModel
from speech_emotion.training import calibrate
from speech_emotion.training import train_model as fit
from steps import _tracking


def epoch_logger(prefix: str):
    """A Keras callback logging every epoch's metrics to the active MLflow run as ``prefix.metric``."""
    import keras

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            _tracking.log_metrics({f"{prefix}.{k}": float(v) for k, v in (logs or {}).items()}, step=epoch)

    return EpochLogger()


@step(experiment_tracker=True, output_materializers=TrainedModelMaterializer)
def train_model(
    train: FeatureSet, val: FeatureSet, family: str, hparams: dict, training: TrainingConfig, name: str = ""
) -> Annotated[TrainedModel, "{model_name}_model"]:
    """``hparams`` comes from the config (fixed) or from the family's tuning step (its best).

    ``name`` labels the model in MLflow and reports (default: the family), e.g.
    ``cnn2d_lstm_no_scaled`` for the scaling ablation. The output artifact is
    named ``<model_name>_model`` from the invocation's ``model_name`` substitution.
    """
    name = name or family
    _tracking.log_params(f"model.{name}", {"family": family, **hparams})
    _tracking.log_params("training", training.model_dump())
    trained = fit(train, val, ModelConfig(family=family, hparams=hparams), training, callbacks=[epoch_logger(name)])
    trained.name = name
    _tracking.log_metrics({f"{name}.n_params": float(trained.n_params),
                           f"{name}.epochs": float(len(trained.history.get("loss", [])))})
    log_calibration(trained, val, training.calibration)
    return trained


def log_calibration(trained: TrainedModel, val: FeatureSet, mode: str) -> None:
    """``training.calibration``: fit the temperature on validation (:func:`speech_emotion.training.calibrate`),
    then log it, the validation ECE before and after, and the reliability diagram, to MLflow and the
    step's metadata."""
    result = calibrate(trained, val, mode)
    if result is None:
        return
    from speech_emotion.calibration import reliability_figure

    name = trained.name
    _tracking.log_metrics({f"{name}.temperature": result.temperature, f"{name}.val_ece_uncalibrated": result.ece_before,
                           f"{name}.val_ece_calibrated": result.ece_after})
    _tracking.log_figure(reliability_figure(result.probs_before, result.probs_after, result.labels,
                                            f"{name} on val, T = {result.temperature:.3f}"),
                         f"training/{name}/reliability_val.png")
    log_metadata(metadata={"temperature": result.temperature, "val_ece_uncalibrated": result.ece_before,
                           "val_ece_calibrated": result.ece_after})
