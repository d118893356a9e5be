"""Should a scheduled run retrain, and what changed since the production model was trained?

Files are matched by corpus and path relative to the corpus root, so moving or
re-mounting a corpus is no change; a file whose content hash differs is
``changed``. The comparison is against the utterance table linked to the
production Model version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

__all__ = ["RetrainDecision", "decide", "diff_utterances"]

CHANGE_COLUMNS = ["corpus", "emotion", "added", "removed", "changed"]


def diff_utterances(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Files added, removed and changed per corpus and class (one row per corpus x emotion with any)."""
    key = ["corpus", "relpath"]
    cols = key + ["emotion", "content_hash"]
    new = new[cols]
    old = pd.DataFrame(columns=cols) if old is None else old[cols]
    merged = old.merge(new, on=key, how="outer", suffixes=("_old", "_new"), indicator=True)
    merged["emotion"] = merged["emotion_new"].fillna(merged["emotion_old"])
    merged["added"] = merged["_merge"] == "right_only"
    merged["removed"] = merged["_merge"] == "left_only"
    merged["changed"] = (merged["_merge"] == "both") & (
        (merged["content_hash_old"] != merged["content_hash_new"]) | (merged["emotion_old"] != merged["emotion_new"]))
    table = merged.groupby(["corpus", "emotion"])[["added", "removed", "changed"]].sum().astype(int).reset_index()
    table = table[(table[["added", "removed", "changed"]].sum(axis=1)) > 0]
    return table[CHANGE_COLUMNS].sort_values(["corpus", "emotion"]).reset_index(drop=True)


@dataclass(frozen=True)
class RetrainDecision:
    train: bool
    reason: str
    fingerprint: str
    production_fingerprint: str | None = None
    production_version: str | None = None

    def metadata(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def decide(fingerprint: str, production_fingerprint: str | None, force: bool = False,
           production_version: str | None = None) -> RetrainDecision:
    common = dict(fingerprint=fingerprint, production_fingerprint=production_fingerprint,
                  production_version=production_version)
    if production_fingerprint is None:
        return RetrainDecision(True, "no production version yet", **common)
    if force:
        return RetrainDecision(True, "retrain.force is true", **common)
    if fingerprint != production_fingerprint:
        return RetrainDecision(True, f"the data changed since production version {production_version} was trained",
                               **common)
    return RetrainDecision(False, f"no new data: the corpora are those production version {production_version} "
                           "was trained on", **common)
