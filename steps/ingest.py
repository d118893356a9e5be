"""Ingest the four corpora into an utterance table and a rejected table."""

from __future__ import annotations

import logging
from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from speech_emotion.config import IngestConfig
from speech_emotion.corpora.common import IngestOptions
from speech_emotion.corpora.custom import CustomCorpus
from speech_emotion.corpora.ingest import ingest_corpora as ingest
from steps import _tracking

logger = logging.getLogger(__name__)


@step(experiment_tracker=True)
def ingest_corpora(
    roots: dict[str, str],
    options: IngestConfig,
    fingerprint: str,
    custom: list[CustomCorpus] | None = None,
) -> tuple[Annotated[pd.DataFrame, "utterances"], Annotated[pd.DataFrame, "rejected"]]:
    """Parse, validate and deduplicate every file under the corpus roots and the custom corpora's.

    ``fingerprint`` is a digest of the files' names, sizes and times computed
    when the pipeline is compiled: it is what makes a re-run with changed
    files miss the cache (a folder path alone would not).
    """
    custom = custom or []
    result = ingest(roots, IngestOptions(**options.model_dump()), progress=True, custom=custom)
    logger.info("\n%s", result.summary())
    if len(result.rejected):
        logger.warning(
            "%d of %d files rejected; see the 'rejected' artifact (path, reason, detail)",
            len(result.rejected), result.found,
        )
    counts = {
        "files_found": result.found,
        "files_ingested": len(result.utterances),
        "files_rejected": len(result.rejected),
    }
    log_metadata(metadata={**counts, "corpus_fingerprint": fingerprint})
    _tracking.log_params("ingest", {**options.model_dump(), "roots": roots, "fingerprint": fingerprint,
                                    **({"custom": {c.name: c.model_dump(exclude={"name"}) for c in custom}} if custom else {})})
    _tracking.log_metrics({k: float(v) for k, v in counts.items()})
    _tracking.log_table(result.rejected, "data/rejected.csv")
    return result.utterances, result.rejected
