"""Train / validation / test splits of the utterance table.

The seed validates on a stratified 20 % of its training set. We keep that and
also hold out a test split that nothing (tuning, early stopping, ensemble
weights) looks at. Speaker-independent and leave-one-corpus-out splits avoid
the seed's leakage of speakers and sentences across splits.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from speech_emotion.config import SplitConfig

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def _strata(df: pd.DataFrame, n_holdout: int) -> pd.Series | None:
    """Stratify by class x origin when every stratum can be split, else by class, else not at all."""
    n_rest = len(df) - n_holdout
    for key in (df["emotion"] + "/" + df["corpus"], df["emotion"]):
        counts = key.value_counts()
        if counts.min() >= 2 and n_holdout >= counts.size and n_rest >= counts.size:
            return key
    return None


def _stratified(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_holdout = int(np.ceil(fraction * len(df)))
    strata = _strata(df, n_holdout)
    if strata is None:
        logger.warning("split: too few utterances per class to stratify; splitting at random")
    rest, holdout = train_test_split(df, test_size=n_holdout, random_state=seed, stratify=strata)
    return rest, holdout


def _by_speaker(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_groups = df["speaker"].nunique()
    n_splits = int(min(max(2, round(1 / fraction)), n_groups))
    if n_splits < 2:
        raise ValueError("speaker-independent split needs at least two speakers")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest_idx, holdout_idx = next(cv.split(df, df["emotion"], groups=df["speaker"]))
    return df.iloc[rest_idx], df.iloc[holdout_idx]


def split_utterances(utterances: pd.DataFrame, config: SplitConfig) -> dict[str, pd.DataFrame]:
    """Split into ``train``, ``val`` and ``test`` tables (``test`` may be empty)."""
    if utterances.empty:
        raise ValueError("cannot split an empty utterance table: no file was ingested")
    # a canonical order that does not depend on where the corpora are mounted
    key = utterances["corpus"] + "/" + utterances["speaker"] + "/" + utterances["path"].map(lambda p: p.replace("\\", "/").rsplit("/", 1)[-1])
    df = utterances.assign(_key=key).sort_values(["_key", "path"]).drop(columns="_key").reset_index(drop=True)
    split = _by_speaker if config.strategy == "speaker" else _stratified

    if config.strategy == "corpus":
        is_test = df["corpus"] == config.test_corpus
        if not is_test.any():
            raise ValueError(f"test_corpus {config.test_corpus!r} has no ingested utterance")
        rest, test = df[~is_test], df[is_test]
    elif config.test_fraction > 0:
        rest, test = split(df, config.test_fraction, config.seed)
    else:
        rest, test = df, df.iloc[:0]
    train, val = split(rest, config.val_fraction, config.seed + 1)

    out = {name: part.sort_values("path").reset_index(drop=True) for name, part in zip(SPLITS, (train, val, test))}
    logger.info("split (%s): %s", config.strategy, {k: len(v) for k, v in out.items()})
    return out
