"""FunctionalsSvm <-> ``model.skops`` (scikit-learn's recommended format, no pickle) + ``meta.json``."""

from __future__ import annotations

import tempfile
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer

from materializers._files import download_dir, upload_dir
from speech_emotion.models.functionals_svm import FunctionalsSvm, load_model, save_model


class FunctionalsSvmMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (FunctionalsSvm,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: FunctionalsSvm) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            save_model(data, tmp)
            upload_dir(tmp, self.uri)

    def load(self, data_type: type[Any]) -> FunctionalsSvm:
        with tempfile.TemporaryDirectory() as tmp:
            download_dir(self.uri, tmp)
            return load_model(tmp)

    def extract_metadata(self, data: FunctionalsSvm) -> dict[str, Any]:
        return {"family": data.family, "hparams": data.hparams, "n_params": data.n_params}
