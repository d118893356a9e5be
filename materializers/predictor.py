"""Predictor <-> its folder (``manifest.json``, ``scaler.npz``, ``member_<i>.keras``), with an HTML card."""

from __future__ import annotations

import html
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from materializers._files import download_dir, upload_dir
from speech_emotion.predictor import Predictor


class PredictorMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (Predictor,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: Predictor) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            data.save(tmp)
            upload_dir(tmp, self.uri)

    def load(self, data_type: type[Any]) -> Predictor:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            download_dir(self.uri, tmp)
            return Predictor.load(tmp)

    def extract_metadata(self, data: Predictor) -> dict[str, Any]:
        meta: dict[str, Any] = {"model": data.name, "kind": data.kind, "members": [m.name for m in data.members],
                                "duration_s": data.feature_params.duration_s}
        if data.weights is not None:
            meta["weights"] = {m.name: float(w) for m, w in zip(data.members, data.weights)}
        if "reason" in data.info:
            meta["chosen_because"] = data.info["reason"]
        return meta

    def save_visualizations(self, data: Predictor) -> dict[str, VisualizationType]:
        rows = "".join(
            f"<tr><td>{html.escape(m.name)}</td><td>{html.escape(m.family)}</td>"
            f"<td>{html.escape(str(getattr(m, 'input_name', 'functionals of the audio')))}</td>"
            f"<td>{'' if data.weights is None else f'{data.weights[i]:.3f}'}</td><td>{m.n_params:,}</td></tr>"
            for i, m in enumerate(data.members)
        )
        info = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in data.info.items())
        page = (
            "<html><body style='font-family:sans-serif'>"
            f"<h2>Predictor: {html.escape(data.name)} ({html.escape(data.kind)})</h2>"
            f"<p>Classes: {html.escape(', '.join(data.classes))}. Clips are scored over windows of "
            f"{data.feature_params.duration_s:g} s at {data.feature_params.sample_rate} Hz.</p>"
            "<table border=1 cellpadding=4 style='border-collapse:collapse'>"
            "<tr><th>member</th><th>family</th><th>input</th><th>weight</th><th>parameters</th></tr>"
            f"{rows}</table><h3>Provenance</h3><table border=1 cellpadding=4 style='border-collapse:collapse'>"
            f"{info}</table></body></html>"
        )
        path = os.path.join(self.uri, "predictor.html")
        with self.artifact_store.open(path, "w") as f:
            f.write(page)
        return {path: VisualizationType.HTML}
