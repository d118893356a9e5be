"""keras-tuner hypermodels of the families, with the seed's search spaces (section 5).

A search space maps hyperparameter names (fields of the family's
hyperparameter dataclass) to a list of choices or an integer range
``{"min", "max", "step"}``. The seed's CNN2D-LSTM space (5.1.2) is:

- kernel size {3, 5}; conv blocks 1-4; first-block filters {32, 64, 128};
  later filters {64, 128, 256}; LSTM units 32-64 step 4; learning rate
  {1e-3, 1e-4, 1e-5}; optimizer {adam, rmsprop}.

The seed leaves the other spaces implicit ("in most cases similar"): they are
the same, with 2e-4 added to the learning rates (Tables 5, 8, 10 found it) and
the dropout {0, 0.2, 0.5} the seed tunes for CNN1D-LSTM and LSTM-CNN. The
fused model searches both branches (``cnn1d_*``, ``cnn2d_*``); the
CNN-Transformer its filters, attention and feed-forward sizes.

``space_overrides`` replaces or adds entries (a list of choices, one value or
a one-element list to fix it, a range dict, or None to drop it from the search
and keep the family default), so a demo profile can tune tiny networks.
Every sampled configuration goes through the family's ``HParams.from_dict``
and builder: the one code path of training and of the paper's settings.

This module imports Keras and keras-tuner.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import keras
import keras_tuner
from keras import ops

from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.evaluation import f1_macro_from_confusion
from speech_emotion.models import Family, HParams, get_family
from speech_emotion.models.cnn_lstm import compile_classifier

OBJECTIVES: dict[str, str] = {"val_f1_macro": "max", "val_loss": "min"}


@dataclass(frozen=True)
class IntRange:
    min: int
    max: int
    step: int = 1


Spec = tuple | IntRange  # a tuple of choices or an integer range

_LR = [1e-3, 1e-4, 1e-5]
_LR_2E4 = [1e-3, 2e-4, 1e-4, 1e-5]
_OPT = ["adam", "rmsprop"]
_DROPOUT = [0.0, 0.2, 0.5]
_CNN_LSTM = {
    "kernel_size": [3, 5],
    "conv_blocks": {"min": 1, "max": 4, "step": 1},
    "filters_first": [32, 64, 128],
    "filters_next": [64, 128, 256],
    "lstm_units": {"min": 32, "max": 64, "step": 4},
}
_CNN1D_LSTM = {**_CNN_LSTM, "learning_rate": _LR_2E4, "optimizer": _OPT, "dropout": _DROPOUT}
_LSTM_CNN = {**_CNN_LSTM, "learning_rate": _LR_2E4, "optimizer": _OPT, "dropout": _DROPOUT}

#: the default search space of every family
SEARCH_SPACES: dict[str, dict[str, Any]] = {
    "cnn2d_lstm": {**_CNN_LSTM, "learning_rate": _LR, "optimizer": _OPT},
    "cnn1d_lstm": _CNN1D_LSTM,
    "cnn1d_lstm_no_mel": _CNN1D_LSTM,
    "cnn1d_lstm_all": _CNN1D_LSTM,
    "cnn_lstm_fused": {
        **{f"cnn1d_{k}": v for k, v in _CNN_LSTM.items()},
        "cnn1d_dropout": _DROPOUT,
        **{f"cnn2d_{k}": v for k, v in _CNN_LSTM.items()},
        "dropout": _DROPOUT,
        "learning_rate": _LR_2E4,
        "optimizer": _OPT,
    },
    "lstm_cnn_1d": _LSTM_CNN,
    "lstm_cnn_2d": _LSTM_CNN,
    "cnn_transformer": {
        "kernel_size": [3, 5],
        "filters_first": [16, 32, 64],
        "num_heads": [2, 4, 8],
        "key_dim": [16, 32, 64],
        "ff_dim": [64, 128, 256],
        "dropout": [0.0, 0.1, 0.2],
        "learning_rate": _LR,
        "optimizer": _OPT,
    },
}


def search_space(family: str | Family, space_overrides: Mapping[str, Any] | None = None) -> dict[str, Spec]:
    """The family's search space with ``space_overrides`` applied, every value checked and coerced
    to the hyperparameter's type (so ``[0, 0.5]`` for a dropout becomes ``(0.0, 0.5)``)."""
    fam = family if isinstance(family, Family) else get_family(family)
    known = {f.name for f in fields(fam.hparams)}
    raw: dict[str, Any] = dict(SEARCH_SPACES[fam.name])
    for name, value in dict(space_overrides or {}).items():
        if name not in known:
            raise ValueError(f"unknown {fam.hparams.__name__} hyperparameter {name!r} in the search space; "
                             f"known: {sorted(known)}")
        if value is None:
            raw.pop(name, None)
        else:
            raw[name] = value
    return {name: _spec(fam.hparams, name, value) for name, value in raw.items()}


def _spec(hparams: type[HParams], name: str, value: Any) -> Spec:
    def check(v: Any) -> Any:
        return getattr(hparams.from_dict({name: v}), name)  # coerces, and raises ValueError when invalid

    if isinstance(value, IntRange):
        value = {"min": value.min, "max": value.max, "step": value.step}
    if isinstance(value, Mapping):
        extra = set(value) - {"min", "max", "step"}
        if extra or not {"min", "max"} <= set(value):
            raise ValueError(f"search range for {name!r} needs min, max (and optional step), got {dict(value)}")
        lo, hi, step = check(value["min"]), check(value["max"]), int(value.get("step", 1))
        if not isinstance(lo, int) or isinstance(lo, bool):
            raise ValueError(f"a min/max range is for integer hyperparameters; give {name!r} a list of choices")
        if hi < lo or step < 1:
            raise ValueError(f"bad search range for {name!r}: {dict(value)}")
        return IntRange(lo, hi, step)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f"empty list of choices for {name!r}")
    choices: list[Any] = []
    for v in values:
        v = check(v)
        if v not in choices:
            choices.append(v)
    return tuple(choices)


def space_values(space: Mapping[str, Spec]) -> dict[str, list[Any]]:
    """Every value a search space can give, per hyperparameter (for checks and reports)."""
    return {
        name: list(range(spec.min, spec.max + 1, spec.step)) if isinstance(spec, IntRange) else list(spec)
        for name, spec in space.items()
    }


@keras.saving.register_keras_serializable(package="speech_emotion", name="SparseF1Macro")
class SparseF1Macro(keras.metrics.Metric):
    """F1-macro of softmax outputs against sparse integer labels, accumulated over an epoch.

    Accumulates the confusion matrix in the graph; the figure is the project's one F1-macro,
    :func:`speech_emotion.evaluation.f1_macro_from_confusion`, computed with Keras ops. Compiled
    into the tuning models as ``f1_macro``, so Keras logs ``val_f1_macro`` for the tuner.
    """

    def __init__(self, num_classes: int = len(EMOTIONS), name: str = "f1_macro", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes), initializer="zeros", dtype="float32", name="confusion"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        y_pred = ops.cast(ops.argmax(ops.reshape(y_pred, (-1, self.num_classes)), axis=-1), "int32")
        truth = ops.one_hot(y_true, self.num_classes, dtype="float32")
        predicted = ops.one_hot(y_pred, self.num_classes, dtype="float32")
        if sample_weight is not None:
            truth = truth * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        self.confusion.assign_add(ops.matmul(ops.transpose(truth), predicted))

    def result(self):
        return f1_macro_from_confusion(self.confusion, xp=ops)

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float32"))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}


class FamilyHyperModel(keras_tuner.HyperModel):
    """A family's hypermodel: samples its search space, builds with the family's builder.

    ``input_shape`` is what the builder takes (a tuple of shapes for a
    multi-input family). Models are compiled with the F1-macro metric
    (:class:`SparseF1Macro`) besides accuracy, for the ``val_f1_macro`` objective.
    """

    def __init__(
        self,
        family: str,
        input_shape: tuple,
        n_classes: int = len(EMOTIONS),
        space_overrides: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(name=kwargs.pop("name", family), **kwargs)
        self.family = get_family(family)
        self.input_shape = input_shape
        self.n_classes = int(n_classes)
        self.space = search_space(self.family, space_overrides)

    def hparams(self, hp: keras_tuner.HyperParameters) -> HParams:
        """Declare the space in ``hp`` and return the family's hyperparameters for the sampled values."""
        values = {}
        for name, spec in self.space.items():
            if isinstance(spec, IntRange):
                values[name] = hp.Int(name, spec.min, spec.max, step=spec.step)
            elif len(spec) == 1:
                values[name] = hp.Fixed(name, spec[0])
            else:
                values[name] = hp.Choice(name, list(spec))
        return self.family.hparams.from_dict(values)

    def build(self, hp: keras_tuner.HyperParameters):
        hparams = self.hparams(hp)
        model = self.family.build(self.input_shape, self.n_classes, hparams)
        return compile_classifier(model, hparams, extra_metrics=[SparseF1Macro(self.n_classes)])


def hypermodel(family: str, input_shape: tuple, space_overrides: Mapping[str, Any] | None = None,
               n_classes: int = len(EMOTIONS)) -> FamilyHyperModel:
    return FamilyHyperModel(family, input_shape, n_classes=n_classes, space_overrides=space_overrides)


def resolved_hparams(family: str | Family, values: Mapping[str, Any]) -> dict[str, Any]:
    """All hyperparameters of the family for a tuner's values (``tuner/*`` bookkeeping dropped, defaults filled in)."""
    fam = family if isinstance(family, Family) else get_family(family)
    return fam.hparams.from_dict({k: v for k, v in values.items() if not k.startswith("tuner/")}).to_dict()
