"""Train / validation / test splits of the utterance table.

The seed validates on a stratified 20 % of its training set. We keep that and
also hold out a test split that nothing (tuning, early stopping, ensemble
weights) looks at. Speaker-independent and leave-one-corpus-out splits avoid
the seed's leakage of speakers and sentences across splits.

Every split is checked for leakage (:func:`check_leakage`): the same audio
content in two splits fails the run naming the files, and so does a speaker in
two splits where the strategy keeps speakers apart (``speaker``; the test
corpus under ``corpus``). The cross-validated protocols' folds
(:mod:`speech_emotion.protocols`) are checked the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from speech_emotion.config import SplitConfig

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: how many files or speakers a leakage message names before it says "and N more"
_SHOWN = 5


class LeakageError(ValueError):
    """The same audio, or a speaker the protocol keeps apart, in two splits."""


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def check_leakage(parts: Mapping[str, pd.DataFrame], speaker_disjoint: Iterable[tuple[str, str]] = (),
                  where: str = "split") -> None:
    """Fail with a :class:`LeakageError` naming the files or speakers when two parts share audio
    content (the utterances' ``content_hash``) or when a pair in ``speaker_disjoint`` shares a
    speaker. Empty parts are fine."""
    problems = []
    if missing := [name for name, part in parts.items() if "content_hash" not in part.columns]:
        raise ValueError(f"{where}: the {missing} table(s) lack the content_hash column the leakage check needs")
    for a, b in combinations(parts, 2):
        pa, pb = parts[a], parts[b]
        if pa.empty or pb.empty:
            continue
        shared = sorted(set(pa["content_hash"]) & set(pb["content_hash"]))
        if shared:
            pairs = [f"{pa.loc[pa['content_hash'] == h, 'path'].iloc[0]} ({a}) = "
                     f"{pb.loc[pb['content_hash'] == h, 'path'].iloc[0]} ({b})" for h in shared]
            problems.append(f"the same audio content in {a} and {b} ({len(shared)} file(s)): {_listing(pairs)}")
    for a, b in speaker_disjoint:
        if a not in parts or b not in parts or parts[a].empty or parts[b].empty:
            continue
        shared = sorted(set(parts[a]["speaker"]) & set(parts[b]["speaker"]))
        if shared:
            problems.append(f"speaker(s) in both {a} and {b}: {_listing(shared)}")
    if problems:
        raise LeakageError(f"{where}: leakage between splits: " + "; ".join(problems))


def speaker_disjoint_pairs(strategy: str) -> list[tuple[str, str]]:
    """The pairs of splits that ``split.strategy`` keeps free of shared speakers."""
    if strategy == "speaker":
        return list(combinations(SPLITS, 2))
    if strategy == "corpus":  # the held-out corpus; train and val are stratified within the others
        return [("train", "test"), ("val", "test")]
    return []


def canonical_order(utterances: pd.DataFrame) -> pd.DataFrame:
    """The utterances in an order that does not depend on where the corpora are mounted."""
    key = utterances["corpus"] + "/" + utterances["speaker"] + "/" + utterances["path"].map(
        lambda p: p.replace("\\", "/").rsplit("/", 1)[-1])
    return utterances.assign(_key=key).sort_values(["_key", "path"]).drop(columns="_key").reset_index(drop=True)


def _counts(df: pd.DataFrame) -> str:
    """Utterances per corpus, for messages: "crema 3, tess 1"."""
    return ", ".join(f"{c} {n}" for c, n in df["corpus"].value_counts().sort_index().items()) or "none"


def _strata(df: pd.DataFrame, n_holdout: int) -> pd.Series | None:
    """Stratify by class x origin when every stratum can be split, else by class, else not at all."""
    n_rest = len(df) - n_holdout
    for key in (df["emotion"] + "/" + df["corpus"], df["emotion"]):
        counts = key.value_counts()
        if counts.min() >= 2 and n_holdout >= counts.size and n_rest >= counts.size:
            return key
    return None


def _stratified(df: pd.DataFrame, fraction: float, seed: int, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_holdout = int(np.ceil(fraction * len(df)))
    if len(df) - n_holdout < 1:
        raise ValueError(f"split: the {name} split takes {fraction:.0%} of {len(df)} utterances ({n_holdout}) and "
                         f"leaves {len(df) - n_holdout} to train on; at least 2 utterances are needed here "
                         f"({_counts(df)})")
    strata = _strata(df, n_holdout)
    if strata is None:
        logger.warning("split: too few utterances per class to stratify; splitting at random")
    rest, holdout = train_test_split(df, test_size=n_holdout, random_state=seed, stratify=strata)
    return rest, holdout


def split_by_speaker(df: pd.DataFrame, fraction: float, seed: int, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_groups = df["speaker"].nunique()
    n_splits = int(min(max(2, round(1 / fraction)), n_groups))
    if n_splits < 2:
        raise ValueError(f"split: the {name} split of the speaker strategy needs utterances of at least 2 speakers; "
                         f"{len(df)} utterances of {n_groups} speaker(s) are left ({_counts(df)})")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest_idx, holdout_idx = next(cv.split(df, df["emotion"], groups=df["speaker"]))
    return df.iloc[rest_idx], df.iloc[holdout_idx]


def split_utterances(utterances: pd.DataFrame, config: SplitConfig) -> dict[str, pd.DataFrame]:
    """Split into ``train``, ``val`` and ``test`` tables (``test`` may be empty)."""
    if utterances.empty:
        raise ValueError("cannot split an empty utterance table: no file was ingested")
    df = canonical_order(utterances)
    split = split_by_speaker if config.strategy == "speaker" else _stratified

    if config.strategy == "corpus":
        is_test = df["corpus"] == config.test_corpus
        if not is_test.any():
            raise ValueError(f"test_corpus {config.test_corpus!r} has no ingested utterance")
        rest, test = df[~is_test], df[is_test]
        if rest.empty:
            raise ValueError(f"split: the test split holds out all {len(test)} utterances of {config.test_corpus!r}, "
                             "the only corpus ingested; no utterance is left for train and val")
    elif config.test_fraction > 0:
        rest, test = split(df, config.test_fraction, config.seed, "test")
    else:
        rest, test = df, df.iloc[:0]
    train, val = split(rest, config.val_fraction, config.seed + 1, "val")

    out = {name: part.sort_values("path").reset_index(drop=True) for name, part in zip(SPLITS, (train, val, test))}
    check_leakage(out, speaker_disjoint_pairs(config.strategy), where=f"split (strategy {config.strategy})")
    logger.info("split (%s): %s", config.strategy, {k: len(v) for k, v in out.items()})
    return out
