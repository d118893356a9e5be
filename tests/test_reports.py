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
