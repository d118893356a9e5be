"""Retraining: did the data change since the production version was trained? And version housekeeping."""

from __future__ import annotations

import logging
from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from speech_emotion import versions
from speech_emotion.config import IngestConfig, RetrainConfig
from speech_emotion.corpora.common import IngestOptions
from speech_emotion.corpora.ingest import ingest_corpora as ingest
from speech_emotion.corpora.common import Rejection, Utterance
from speech_emotion.corpora.custom import CustomCorpus
from speech_emotion.corpora.fingerprint import data_fingerprint, files_fingerprint, source_fingerprint
from speech_emotion.retraining import CHANGE_COLUMNS, RetrainDecision, decide, diff_utterances
from steps import _tracking

logger = logging.getLogger(__name__)


@step(enable_cache=False, experiment_tracker=True)
def check_for_new_data(
    roots: dict[str, str], options: IngestConfig, retrain: RetrainConfig, hash_cache_dir: str,
    custom: list[CustomCorpus] | None = None,
) -> tuple[
    Annotated[pd.DataFrame, "utterances"],
    Annotated[pd.DataFrame, "rejected"],
    Annotated[pd.DataFrame, "data_changes"],
    Annotated[dict, "retrain_decision"],
]:
    """Never cached: the corpora are looked at on every run, whatever was compiled when.

    When the files and the ingestion options are those of the production version (content hashes,
    cached by path, size and mtime), nothing is ingested. Otherwise the corpora are ingested and
    their data fingerprint compared; the changes per corpus and class are logged either way."""
    production = versions.production_version(retrain.model)
    meta = (production.run_metadata or {}) if production is not None else {}
    custom = custom or []
    every_root = {**roots, **{c.name: c.root for c in custom}}
    source = source_fingerprint(files_fingerprint(every_root, cache_dir=hash_cache_dir), options.model_dump())
    empty = (pd.DataFrame(columns=Utterance.columns()), pd.DataFrame(columns=Rejection.columns()))
    if production is not None and not retrain.force and meta.get("source_fingerprint") == source:
        utterances, rejected = empty
        changes = pd.DataFrame(columns=CHANGE_COLUMNS)
        decision = RetrainDecision(False, f"no new data: the corpus files are those production version "
                                   f"{production.name} was trained on", fingerprint=meta.get("data_fingerprint", ""),
                                   production_fingerprint=meta.get("data_fingerprint"),
                                   production_version=production.name)
    else:
        result = ingest(roots, IngestOptions(**options.model_dump()), progress=True, custom=custom)
        utterances, rejected = result.utterances, result.rejected
        previous = None
        if production is not None and production.get_artifact("utterances") is not None:
            previous = production.get_artifact("utterances").load()
        changes = diff_utterances(previous, utterances)
        decision = decide(data_fingerprint(utterances), meta.get("data_fingerprint"), retrain.force,
                          None if production is None else production.name)
    logger.info("retraining: %s", "train" if decision.train else "skip")
    logger.info(decision.reason)
    if len(changes):
        logger.info("changes since the production version:\n%s", changes.to_string(index=False))
    totals = {k: int(changes[k].sum()) if len(changes) else 0 for k in ("added", "removed", "changed")}
    _tracking.set_tags({"retrain": "train" if decision.train else "no new data", "retrain_reason": decision.reason})
    _tracking.log_metrics({f"files_{k}": float(v) for k, v in totals.items()})
    _tracking.log_table(changes, "retrain/changes.csv")
    log_metadata(metadata={**decision.metadata(), **{f"files_{k}": v for k, v in totals.items()}})
    return utterances, rejected, changes, decision.metadata()


@step(enable_cache=False)
def archive_old_versions(promotion_decision: dict, model: str, keep: int) -> Annotated[list[str], "archived_versions"]:
    """Archive versions beyond the newest ``keep`` that are not in production, so weekly retrains do not pile up."""
    archived = versions.archive_old_versions(model, keep)
    if archived:
        logger.info("archived versions %s of %s (keeping the newest %d and production)", archived, model, keep)
    return archived
