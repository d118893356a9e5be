"""FeatureScaler <-> ``scaler.npz``: each StandardScaler's fitted statistics, no pickle."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer

from speech_emotion.features import FeatureScaler

FILE = "scaler.npz"


class FeatureScalerMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (FeatureScaler,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: FeatureScaler) -> None:
        with self.artifact_store.open(os.path.join(self.uri, FILE), "wb") as f:
            f.write(data.to_npz())

    def load(self, data_type: type[Any]) -> FeatureScaler:
        with self.artifact_store.open(os.path.join(self.uri, FILE), "rb") as f:
            return FeatureScaler.from_npz(f.read())

    def extract_metadata(self, data: FeatureScaler) -> dict[str, Any]:
        return {"kinds": sorted(data.scalers), "fitted": bool(data.scalers), "logmel_scaling": data.logmel_scaling}
