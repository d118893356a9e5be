from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from speech_emotion.config import SplitConfig
from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.splits import split_utterances


def _table(n_speakers: int = 6, per: int = 4) -> pd.DataFrame:
    rows = []
    for corpus in ("crema", "ravdess"):
        for s in range(n_speakers):
            for e in EMOTIONS[:6]:
                for k in range(per):
                    rows.append({"path": f"/{corpus}/{s}/{e}/{k}.wav", "corpus": corpus,
                                 "speaker": f"{corpus}_{s}", "emotion": e, "duration_s": 2.0,
                                 "content_hash": f"{corpus}{s}{e}{k}"})
    return pd.DataFrame(rows)


def test_stratified_split_is_a_partition_with_the_seed_fractions():
    df = _table()
    parts = split_utterances(df, SplitConfig(val_fraction=0.2, test_fraction=0.1, seed=1))
    paths = [set(p["path"]) for p in parts.values()]
    assert sum(len(p) for p in paths) == len(df)
    assert set.union(*paths) == set(df["path"])
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])
    assert len(parts["test"]) == int(np.ceil(0.1 * len(df)))
    assert len(parts["val"]) == int(np.ceil(0.2 * (len(df) - len(parts["test"]))))
    # stratified by class x origin: every stratum is in validation in proportion
    val_counts = parts["val"].groupby(["emotion", "corpus"]).size()
    assert val_counts.min() >= 4 and val_counts.max() <= 6


def test_split_is_deterministic_and_seed_dependent():
    df = _table()
    a = split_utterances(df, SplitConfig(seed=3))
    b = split_utterances(df.sample(frac=1, random_state=0), SplitConfig(seed=3))
    c = split_utterances(df, SplitConfig(seed=4))
    assert a["val"]["path"].tolist() == b["val"]["path"].tolist()
    assert a["val"]["path"].tolist() != c["val"]["path"].tolist()


def test_speaker_split_shares_no_speaker():
    parts = split_utterances(_table(n_speakers=10), SplitConfig(strategy="speaker", test_fraction=0.2))
    speakers = [set(p["speaker"]) for p in parts.values()]
    assert not (speakers[0] & speakers[1]) and not (speakers[0] & speakers[2]) and not (speakers[1] & speakers[2])
    assert all(len(s) > 0 for s in speakers)


def test_leave_one_corpus_out():
    parts = split_utterances(_table(), SplitConfig(strategy="corpus", test_corpus="ravdess"))
    assert set(parts["test"]["corpus"]) == {"ravdess"}
    assert set(parts["train"]["corpus"]) == {"crema"} == set(parts["val"]["corpus"])


def test_invalid_configs_are_refused():
    with pytest.raises(ValidationError, match="test_corpus"):
        SplitConfig(strategy="corpus")
    with pytest.raises(ValueError, match="empty"):
        split_utterances(_table().iloc[:0], SplitConfig())


def test_tiny_table_falls_back_to_random_split():
    df = _table(n_speakers=1, per=1).iloc[:8]
    parts = split_utterances(df, SplitConfig(val_fraction=0.25, test_fraction=0.25))
    assert sum(len(p) for p in parts.values()) == 8


def test_split_does_not_depend_on_where_the_corpora_are_mounted():
    df = _table()
    moved = df.assign(path=df["path"].map(lambda p: ("/zzz/mnt" if "crema" in p else "/aaa") + p))
    a = split_utterances(df, SplitConfig(seed=5))
    b = split_utterances(moved, SplitConfig(seed=5))
    for name in ("train", "val", "test"):
        assert sorted(a[name]["path"]) == sorted(b[name]["path"].str.replace(r"^/(zzz/mnt|aaa)", "", regex=True))


def test_too_few_utterances_name_the_split_and_the_counts():
    df = _table()
    one = df.iloc[:1]
    with pytest.raises(ValueError, match=r"split: the test split takes 10% of 1 utterances \(1\) and leaves 0 to train on"):
        split_utterances(one, SplitConfig(test_fraction=0.1))
    with pytest.raises(ValueError, match=r"split: the val split takes 20% of 1 utterances"):
        split_utterances(one, SplitConfig(test_fraction=0.0))
    single_speaker = df[df["speaker"] == df["speaker"].iloc[0]]
    with pytest.raises(ValueError, match=rf"the test split of the speaker strategy needs utterances of at least 2 "
                                         rf"speakers; {len(single_speaker)} utterances of 1 speaker\(s\)"):
        split_utterances(single_speaker, SplitConfig(strategy="speaker"))
    only_ravdess = df[df["corpus"] == "ravdess"]
    with pytest.raises(ValueError, match=rf"holds out all {len(only_ravdess)} utterances of 'ravdess', the only corpus"):
        split_utterances(only_ravdess, SplitConfig(strategy="corpus", test_corpus="ravdess"))


def test_test_corpus_with_another_strategy_is_refused():
    with pytest.raises(ValidationError, match="split.test_corpus 'ravdess' is only used by split.strategy 'corpus'"):
        SplitConfig(strategy="speaker", test_corpus="ravdess")
