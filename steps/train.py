"""Train one network family on the training split."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from materializers import TrainedModelMaterializer
from speech_emotion.config import ModelConfig, TrainingConfig
from speech_emotion.features import FeatureSet
from speech_emotion.models.trained import TrainedModel
from speech_emotion.training import train_model as fit
from steps import _tracking


class _EpochLogger:
    """Keras callback logging every epoch's metrics to the active MLflow run."""

    def __new__(cls, prefix: str):
        import keras

        class EpochLogger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                _tracking.log_metrics({f"{prefix}.{k}": float(v) for k, v in (logs or {}).items()}, step=epoch)

        return EpochLogger()


@step(experiment_tracker=True, output_materializers=TrainedModelMaterializer)
def train_model(
    train: FeatureSet, val: FeatureSet, model: ModelConfig, training: TrainingConfig
) -> Annotated[TrainedModel, "model"]:
    _tracking.log_params(f"model.{model.family}", {"family": model.family, **model.hparams})
    _tracking.log_params("training", training.model_dump())
    trained = fit(train, val, model, training, callbacks=[_EpochLogger(model.family)])
    _tracking.log_params(f"model.{model.family}.resolved", trained.hparams)
    _tracking.log_metrics({f"{model.family}.n_params": float(trained.n_params),
                           f"{model.family}.epochs": float(len(trained.history.get("loss", [])))})
    return trained
