"""Keras 3 materializer: TrainedModel <-> ``model.keras`` (Keras 3 native format) + ``model.json``.

ZenML's tensorflow integration pins TF < 2.15 and Keras 2; this one uses
``keras.saving`` of Keras 3 and imports Keras only when a model is saved or loaded.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from materializers._files import download_dir, upload_dir
from speech_emotion.models.trained import TrainedModel, load_trained, save_trained

#: model.keras and model.json
STEM = "model"


class TrainedModelMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TrainedModel,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: TrainedModel) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            save_trained(data, tmp, STEM)
            upload_dir(tmp, self.uri)

    def load(self, data_type: type[Any]) -> TrainedModel:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            download_dir(self.uri, tmp)
            return load_trained(tmp, STEM)

    def extract_metadata(self, data: TrainedModel) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": data.name, "family": data.family, "input": str(data.input_name),
                                "n_params": data.n_params, "temperature": data.temperature}
        meta.update({f"hp_{k}": v for k, v in data.hparams.items()})
        if data.history.get("val_loss"):
            meta["epochs"] = len(data.history["val_loss"])
            meta["best_val_loss"] = min(data.history["val_loss"])
        return meta

    def save_visualizations(self, data: TrainedModel) -> dict[str, VisualizationType]:
        if not data.history:
            return {}
        from speech_emotion.reports import figure_png, training_curves_figure

        path = os.path.join(self.uri, "training_curves.png")
        with self.artifact_store.open(path, "wb") as f:
            f.write(figure_png(training_curves_figure(data.history, data.name)))
        return {path: VisualizationType.IMAGE}
