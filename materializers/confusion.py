"""ConfusionMatrices <-> ``confusion.npz`` (counts, no pickle), with one PNG visualization per matrix.

The dashboard shows each matrix as an image next to the step's HTML report.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any, ClassVar

import numpy as np
from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from speech_emotion.evaluation import ConfusionMatrices

FILE = "confusion.npz"


class ConfusionMatricesMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ConfusionMatrices,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def save(self, data: ConfusionMatrices) -> None:
        buf = io.BytesIO()
        np.savez(buf, **{name: np.asarray(cm, dtype=np.int64) for name, cm in data.matrices.items()})
        with self.artifact_store.open(os.path.join(self.uri, FILE), "wb") as f:
            f.write(buf.getvalue())

    def load(self, data_type: type[Any]) -> ConfusionMatrices:
        with self.artifact_store.open(os.path.join(self.uri, FILE), "rb") as f:
            arrays = np.load(io.BytesIO(f.read()), allow_pickle=False)
            return ConfusionMatrices({name: arrays[name] for name in arrays.files})

    def extract_metadata(self, data: ConfusionMatrices) -> dict[str, Any]:
        return {f"accuracy ({name})": float(np.trace(cm) / cm.sum()) for name, cm in data.matrices.items() if cm.sum()}

    def save_visualizations(self, data: ConfusionMatrices) -> dict[str, VisualizationType]:
        from speech_emotion.reports import confusion_matrix_figure, figure_png

        out = {}
        for i, (name, cm) in enumerate(data.matrices.items()):
            path = os.path.join(self.uri, f"{i:02d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png")
            with self.artifact_store.open(path, "wb") as f:
                f.write(figure_png(confusion_matrix_figure(cm, f"confusion matrix, {name}")))
            out[path] = VisualizationType.IMAGE
        return out
