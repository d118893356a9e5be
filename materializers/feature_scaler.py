"""FeatureScaler <-> ``scaler.npz``: each StandardScaler's fitted statistics, no pickle."""

from __future__ import annotations

import io
import os
from typing import Any, ClassVar

import numpy as np
from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer

from speech_emotion.features import FeatureScaler

FILE = "scaler.npz"
_FIELDS = ("mean_", "var_", "scale_", "n_samples_seen_")


class FeatureScalerMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (FeatureScaler,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: FeatureScaler) -> None:
        arrays = {}
        for kind, scaler in data.scalers.items():
            for name in _FIELDS:
                arrays[f"{kind}.{name}"] = np.asarray(getattr(scaler, name))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with self.artifact_store.open(os.path.join(self.uri, FILE), "wb") as f:
            f.write(buf.getvalue())

    def load(self, data_type: type[Any]) -> FeatureScaler:
        from sklearn.preprocessing import StandardScaler

        with self.artifact_store.open(os.path.join(self.uri, FILE), "rb") as f:
            data = np.load(io.BytesIO(f.read()), allow_pickle=False)
            kinds = sorted({key.split(".", 1)[0] for key in data.files})
            scalers = {}
            for kind in kinds:
                scaler = StandardScaler()
                for name in _FIELDS:
                    value = data[f"{kind}.{name}"]
                    setattr(scaler, name, value if value.ndim else value.item())
                scaler.n_features_in_ = scaler.mean_.shape[0]
                scalers[kind] = scaler
        return FeatureScaler(scalers)

    def extract_metadata(self, data: FeatureScaler) -> dict[str, Any]:
        return {"kinds": sorted(data.scalers), "fitted": bool(data.scalers)}
