"""Hyperparameter search with Hyperband (seed section 5), one network family at a time.

:func:`tune_family` runs ``keras_tuner.Hyperband`` on a family's hypermodel
(:mod:`speech_emotion.models.hypermodels`: the seed's search space, optionally
narrowed by ``TuningConfig.space``) on the training split, scoring every
trial on the validation split by F1-macro (``val_f1_macro``, maximised) or
the validation loss (``val_loss``, minimised). ``on_trial_end`` receives a
:class:`TrialRecord` as each trial ends (the pipeline logs it as an MLflow
child run). The best hyperparameters (every field of the family's dataclass)
then feed ``training.train_model(train, val, ModelConfig(family=...,
hparams=result.best_hparams), TrainingConfig(...))``, which trains to
convergence with early stopping.

Importing this module is cheap (pydantic, pandas); Keras and keras-tuner are
imported by :func:`tune_family`.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from speech_emotion.config import TuningConfig
from speech_emotion.features import FeatureSet

logger = logging.getLogger(__name__)


@dataclass
class TrialRecord:
    """One ended trial. ``hparams``: every hyperparameter of the family (sampled + defaults);
    ``score``: the objective (None unless completed); ``metrics``: the logged metrics at the
    trial's best epoch (``loss``, ``accuracy``, ``f1_macro``, ``val_loss``, ``val_accuracy``,
    ``val_f1_macro``); ``epochs``: the epoch the trial trained up to, from ``initial_epoch``
    (Hyperband continues a configuration of the previous round, ``resumed_from``)."""

    trial_id: str
    hparams: dict[str, Any]
    score: float | None
    metrics: dict[str, float]
    epochs: int
    status: str = "COMPLETED"
    initial_epoch: int = 0
    bracket: int | None = None
    round: int | None = None
    resumed_from: str | None = None

    def to_row(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k not in ("hparams", "metrics")}
        row.update(self.hparams)
        return row


@dataclass
class TuningResult:
    family: str
    objective: str
    best_hparams: dict[str, Any]
    best_score: float
    #: one row per trial: trial_id, status, score, epochs, initial_epoch, bracket, round, resumed_from,
    #: then every hyperparameter
    trials: pd.DataFrame
    best_trial_id: str = ""
    records: list[TrialRecord] = field(default_factory=list)


def objective_direction(objective: str) -> str:
    from speech_emotion.models.hypermodels import OBJECTIVES

    return OBJECTIVES[objective]


def _record(family: str, trial) -> TrialRecord:
    from speech_emotion.models.hypermodels import resolved_hparams

    values = dict(trial.hyperparameters.values)
    metrics: dict[str, float] = {}
    for name in trial.metrics.metrics:
        value = trial.metrics.get_last_value(name)  # the trial's best epoch (one observation per execution)
        if value is not None:
            metrics[name] = float(value)
    status = str(getattr(trial.status, "value", trial.status))
    score = trial.score if status == "COMPLETED" else None
    return TrialRecord(
        trial_id=str(trial.trial_id),
        hparams=resolved_hparams(family, values),
        score=None if score is None else float(score),
        metrics=metrics,
        epochs=int(values.get("tuner/epochs", 0)),
        status=status,
        initial_epoch=int(values.get("tuner/initial_epoch", 0)),
        bracket=values.get("tuner/bracket"),
        round=values.get("tuner/round"),
        resumed_from=values.get("tuner/trial_id"),
    )


def _make_tuner_class():
    import keras_tuner

    class RecordingHyperband(keras_tuner.Hyperband):
        """Hyperband that hands a TrialRecord of every ended trial to a callback."""

        def __init__(self, *args: Any, family: str, trial_callback=None, **kwargs: Any):
            self._family = family
            self._trial_callback = trial_callback
            super().__init__(*args, **kwargs)

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            # keras-tuner imports tensorboard here on the TF backend even without a
            # TensorBoard callback; TF 2.21 no longer installs it, and we use none.
            if any(cb.__class__.__name__ == "TensorBoard" for cb in callbacks):
                super()._configure_tensorboard_dir(callbacks, trial, execution)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # the oracle scores the trial
            if self._trial_callback is not None:
                self._trial_callback(_record(self._family, self.oracle.get_trial(trial.trial_id)))

    return RecordingHyperband


def tune_family(
    family: str,
    train: FeatureSet,
    val: FeatureSet,
    config: TuningConfig,
    directory: str | Path,
    on_trial_end: Callable[[TrialRecord], None] | None = None,
    progress: bool = False,
) -> TuningResult:
    """Hyperband search of ``family``'s hyperparameters; trials (checkpoints, oracle state) go
    to ``directory/<family>``, overwritten: give every run a folder of its own (the pipeline's
    step uses a fresh temporary folder, so runs at the same time never share one). Raises
    ValueError when ``config.enabled`` is False."""
    if not config.enabled:
        raise ValueError("tuning is disabled (TuningConfig.enabled is False)")
    import keras
    import keras_tuner

    from speech_emotion.corpora.common import EMOTIONS
    from speech_emotion.models import get_family
    from speech_emotion.models.hypermodels import FamilyHyperModel, resolved_hparams
    from speech_emotion.models.trained import model_inputs
    from speech_emotion.datasets import make_dataset
    from speech_emotion.training import input_shapes

    fam = get_family(family)
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy("mixed_float16" if config.mixed_precision else "float32")

    x_train, x_val = model_inputs(train, fam.input), model_inputs(val, fam.input)
    hypermodel = FamilyHyperModel(fam.name, input_shapes(x_train), n_classes=len(EMOTIONS),
                                  space_overrides=config.space)
    tuner = _make_tuner_class()(
        hypermodel,
        family=fam.name,
        trial_callback=on_trial_end,
        objective=keras_tuner.Objective(config.objective, direction=objective_direction(config.objective)),
        max_epochs=config.max_epochs,
        factor=config.factor,
        hyperband_iterations=config.hyperband_iterations,
        seed=config.seed,
        executions_per_trial=config.executions_per_trial,
        directory=str(directory),
        project_name=fam.name,
        overwrite=True,
    )
    logger.info("tuning %s: Hyperband max_epochs=%d factor=%d on %d clips, objective %s",
                fam.name, config.max_epochs, config.factor, len(train), config.objective)
    # keras-tuner runs a full garbage collection before every trial, twice (its own gc.collect() and Keras's
    # clear_session()), over every object of this process: half a second each in a script that holds
    # TensorFlow, about a second in a pipeline step that also holds ZenML and the earlier steps' artifacts.
    # The objects that exist before the search sit out those collections (gc.freeze); what the trials
    # allocate is still collected. One collection first, so that garbage already there is not kept for the
    # whole search. (gc.unfreeze() would also release a caller's own freeze: no caller freezes.)
    gc.collect()
    gc.freeze()
    try:
        tuner.search(
            make_dataset(x_train, train.labels, config.batch_size, True, config.seed),
            validation_data=make_dataset(x_val, val.labels, config.batch_size, False, config.seed),
            shuffle=False,  # the training dataset shuffles itself every epoch
            verbose=1 if progress else 0,
        )
    finally:
        gc.unfreeze()

    trials = tuner.oracle.trials
    records = [_record(fam.name, trials[tid]) for tid in sorted(trials, key=_trial_order)]
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].score is None:
        raise RuntimeError(f"no {fam.name} tuning trial completed; see {directory}")
    table = pd.DataFrame([r.to_row() for r in records])
    logger.info("tuning %s: %d trials, best %s = %.4f (trial %s)",
                fam.name, len(records), config.objective, best[0].score, best[0].trial_id)
    return TuningResult(
        family=fam.name,
        objective=config.objective,
        best_hparams=resolved_hparams(fam, best[0].hyperparameters.values),
        best_score=float(best[0].score),
        trials=table,
        best_trial_id=str(best[0].trial_id),
        records=records,
    )


def _trial_order(trial_id: str) -> tuple[int, str]:
    return (int(trial_id), trial_id) if str(trial_id).isdigit() else (1 << 62, str(trial_id))
