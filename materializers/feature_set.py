"""FeatureSet <-> a folder of ``.npy`` arrays plus ``meta.json``.

Arrays are plain ``.npy`` (no pickle), so on a local artifact store they load
memory-mapped, read-only: a step that reads a 1 GB log-mel set touches only what it uses.
From a remote store (S3, GCS) the folder is downloaded to a temporary folder
that is removed before ``load`` returns (on POSIX the arrays stay memory-mapped
on the removed files; elsewhere they are read into memory).

Streaming (issue 10): a step gets a folder from :func:`output_folder` and builds its
FeatureSet there as memory maps (``speech_emotion.features``' ``folder=`` arguments). On a
local store that folder is the artifact's own, so ``save`` writes only ``meta.json``; on a
remote one it is a local temporary folder that ``save`` uploads and removes. ``save`` finishes
in place only the folder handed out for its own output, and only when the FeatureSet's
arrays are the whole files there; anything else (a set passed through from an input
artifact, a view of part of one) is written out as a copy.

``meta.json`` is written last (atomically on a local store, uploaded last to a remote one)
and records the row count: a folder without it, or whose arrays disagree with it, is a write
that was interrupted, and ``load`` refuses it rather than serve torn arrays.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from typing import Any, ClassVar

import numpy as np
from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from materializers._files import download_dir, is_local, upload_dir
from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.features import FeatureSet

META = "meta.json"
#: artifact URI -> the folder that :func:`output_folder` gave the running step for it (this process's)
_SPOOLS: dict[str, str] = {}


def output_folder(output: str) -> str | None:
    """Where the running step builds its FeatureSet output ``output`` as memory maps: the artifact's folder
    on a local artifact store, else a new local temporary folder (uploaded and removed by ``save``).
    None outside a pipeline step (the arrays are then built in memory)."""
    from zenml import get_step_context

    try:
        context = get_step_context()
    except RuntimeError:  # not inside a step
        return None
    uri = context.get_output_artifact_uri(output)
    folder = uri if is_local(uri) else tempfile.mkdtemp(prefix="ser-features-")
    _SPOOLS[uri] = folder
    return folder


@atexit.register
def _remove_temporary_spools() -> None:
    """The local folders of a remote store's outputs whose step failed before ``save`` (removed by it otherwise)."""
    for uri, folder in list(_SPOOLS.items()):
        if folder != uri:
            shutil.rmtree(folder, ignore_errors=True)


def _built_in(data: FeatureSet, folder: str) -> bool:
    """Whether every array of ``data`` is the whole memory map ``folder/<name>.npy`` (not a view of part of it)."""
    for name, arr in data.arrays().items():
        path = os.path.join(folder, f"{name}.npy")
        if not isinstance(arr, np.memmap) or not arr.filename or not os.path.exists(path):
            return False
        if not os.path.samefile(arr.filename, path) or np.load(path, mmap_mode="r").shape != arr.shape:
            return False
    return True


class FeatureSetMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (FeatureSet,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: FeatureSet) -> None:
        meta = {"params": data.params, "scaled": data.scaled, "n": len(data)}
        spool = _SPOOLS.pop(self.uri, None)  # only the folder handed out for this very output
        try:
            if spool is not None and _built_in(data, spool):  # streamed by the step: flush, finish in place
                for arr in data.arrays().values():
                    arr.flush()
                self._finish(spool, meta)
                return
            with self.get_temporary_directory(delete_at_exit=True) as tmp:
                for name, arr in data.arrays().items():  # np.save writes a memory map from its pages, not a copy
                    np.save(os.path.join(tmp, f"{name}.npy"), arr, allow_pickle=False)
                self._finish(tmp, meta)
        finally:
            if spool is not None and spool != self.uri:  # a remote store's local folder
                shutil.rmtree(spool, ignore_errors=True)

    def _finish(self, folder: str, meta: dict) -> None:
        """Put the arrays in ``folder`` at ``self.uri`` (unless they are there) and ``meta.json`` after them."""
        if is_local(self.uri) and os.path.samefile(folder, self.uri):
            with open(os.path.join(folder, META + ".tmp"), "w") as f:
                json.dump(meta, f, indent=2)
            os.replace(os.path.join(folder, META + ".tmp"), os.path.join(folder, META))
            return
        upload_dir(folder, self.uri)
        with fileio.open(os.path.join(self.uri, META), "w") as f:
            f.write(json.dumps(meta, indent=2))

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
        if not os.path.exists(os.path.join(folder, META)):
            raise ValueError(f"feature set {uri} is incomplete: it has no {META}, so writing it was interrupted; "
                             "re-run the pipeline to extract it again")
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
        if "n" in meta and (torn := sorted(name for name, arr in arrays.items() if len(arr) != meta["n"])):
            raise ValueError(f"feature set {uri} is incomplete: {', '.join(torn)} do not hold the {meta['n']} rows "
                             f"its {META} records; re-run the pipeline to extract it again")
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
