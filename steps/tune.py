"""Hyperband search of one family's hyperparameters (keras-tuner), every trial an MLflow child run."""

from __future__ import annotations

import tempfile
from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from speech_emotion.features import FeatureSet
from speech_emotion.tuning import TrialRecord, TuningConfig, tune_family
from steps import _tracking


def tuning_space(fixed: dict, space: dict[str, list]) -> dict[str, list]:
    """The search space given to the tuner: explicit ``space`` entries are searched; the
    family's configured hyperparameters are fixed; everything else keeps the seed's space."""
    return {**{name: [value] for name, value in fixed.items()}, **space}


@step(experiment_tracker=True)
def tune_model(
    train: FeatureSet,
    val: FeatureSet,
    family: str,
    fixed_hparams: dict,
    space: dict[str, list],
    config: TuningConfig,
) -> tuple[Annotated[dict, "best_hparams"], Annotated[pd.DataFrame, "tuning_trials"]]:
    """Tune ``family``; returns its best hyperparameters (all of them) and the trials table.

    In MLflow: a child run ``tune/<family>`` of the pipeline's run, and under it
    one run per trial with its hyperparameters, validation metrics and epochs.
    """
    tuning = config.model_copy(update={"space": tuning_space(fixed_hparams, space)})

    def log_trial(record: TrialRecord) -> None:
        with _tracking.child_run(f"{family}/trial_{record.trial_id}", {"family": family, "trial": record.trial_id}):
            _tracking.log_params("", record.hparams)
            _tracking.log_metrics({k: v for k, v in record.metrics.items() if v is not None})
            _tracking.log_metrics({"epochs": float(record.epochs), "score": float(record.score or float("nan"))})
            _tracking.set_tags({"status": record.status})

    with _tracking.child_run(f"tune/{family}", {"family": family, "stage": "tuning"}):
        _tracking.log_params("tuning", tuning.model_dump(exclude={"space"}))
        _tracking.log_dict(tuning.space, f"tuning/{family}_space.json")
        # keras-tuner's project folder: one per run (and removed after it), never shared by two runs
        with tempfile.TemporaryDirectory(prefix=f"tune-{family}-") as directory:
            result = tune_family(family, train, val, tuning, directory, on_trial_end=log_trial)
        _tracking.log_params("best", result.best_hparams)
        _tracking.log_metrics({f"best_{result.objective}": result.best_score, "trials": float(len(result.trials))})
        _tracking.log_table(result.trials, f"tuning/{family}_trials.csv")
    _tracking.log_metrics({f"{family}.tuning_best_{result.objective}": result.best_score})
    log_metadata(metadata={"best_score": result.best_score, "objective": result.objective,
                           "n_trials": len(result.trials), "best_hparams": result.best_hparams})
    return result.best_hparams, result.trials
