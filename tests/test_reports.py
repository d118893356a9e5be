"""The dataset report's inputs over time (seed section 4): which clips, and what is plotted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speech_emotion import reports
from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.features import FeatureParams, clip_features


def test_two_clips_per_class_of_similar_duration_from_tess_first():
    rows = [("crema", "angry", 2.0), ("crema", "angry", 2.01),  # closest pair, but not TESS
            ("tess", "angry", 1.0), ("tess", "angry", 1.5), ("tess", "angry", 1.55), ("tess", "angry", 3.0),
            ("crema", "disgust", 2.0), ("crema", "disgust", 2.4), ("tess", "disgust", 1.2),  # TESS has one
            ("savee", "fear", 3.3)]  # one clip in all: plotted alone
    utterances = pd.DataFrame([{"corpus": c, "emotion": e, "duration_s": d, "path": f"/x/{c}_{e}_{i}.wav",
                                "relpath": f"{c}_{e}_{i}.wav", "speaker": f"{c}_s"} for i, (c, e, d) in enumerate(rows)])
    chosen = reports.choose_input_examples(utterances)
    picked = {e: part for e, part in chosen.groupby("emotion")}
    assert list(dict.fromkeys(chosen["emotion"])) == ["fear", "angry", "disgust"]  # EMOTIONS order
    assert picked["angry"]["duration_s"].tolist() == [1.5, 1.55] and set(picked["angry"]["corpus"]) == {"tess"}
    assert picked["disgust"]["duration_s"].tolist() == [2.0, 2.4] and set(picked["disgust"]["corpus"]) == {"crema"}
    assert picked["fear"]["duration_s"].tolist() == [3.3]


def test_inputs_over_time_of_the_demo_corpus(demo_corpus):
    from speech_emotion.corpora.ingest import ingest_corpora
    from steps.analysis import analyse_dataset

    utterances = ingest_corpora({"tess": demo_corpus["tess"], "crema": demo_corpus["crema"]},
                                progress=False).utterances
    params = FeatureParams()
    examples, logmel_fig, chroma_fig = reports.input_visualisations(utterances, params)
    assert set(examples["emotion"]) == set(utterances["emotion"]) == set(EMOTIONS)  # TESS has all seven
    assert (examples.groupby("emotion").size() == 2).all() and (examples["corpus"] == "tess").all()
    assert (examples["status"] == "ok").all()
    assert len([a for a in logmel_fig.axes if a.get_visible() and a.images]) == 14
    assert len([a for a in chroma_fig.axes if a.get_visible() and a.images]) == 14

    # per frame, over the clip's own duration; its mean is the chroma feature the models get
    path = examples["path"].iloc[0]
    logmel, chroma = reports.clip_over_time(path, params)
    from speech_emotion.audio import load_audio

    y = load_audio(path, params.sample_rate)
    n = 1 + len(y) // params.hop_length
    assert logmel.shape == (128, n) and chroma.shape == (12, n)
    feats = clip_features(y, params)
    np.testing.assert_allclose(chroma.mean(axis=1), feats.chroma, atol=1e-4)
    np.testing.assert_allclose(logmel, feats.logmel[:, :n], atol=1e-3)
    assert feats.n_frames == n

    # in the dataset report, with a file gone since ingestion named instead of failing the step
    gone = utterances.copy()
    gone.loc[gone["path"] == path, "path"] = path + ".missing"
    _, html = analyse_dataset.entrypoint(gone, gone.iloc[:0], gone, gone.iloc[:0], gone.iloc[:0], params)
    assert "Inputs over time (seed section 4)" in html and "not plotted" in html
    assert html.count("data:image/png;base64") == 5  # 3 dataset figures, log-mel and chromagram


def test_run_report_folder_says_where_each_item_comes_from(tmp_path):
    from speech_emotion.run_report import Item, RunReport, Section, markdown_to_html, write_report

    table = pd.DataFrame({"model": ["cnn2d_lstm"], "f1_macro": [0.5], "n_params": [1234.0]}).set_index("model")
    report = RunReport(run="r1", run_id="id1", pipeline="training_pipeline", status="completed", started="2026-11-24",
                       data="10 utterances of tess (tess: synthetic demo corpus)", protocol="Random split",
                       synthetic=["tess"], mlflow_run_id="m1",
                       model_card="# Card\n\n> **Synthetic data.** x\n\n| a | b |\n|---|---|\n| tess | 0.5 |\n\n- one\n- two",
                       sections=[Section("Comparison", "note", [
                           Item("comparison/test.csv", "All models on test", "ZenML step compare_models", table),
                           Item("comparison/f1.png", "F1 chart", "MLflow run m1, artifact comparison/f1.png", b"\x89PNG"),
                           Item("dataset/page.html", "The page", "ZenML step analyse_dataset", "<html></html>")])])
    index = write_report(report, tmp_path / "out")
    page = index.read_text()
    assert "Synthetic demo corpus: tess is synthesised speech" in page
    assert page.count("Data: 10 utterances of tess (tess: synthetic demo corpus)") == 3  # under every item
    assert "From ZenML step compare_models." in page and "From MLflow run m1, artifact comparison/f1.png." in page
    assert '<img alt="F1 chart" src="comparison/f1.png"/>' in page and ">1234<" in page  # counts stay integers
    assert pd.read_csv(tmp_path / "out" / "comparison" / "test.csv", index_col=0).loc["cnn2d_lstm", "f1_macro"] == 0.5
    assert (tmp_path / "out" / "comparison" / "f1.png").read_bytes() == b"\x89PNG"
    assert (tmp_path / "out" / "model_card.md").read_text() == report.model_card
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "- `comparison/test.csv`: All models on test (from ZenML step compare_models)" in readme
    card = markdown_to_html(report.model_card)
    assert "<h2>Card</h2>" in card and '<blockquote class="warn"><strong>Synthetic data.</strong> x</blockquote>' in card
    assert '<td style="text-align:left">tess</td><td>0.5</td>' in card and "<li>one</li><li>two</li>" in card.replace("\n", "")
