"""Split the utterance table into train / validation / test."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from speech_emotion.config import SplitConfig
from speech_emotion.splits import split_utterances
from steps import _tracking


@step(experiment_tracker=True)
def split_dataset(
    utterances: pd.DataFrame, config: SplitConfig
) -> tuple[
    Annotated[pd.DataFrame, "train_utterances"],
    Annotated[pd.DataFrame, "val_utterances"],
    Annotated[pd.DataFrame, "test_utterances"],
]:
    parts = split_utterances(utterances, config)
    _tracking.set_tags({"protocol": "holdout"})
    _tracking.log_params("split", config.model_dump())
    _tracking.log_metrics({f"n_{name}": float(len(df)) for name, df in parts.items()})
    return parts["train"], parts["val"], parts["test"]
