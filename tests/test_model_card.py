"""The model card: data (licences, languages, speakers by gender, acted or not), protocol, figures per
gender, the synthetic-data warning, intended use and limits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from speech_emotion.config import CorporaConfig
from speech_emotion.corpora.custom import CustomCorpus
from speech_emotion.model_card import (
    MLFLOW_DESCRIPTION_LIMIT,
    describe_corpora,
    data_table,
    group_scores,
    model_card,
    short_description,
)


def _utterances() -> pd.DataFrame:
    rows = [("tess", "tess_OAF", "female"), ("tess", "tess_YAF", "female"), ("tess", "tess_YAF", "female"),
            ("ravdess", "ravdess_01", "male"), ("ravdess", "ravdess_02", "female"),
            ("emodb", "emodb_03", "male"), ("emodb", "emodb_unknown", "unknown")]
    return pd.DataFrame([{"corpus": c, "speaker": s, "gender": g, "emotion": "angry", "path": f"/d/{i}.wav"}
                         for i, (c, s, g) in enumerate(rows)])


def _comparison() -> pd.DataFrame:
    return pd.DataFrame([
        {"model": "cnn2d_lstm", "split": "val", "n": 10, "accuracy": 0.8, "f1_macro": 0.7},
        {"model": "cnn2d_lstm", "split": "test", "n": 12, "accuracy": 0.75, "f1_macro": 0.65},
        {"model": "functionals_svm", "split": "test", "n": 12, "accuracy": 0.6, "f1_macro": 0.55},
        {"model": "cnn1d_lstm", "split": "test", "n": 12, "accuracy": 0.1, "f1_macro": 0.1},
    ])


def test_data_table_counts_speakers_by_gender_with_each_corpus_facts():
    emodb = CustomCorpus(name="emodb", root="/x", pattern=r"(?P<emotion>\w+)\.wav", language="German", speech="acted")
    sources = describe_corpora(["tess", "ravdess", "emodb"], custom=[emodb])
    table = data_table(_utterances(), sources)
    assert table.loc["tess", ["speakers", "female", "male", "utterances"]].tolist() == [2, 2, 0, 3]
    assert table.loc["ravdess", ["female", "male"]].tolist() == [1, 1]
    assert table.loc["emodb", ["male", "gender unknown"]].tolist() == [1, 1]
    assert table.loc["tess", "licence"].startswith("CC BY-NC-ND 4.0") and table.loc["tess", "speech"] == "acted"
    assert table.loc["emodb", "language"] == "German" and table.loc["emodb", "licence"] == "not stated"


def test_the_demo_corpus_is_described_as_synthetic_and_the_card_warns():
    corpora = CorporaConfig(demo={}, tess="/real/TESS")
    assert corpora.synthetic() == ["savee", "ravdess", "crema"]
    sources = describe_corpora(["tess", "ravdess"], synthetic=corpora.synthetic())
    assert sources["ravdess"]["synthetic"] and sources["ravdess"]["speech"] == "synthetic"
    assert not sources["tess"]["synthetic"]
    card = model_card(model="cnn2d_lstm", kind="single", reason="best validation F1-macro", utterances=_utterances(),
                      sources=sources, comparison=_comparison(), split={"strategy": "stratified", "val_fraction": 0.2,
                                                                         "test_fraction": 0.15})
    assert "**Synthetic data.** The corpus ravdess is the synthetic demo corpus" in card
    real = model_card(model="cnn2d_lstm", kind="single", reason="", utterances=_utterances(),
                      sources=describe_corpora(["tess", "ravdess"]), comparison=_comparison(), split={})
    assert "Synthetic data" not in real


def test_the_card_holds_protocol_figures_per_gender_and_the_limits():
    probs = np.eye(7)[[0, 1, 2, 0, 1, 2]]
    labels = np.array([0, 1, 2, 1, 1, 1])  # female clips all right; male: one of three
    per_gender = group_scores(probs, labels, ["female"] * 3 + ["male"] * 3, "gender")
    assert per_gender.loc["female", "accuracy"] == 1.0
    assert per_gender.loc["male", ["n", "accuracy"]].tolist() == [3, 1 / 3]
    card = model_card(model="cnn2d_lstm", kind="single", reason="best validation F1-macro 0.7000",
                      utterances=_utterances(), sources=describe_corpora(["tess", "ravdess", "emodb"]),
                      comparison=_comparison(), split={"strategy": "speaker", "val_fraction": 0.2, "test_fraction": 0.1},
                      per_gender=per_gender, version="ZenML speech_emotion 3, MLflow speech_emotion v3", run="r1")
    assert card.startswith("# Model card: speech emotion recognition, cnn2d_lstm (version ZenML speech_emotion 3")
    assert "Speaker-independent hold-out" in card and "Validation 20% of the training data, test 10% held out" in card
    assert "| cnn2d_lstm | test | 12 | 0.7500 | 0.6500 |" in card
    assert "| functionals_svm | test | 12 | 0.6000 | 0.5500 |" in card  # the baseline beside it
    assert "cnn1d_lstm" not in card  # only the deployed model and the baseline
    assert "| male | 3 | 0.3333 |" in card
    assert "not validated on spontaneous speech" in card
    assert "Art. 5(1)(f)" in card and "workplace and in education" in card
    assert "The licences of tess, ravdess allow non-commercial use only" in card
    stratified = model_card(model="cnn2d_lstm", kind="single", reason="", utterances=_utterances(),
                            sources={}, comparison=_comparison(), split={"strategy": "stratified"})
    assert "optimistic" in stratified and "Per gender: not available" in stratified


def test_short_description_fits_mlflow_and_points_to_the_full_card():
    card = "# title\n" + "\n".join(f"line {i} " + "x" * 80 for i in range(200))
    short = short_description(card, "artifact model_card.md of MLflow run abc")
    assert len(short) <= MLFLOW_DESCRIPTION_LIMIT and short.endswith("the full model card: artifact model_card.md "
                                                                     "of MLflow run abc]")
    assert short_description("# small", "x") == "# small"
