"""Cross-validated protocols: fold making, leakage checks, pooled scores with bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from speech_emotion import protocols
from speech_emotion.config import EvaluationConfig, SplitConfig
from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.splits import LeakageError, check_leakage, split_utterances


def _table(corpora=("crema", "ravdess", "tess"), n_speakers: int = 4, per: int = 2, emotions=EMOTIONS) -> pd.DataFrame:
    rows = []
    for corpus in corpora:
        for s in range(n_speakers):
            for e in emotions:
                if corpus == "crema" and e == "surprise":  # as in the real CREMA-D
                    continue
                for k in range(per):
                    rows.append({"path": f"/data/{corpus}/{s}/{e}{k}.wav", "corpus": corpus,
                                 "speaker": f"{corpus}_{s}", "gender": "female" if s % 2 else "male",
                                 "emotion": e, "content_hash": f"{corpus}-{s}-{e}-{k}"})
    return pd.DataFrame(rows)


def _assert_partition_without_leakage(df, folds):
    tested = pd.concat([f.parts["test"] for f in folds])
    assert sorted(tested["path"]) == sorted(df["path"])  # every utterance tested exactly once
    for f in folds:
        assert sum(len(p) for p in f.parts.values()) == len(df)
        speakers = [set(p["speaker"]) for p in f.parts.values()]
        assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])
        assert len(f.parts["val"]) > 0 and len(f.parts["train"]) > 0


def test_speaker_kfold_is_speaker_disjoint_and_stratified():
    df = _table()
    folds = protocols.make_folds(df, EvaluationConfig(protocol="speaker_kfold", folds=4), SplitConfig(seed=1))
    assert [f.index for f in folds] == [1, 2, 3, 4]
    _assert_partition_without_leakage(df, folds)
    # 12 speakers in 4 folds of 3, every class in every test fold
    assert all(f.parts["test"]["speaker"].nunique() == 3 for f in folds)
    assert all(set(f.parts["test"]["emotion"]) == set(EMOTIONS) for f in folds)
    again = protocols.make_folds(df, EvaluationConfig(protocol="speaker_kfold", folds=4), SplitConfig(seed=1))
    assert [f.held_out for f in again] == [f.held_out for f in folds]  # deterministic


def test_explicit_speaker_folds_are_used_as_given():
    df = _table(corpora=("emodb",), n_speakers=6)
    listed = [["emodb_0", "emodb_1"], ["emodb_2", "emodb_3"], ["emodb_4", "emodb_5"]]
    folds = protocols.make_folds(df, EvaluationConfig(protocol="speaker_kfold", speaker_folds=listed), SplitConfig())
    assert [sorted(set(f.parts["test"]["speaker"])) for f in folds] == listed
    _assert_partition_without_leakage(df, folds)
    with pytest.raises(ValueError, match=r"speaker_folds: speaker\(s\) \['emodb_9'\] have no ingested utterance"):
        protocols.make_folds(df, EvaluationConfig(protocol="speaker_kfold", speaker_folds=[["emodb_0"], ["emodb_9"]]),
                             SplitConfig())


def test_evaluation_config_refuses_what_it_cannot_use():
    with pytest.raises(ValidationError, match="speaker_folds is only used by evaluation.protocol 'speaker_kfold'"):
        EvaluationConfig(protocol="loso", speaker_folds=[["a"], ["b"]])
    with pytest.raises(ValidationError, match="speaker 'a' is in folds 1 and 2"):
        EvaluationConfig(protocol="speaker_kfold", speaker_folds=[["a"], ["a", "b"]])
    with pytest.raises(ValidationError, match="evaluation.folds is 3 but evaluation.speaker_folds lists 2"):
        EvaluationConfig(protocol="speaker_kfold", folds=3, speaker_folds=[["a"], ["b"]])
    # the count comes from the list, and the dumped config validates again, as ZenML does with step inputs
    listed = EvaluationConfig(protocol="speaker_kfold", speaker_folds=[["a"], ["b"], ["c"]])
    assert listed.folds == 3 and EvaluationConfig.model_validate(listed.model_dump()) == listed
    with pytest.raises(ValidationError, match="protocol"):
        EvaluationConfig(protocol="random")
    with pytest.raises(ValueError, match="evaluation.folds is 5 but only 3 speakers"):
        protocols.make_folds(_table(corpora=("tess",), n_speakers=3), EvaluationConfig(protocol="speaker_kfold"),
                             SplitConfig())


def test_loso_leaves_each_speaker_out():
    df = _table(corpora=("savee",), n_speakers=4)
    folds = protocols.make_folds(df, EvaluationConfig(protocol="loso"), SplitConfig())
    assert [f.held_out for f in folds] == ["savee_0", "savee_1", "savee_2", "savee_3"]
    assert all(set(f.parts["test"]["speaker"]) == {f.held_out} for f in folds)
    _assert_partition_without_leakage(df, folds)


def test_loco_leaves_each_corpus_out_and_needs_two():
    df = _table()
    folds = protocols.make_folds(df, EvaluationConfig(protocol="loco"), SplitConfig())
    assert [f.held_out for f in folds] == ["crema", "ravdess", "tess"]
    for f in folds:
        assert set(f.parts["test"]["corpus"]) == {f.held_out}
        assert f.held_out not in set(f.parts["train"]["corpus"]) | set(f.parts["val"]["corpus"])
    _assert_partition_without_leakage(df, folds)
    with pytest.raises(ValueError, match="loco needs utterances of at least 2 corpora"):
        protocols.make_folds(_table(corpora=("tess",)), EvaluationConfig(protocol="loco"), SplitConfig())


def test_folds_table_round_trip():
    df = _table()
    folds = protocols.make_folds(df, EvaluationConfig(protocol="loco"), SplitConfig())
    table = protocols.folds_table(folds)
    assert list(table.columns) == ["fold", "held_out", "part", "path"]
    test2 = protocols.fold_paths(table, 2, "test")
    assert list(test2) == list(folds[1].parts["test"]["path"])
    ids = df["path"].to_numpy()[::-1]
    assert list(ids[protocols.positions(ids, test2)]) == list(test2)
    with pytest.raises(ValueError, match="have no features"):
        protocols.positions(ids[:5], test2)


def test_leakage_checks_name_the_files_and_speakers():
    df = _table(corpora=("tess",), n_speakers=3)
    train, test = df[df["speaker"] != "tess_2"].copy(), df[df["speaker"] == "tess_2"].copy()
    check_leakage({"train": train, "test": test}, [("train", "test")])  # clean
    test.loc[test.index[0], "content_hash"] = train["content_hash"].iloc[0]  # the same audio twice
    with pytest.raises(LeakageError, match=r"the same audio content in train and test \(1 file\(s\)\): "
                                           r"/data/tess/0/fear0.wav \(train\) = /data/tess/2/fear0.wav \(test\)"):
        check_leakage({"train": train, "test": test}, [])
    test = pd.concat([test, train[train["speaker"] == "tess_1"].assign(content_hash=lambda d: d["content_hash"] + "x")])
    check_leakage({"train": train, "test": test.iloc[1:]}, [])  # speakers may be shared where allowed...
    with pytest.raises(LeakageError, match=r"speaker\(s\) in both train and test: tess_1"):
        check_leakage({"train": train, "test": test.iloc[1:]}, [("train", "test")], where="fold 1")


def test_every_holdout_split_is_checked_for_duplicate_audio():
    df = _table(corpora=("crema", "ravdess"), n_speakers=6)
    df.loc[5, "content_hash"] = df.loc[100, "content_hash"]  # a copy the ingestion let through
    with pytest.raises(LeakageError, match="same audio content"):
        # a stratified split would put the pair apart for this seed; every split is checked
        for seed in range(20):
            split_utterances(df, SplitConfig(seed=seed))


def _predictions(y, preds: dict[str, np.ndarray], fold=None) -> pd.DataFrame:
    n = len(y)
    fold = np.ones(n, int) if fold is None else fold
    return pd.concat([pd.DataFrame({"fold": fold, "held_out": [f"f{k}" for k in fold], "model": m,
                                    "path": [f"/u{i}.wav" for i in range(n)], "label": y, "pred": p})
                      for m, p in preds.items()], ignore_index=True)


def test_pooled_scores_equal_sklearn_and_the_intervals_contain_them():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 300)  # surprise (6) never true
    good = np.where(rng.random(300) < 0.7, y, rng.integers(0, 7, 300))
    bad = rng.integers(0, 7, 300)
    table = protocols.pooled_table(_predictions(y, {"good": good, "bad": bad}), n_boot=400, seed=1)
    assert list(table.columns) == ["model", "accuracy", "f1_macro", "uar", "n", "accuracy_ci_low", "accuracy_ci_high",
                                   "f1_macro_ci_low", "f1_macro_ci_high", "uar_ci_low", "uar_ci_high"]
    row = table.set_index("model").loc["good"]
    assert row["n"] == 300
    assert row["accuracy"] == pytest.approx(accuracy_score(y, good))
    assert row["f1_macro"] == pytest.approx(f1_score(y, good, labels=np.unique(y), average="macro"))
    with pytest.warns(UserWarning):  # sklearn warns of the predicted class without examples; UAR ignores it
        assert row["uar"] == pytest.approx(balanced_accuracy_score(y, good))
    for m in protocols.METRICS:
        assert row[f"{m}_ci_low"] < row[m] < row[f"{m}_ci_high"]
    bad_row = table.set_index("model").loc["bad"]
    assert bad_row["accuracy_ci_high"] < row["accuracy_ci_low"]  # 70 % vs chance, told apart
    assert protocols.pooled_table(_predictions(y, {"good": good}), n_boot=0)["accuracy_ci_low"].isna().all()


def test_per_fold_gender_and_absent_classes_are_reported():
    y = np.array([0, 1, 2, 0, 1, 6, 6, 2])
    pred = np.array([0, 1, 6, 0, 0, 6, 5, 2])
    fold = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    preds = _predictions(y, {"m": pred}, fold)
    preds["gender"] = ["female", "male", "female", "unknown", "male", "female", "male", "female"]
    preds["corpus"] = ["crema"] * 4 + ["tess"] * 4
    folds = protocols.fold_table(preds, "speaker_kfold")
    f1 = folds.set_index("fold").loc[1]
    assert f1["n"] == 4 and f1["accuracy"] == 0.75 and f1["uar"] == pytest.approx((1 + 1 + 0) / 3)
    assert f1["absent_classes"] == "disgust;sadness;neutral;surprise"
    assert folds.set_index("fold").loc[2, "absent_classes"] == "fear;disgust;sadness;neutral"
    absent = protocols.absent_classes_table(preds)
    surprise = absent[(absent["fold"] == 1) & (absent["absent"] == "surprise")].iloc[0]
    assert surprise["predicted"] == "m 1"  # the fear clip called surprise: an error, reported
    genders = protocols.gender_table(preds).set_index("gender")
    assert set(genders.index) == {"female", "male"} and genders.loc["female", "n"] == 4
    assert genders.loc["male", "accuracy"] == pytest.approx(1 / 3)
    loco = protocols.cross_corpus_table(preds.assign(held_out=preds["corpus"]))
    assert list(loco["tested_on"]) == ["crema", "tess"] and loco.iloc[0]["trained_on"] == "tess"


def test_describe_names_the_split_or_protocol():
    from speech_emotion.config import EvaluationConfig as E

    assert "split.strategy speaker" in protocols.describe(E(), SplitConfig(strategy="speaker"))
    assert "stratified" in protocols.describe(E(), SplitConfig())
    text = protocols.describe(E(protocol="loco"), SplitConfig())
    assert "leave one corpus out" in text and "stratified 20 %" not in text


def test_a_protocol_refuses_a_contradicting_split_or_too_few_corpora():
    from pipelines.training import check_configuration
    from speech_emotion.config import AblationConfig, CorporaConfig, FeatureConfig, TuningConfig

    ok = dict(families={"cnn2d_lstm": {}}, tuning=TuningConfig(enabled=False), search_spaces={},
              features=FeatureConfig(), ablation=AblationConfig())
    loco = EvaluationConfig(protocol="loco")
    check_configuration(**ok, corpora=CorporaConfig(demo={}), split=SplitConfig(), evaluation=loco)
    with pytest.raises(ValueError, match="split.strategy 'corpus' .* use evaluation.protocol: loco"):
        check_configuration(**ok, corpora=CorporaConfig(demo={}), split=SplitConfig(strategy="corpus",
                            test_corpus="tess"), evaluation=EvaluationConfig(protocol="loso"))
    with pytest.raises(ValueError, match=r"loco leaves one corpus out, but only \['tess'\] is configured"):
        check_configuration(**ok, corpora=CorporaConfig(tess="data/tess"), split=SplitConfig(), evaluation=loco)


def test_readme_protocol_example_is_a_valid_configuration():
    import yaml

    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Speaker- and corpus-independent figures"):]
    block = section.split("```yaml\n")[1].split("```", 1)[0]
    params = yaml.safe_load(block)["parameters"]
    assert EvaluationConfig(**params["evaluation"]).protocol == "speaker_kfold"
    SplitConfig(**params["split"])


def test_a_folds_predictions_hold_every_model_and_both_voting_ensembles():
    from speech_emotion.ensemble import average_probabilities
    from steps.protocol import collect_fold_predictions
    from tests.synthetic import tiny_features

    test = tiny_features(6, seed=0)
    rng = np.random.default_rng(0)
    probs = [rng.dirichlet(np.ones(7), size=6) for _ in range(3)]
    folds = pd.DataFrame({"fold": [2], "held_out": ["savee_DC"], "part": ["test"], "path": ["x"]})
    weights = pd.DataFrame({"model": ["cnn2d_lstm", "functionals_svm"], "weight": [0.25, 0.75]})
    out = collect_fold_predictions.entrypoint(
        test, probs, names=["cnn2d_lstm", "functionals_svm", "stacking"], folds=folds, fold=2,
        members=["cnn2d_lstm", "functionals_svm"], average_voting=True, ga_weights=weights)
    assert list(out["model"].unique()) == ["cnn2d_lstm", "functionals_svm", "stacking", "average_voting",
                                           "ga_ensemble"]
    assert (out["fold"] == 2).all() and (out["held_out"] == "savee_DC").all()
    ga = out[out["model"] == "ga_ensemble"]
    expected = average_probabilities(probs[:2], [0.25, 0.75])
    assert np.allclose(ga[[f"p_{e}" for e in EMOTIONS]].to_numpy(), expected)
    assert list(ga["pred"]) == list(expected.argmax(axis=1)) and list(ga["label"]) == list(test.labels)
    with pytest.raises(ValueError, match="GA weights for"):
        collect_fold_predictions.entrypoint(test, probs[:2], names=["a", "b"], folds=folds, fold=2, members=["a", "b"],
                                            ga_weights=weights)


def test_pooling_a_loco_run_gives_the_cross_corpus_matrix_and_names_the_protocol():
    from steps.protocol import pool_protocol

    df = _table(corpora=("crema", "tess"), n_speakers=3, per=1)
    rng = np.random.default_rng(1)
    frames = []
    for k, corpus in enumerate(("crema", "tess"), start=1):
        part = df[df["corpus"] == corpus]
        labels = part["emotion"].map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy()
        probs = {m: rng.dirichlet(np.ones(7), size=len(part)) for m in ("cnn2d_lstm", "functionals_svm")}
        frames.append(protocols.fold_predictions(k, corpus, part["path"].to_numpy(), labels, probs))
    pooled, per_fold, genders, cross, absent, preds, report = pool_protocol.entrypoint(
        frames, df, EvaluationConfig(protocol="loco", bootstrap=50), SplitConfig())
    assert set(pooled["model"]) == {"cnn2d_lstm", "functionals_svm"} and (pooled["n"] == len(df)).all()
    assert set(cross["tested_on"]) == {"crema", "tess"} and set(cross["trained_on"]) == {"tess", "crema"}
    assert cross.set_index(["tested_on", "model"]).loc[("crema", "cnn2d_lstm"), "absent_classes"] == "surprise"
    assert list(absent["absent"]) == ["surprise"]  # CREMA-D has none: reported, not averaged in
    assert set(genders["gender"]) == {"female", "male"} and len(preds) == 2 * len(df)
    assert "Protocol: loco, leave one corpus out" in report and "Cross-corpus accuracy" in report
