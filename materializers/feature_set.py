"""FeatureSet <-> a folder of ``.npy`` arrays plus ``meta.json``.

Arrays are plain ``.npy`` (no pickle), so on a local artifact store they load
memory-mapped: a step that reads a 1 GB log-mel set touches only what it uses.
From a remote store (S3, GCS) the folder is downloaded to a temporary folder
that is removed before ``load`` returns (on POSIX the arrays stay memory-mapped
on the removed files; elsewhere they are read into memory).
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

import numpy as np
from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from materializers._files import download_dir, is_local, upload_dir
from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.features import FeatureSet

META = "meta.json"


class FeatureSetMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (FeatureSet,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: FeatureSet) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            for name, arr in data.arrays().items():
                np.save(os.path.join(tmp, f"{name}.npy"), np.asarray(arr), allow_pickle=False)
            with open(os.path.join(tmp, META), "w") as f:
                json.dump({"params": data.params, "scaled": data.scaled}, f, indent=2)
            upload_dir(tmp, self.uri)

    def load(self, data_type: type[Any]) -> FeatureSet:
        if is_local(self.uri):
            return self._read(self.uri, self.uri, mmap=True)
        # a remote store (s3://...): download, read, and remove the download before returning. On POSIX the
        # arrays stay memory-mapped: a mapping outlives its file's name, the disk space goes when it is closed.
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            download_dir(self.uri, tmp)
            return self._read(tmp, self.uri, mmap=os.name == "posix")

    @staticmethod
    def _read(folder: str, uri: str, mmap: bool) -> FeatureSet:
        with open(os.path.join(folder, META)) as f:
            meta = json.load(f)
        arrays = {
            name: np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r" if mmap else None, allow_pickle=False)
            for name in FeatureSet.ARRAYS
            if name != "n_frames" or os.path.exists(os.path.join(folder, f"{name}.npy"))
        }
        if "n_frames" not in arrays:  # an artifact written before n_frames was kept: say so, do not guess
            raise ValueError(f"feature set {uri} has no n_frames (written by an older version of the "
                             "feature code); re-run the pipeline to extract it again")
        return FeatureSet(**arrays, params=meta["params"], scaled=meta["scaled"])

    def extract_metadata(self, data: FeatureSet) -> dict[str, Any]:
        counts = np.bincount(np.asarray(data.labels, dtype=int), minlength=len(EMOTIONS))
        return {
            "n_utterances": len(data),
            "scaled": data.scaled,
            "logmel_shape": str(tuple(data.logmel.shape[1:])),
            "mean_n_frames": float(np.mean(data.n_frames)) if len(data) else 0.0,
            "class_counts": {e: int(c) for e, c in zip(EMOTIONS, counts)},
        }

    def save_visualizations(self, data: FeatureSet) -> dict[str, VisualizationType]:
        if len(data) == 0:
            return {}
        from speech_emotion.reports import figure_png, logmel_examples_figure

        path = os.path.join(self.uri, "logmel_examples.png")
        with self.artifact_store.open(path, "wb") as f:
            f.write(figure_png(logmel_examples_figure(data)))
        return {path: VisualizationType.IMAGE}
