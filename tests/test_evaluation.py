from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.evaluation import evaluate_probabilities
from speech_emotion import reports


def _onehot(idx, n=7, p=0.9):
    probs = np.full((len(idx), n), (1 - p) / (n - 1))
    probs[np.arange(len(idx)), idx] = p
    return probs


def test_metrics_per_origin_and_class():
    labels = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    corpus = np.array(["tess", "tess", "crema", "crema", "savee", "savee"])
    ev = evaluate_probabilities("m", "val", _onehot(pred), labels, corpus, inference_time_s=0.5, n_params=10)
    assert ev.accuracy == pytest.approx(4 / 6)
    assert ev.loss == pytest.approx(-(4 * np.log(0.9) + 2 * np.log(0.1 / 6)) / 6)
    # F1 over the classes present: 0: P=R=1/2 -> 0.5; 1: P=2/3, R=1 -> 0.8; 2: P=1, R=1/2 -> 2/3
    assert ev.f1_macro == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert ev.per_origin.loc["tess", "accuracy"] == 0.5 and ev.per_origin.loc["crema", "accuracy"] == 1.0
    assert ev.per_class.loc["angry", "accuracy"] == 1.0 and ev.per_class.loc["fear", "support"] == 2
    assert np.isnan(ev.per_class.loc["surprise", "accuracy"])
    assert ev.confusion.sum() == 6 and ev.confusion[0, 1] == 1
    m = ev.metrics()
    assert m["val_accuracy_tess"] == 0.5 and m["n_params"] == 10 and "val_f1_surprise" not in m
    assert m["val_inference_time_s"] == 0.5


def test_figures_and_html_report():
    fig = reports.confusion_matrix_figure(np.eye(7, dtype=int) * 3, "cm")
    png = reports.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    r = reports.HtmlReport("t")
    r.table(__import__("pandas").DataFrame({"a": [1.23456]}), "cap")
    r.image(png, "alt")
    html = r.render()
    assert "1.2346" in html and "<caption>cap</caption>" in html and "base64" in html
    assert len(EMOTIONS) == 7
