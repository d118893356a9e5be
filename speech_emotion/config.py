"""Typed configuration of the training pipeline.

These pydantic models are the pipeline's parameters: ``configs/*.yaml`` fill
them in (``parameters:`` section) and ZenML validates them before a run. They
hold no logic beyond defaults and validation; the functions that use them live
next to the work they configure. The library modules import their records from
here (``TuningConfig`` in ``tuning``, ``GAConfig`` in ``ensemble``,
``StackingConfig`` in ``models.stacking``), and this module imports no module
that imports it back: only the corpora's label set, the feature and
CNN-LSTM hyperparameter records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from speech_emotion.corpora.common import CORPORA
from speech_emotion.corpora.custom import CustomCorpus
from speech_emotion.features import LOGMEL_STD_FLOOR, FeatureParams, auto_duration
from speech_emotion.models.cnn_lstm import CnnLstmHParams

__all__ = [
    "AblationConfig", "CorporaConfig", "DemoCorpusConfig", "DeployConfig", "EnsembleConfig", "EvaluationConfig",
    "FeatureConfig", "GAConfig", "IngestConfig", "ModelConfig", "PromotionConfig", "ResourcesConfig", "RetrainConfig",
    "SEED_FAMILIES", "SplitConfig", "StackingConfig", "TrainingConfig",
    "TuningConfig", "check_families",
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DemoCorpusConfig(_Config):
    """Synthesise the demo corpus (``ser demo-corpus``) into ``root`` if it is not there."""

    root: str = "data/demo"
    per_class: int = Field(6, ge=1)
    seed: int = 0


class CorporaConfig(_Config):
    """Where the corpora are: a folder per built-in corpus, the demo corpus, and custom corpora.

    Relative paths are taken from the project root; a root may also be an object-storage URL
    (``s3://bucket/corpora/TESS``, any fsspec URL). A corpus left out (None)
    is not used. When ``demo`` is set, corpora without a folder of their own
    come from the demo corpus. ``custom`` describes any other corpus by a
    pattern and an emotion map (:mod:`speech_emotion.corpora.custom`).
    """

    tess: str | None = None
    savee: str | None = None
    ravdess: str | None = None
    crema: str | None = None
    demo: DemoCorpusConfig | None = None
    custom: list[CustomCorpus] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_read(self) -> "CorporaConfig":
        if self.demo is None and not self.custom and not any(getattr(self, c) for c in CORPORA):
            raise ValueError("no corpus configured: give at least one of tess/savee/ravdess/crema, demo, "
                             "or a custom corpus")
        names = [c.name for c in self.custom]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"corpora.custom: names {twice} are used more than once")
        return self

    def names(self) -> list[str]:
        """Every corpus this configuration reads: built-in (own folder or demo) and custom."""
        builtin = [c for c in CORPORA if getattr(self, c) or self.demo is not None]
        return builtin + [c.name for c in self.custom]

    def synthetic(self) -> list[str]:
        """The built-in corpora that come from the synthetic demo corpus (no folder of their own)."""
        return [c for c in CORPORA if self.demo is not None and not getattr(self, c)]

    def explicit_roots(self, base: Path) -> dict[str, str]:
        """The built-in corpora's own roots: absolute local paths, or object-storage URLs as given."""
        from speech_emotion.storage import resolve

        return {corpus: resolve(getattr(self, corpus), base) for corpus in CORPORA if getattr(self, corpus)}


class IngestConfig(_Config):
    ravdess_song: bool = False
    ravdess_calm: Literal["drop", "neutral"] = "drop"
    min_duration_s: float = Field(0.5, ge=0)
    silence_dbfs: float = -60.0


class SplitConfig(_Config):
    """Train/validation/test split.

    ``stratified`` is the seed's (stratified by class and origin; speakers and
    sentences are shared between splits, so figures are optimistic);
    ``speaker`` keeps every speaker in one split; ``corpus`` holds out
    ``test_corpus`` whole (leave-one-corpus-out).
    """

    strategy: Literal["stratified", "speaker", "corpus"] = "stratified"
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    test_corpus: str | None = None
    seed: int = 42

    @model_validator(mode="after")
    def _corpus_strategy_needs_corpus(self) -> "SplitConfig":
        if self.strategy == "corpus" and not self.test_corpus:
            raise ValueError(f"split.strategy 'corpus' needs split.test_corpus: one of {CORPORA} or a custom "
                             "corpus's name")
        if self.strategy != "corpus" and self.test_corpus is not None:
            raise ValueError(f"split.test_corpus {self.test_corpus!r} is only used by split.strategy 'corpus', "
                             f"not {self.strategy!r}: remove it or set strategy: corpus")
        return self


class EvaluationConfig(_Config):
    """Which protocol produces the test figures.

    ``holdout`` is the single split that ``split.strategy`` makes (the run that trains a model
    for use). The others are evaluation runs over test folds; they build no predictor and
    promote nothing: ``speaker_kfold`` (``folds`` folds over speaker groups, stratified by class
    as far as possible, or the folds of prefixed speakers listed in ``speaker_folds``), ``loso``
    (leave one speaker out) and ``loco`` (leave one corpus out). Each fold's validation comes
    from its training speakers, grouped by speaker, with ``split.val_fraction``. Pooled figures
    carry ``bootstrap`` 95 % intervals (0: none).
    """

    protocol: Literal["holdout", "speaker_kfold", "loso", "loco"] = "holdout"
    folds: int = Field(5, ge=2)
    speaker_folds: list[list[str]] | None = None
    bootstrap: int = Field(1000, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> "EvaluationConfig":
        if self.speaker_folds is None:
            return self
        if self.protocol != "speaker_kfold":
            raise ValueError(f"evaluation.speaker_folds is only used by evaluation.protocol 'speaker_kfold', not "
                             f"{self.protocol!r}: remove it or set protocol: speaker_kfold")
        if len(self.speaker_folds) < 2:
            raise ValueError(f"evaluation.speaker_folds lists {len(self.speaker_folds)} fold(s); at least 2 are needed")
        if empty := [i + 1 for i, fold in enumerate(self.speaker_folds) if not fold]:
            raise ValueError(f"evaluation.speaker_folds: fold(s) {empty} list no speaker")
        seen: dict[str, int] = {}
        for i, fold in enumerate(self.speaker_folds):
            for speaker in fold:
                if speaker in seen and seen[speaker] != i + 1:
                    raise ValueError(f"evaluation.speaker_folds: speaker {speaker!r} is in folds {seen[speaker]} and "
                                     f"{i + 1}; a speaker belongs to one fold")
                seen[speaker] = i + 1
        if "folds" in self.model_fields_set and self.folds != len(self.speaker_folds):
            raise ValueError(f"evaluation.folds is {self.folds} but evaluation.speaker_folds lists "
                             f"{len(self.speaker_folds)} folds: remove one of the two")
        # the listed folds' count, so that the dumped config (ZenML passes it to the steps) validates again
        self.folds = len(self.speaker_folds)
        return self

    @property
    def cross_validated(self) -> bool:
        return self.protocol != "holdout"


class FeatureConfig(FeatureParams):
    """Feature extraction parameters plus how the pipeline runs and scales it.

    ``scale``, ``logmel_scaling`` and ``logmel_std_floor`` act after extraction: they are
    not feature parameters, so changing them keeps the per-clip feature cache.
    """

    model_config = ConfigDict(frozen=False, extra="forbid")

    #: seconds every clip is padded or cut to; ``auto``: the ``duration_percentile`` of the training
    #: split's clip durations, at most ``max_duration_s``, rounded up to a whole hop (the seed: 8.0)
    duration_s: float | Literal["auto"] = 8.0
    duration_percentile: float = Field(100.0, gt=0, le=100)
    max_duration_s: float = Field(8.0, gt=0)
    #: content-addressed cache of per-clip features; relative to the project root, or a URL (s3://...)
    cache_dir: str | None = "data/cache/features"
    #: processes extracting the clips' features, and openSMILE's functionals for the baseline, side by side
    #: (the features: at most one per 500 clips to extract, features.MIN_CLIPS_PER_WORKER, and per 40
    #: augmented copies, augmentation.MIN_CLIPS_PER_WORKER; fewer run in-process)
    workers: int = Field(1, ge=1)
    scale: bool = True
    #: ``element``: per (band, frame), the seed's; ``band``: per mel band over the clips' own frames
    logmel_scaling: Literal["element", "band"] = "element"
    #: log-mel standard deviations below this fraction of the pooled one are raised to it (0: no floor)
    logmel_std_floor: float = Field(LOGMEL_STD_FLOOR, ge=0, le=1)
    #: the scaled log-mel's padding frames are set to 0, and the LSTMs, attention and pooling of the
    #: 2-D families skip them (:mod:`speech_emotion.models.masking`); false: the seed's, padding is read
    mask_padding: bool = True

    def params(self, durations_s=None) -> FeatureParams:
        """The feature parameters; with ``duration_s: auto``, the length is resolved from
        ``durations_s``, the training clips' durations (:func:`speech_emotion.features.auto_duration`)."""
        values = self.model_dump(include=set(FeatureParams.model_fields))
        if self.duration_s == "auto":
            if durations_s is None:
                raise ValueError("features.duration_s is 'auto': the training clips' durations are needed to resolve it")
            values["duration_s"] = auto_duration(durations_s, self.duration_percentile, self.max_duration_s,
                                                 self.sample_rate, self.hop_length)
        return FeatureParams(**values)


class ModelConfig(_Config):
    """Which network family to train and its hyperparameters (the seed's Table 3 by default)."""

    family: str = "cnn2d_lstm"
    hparams: dict = Field(default_factory=dict)


class TuningConfig(BaseModel):
    """Hyperband budget and search space (``space``: per-hyperparameter overrides, e.g.
    ``{"filters_first": [4, 8], "conv_blocks": [1, 2]}``; see ``hypermodels.search_space``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    objective: Literal["val_f1_macro", "val_loss"] = "val_f1_macro"
    max_epochs: int = Field(10, ge=1)
    factor: int = Field(3, ge=2)
    hyperband_iterations: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=1)
    seed: int = 0
    space: dict[str, list] = Field(default_factory=dict)
    executions_per_trial: int = Field(1, ge=1)
    mixed_precision: bool = False


#: the seed's six families of its Table 13, with their best hyperparameters as defaults
SEED_FAMILIES: tuple[str, ...] = (
    "cnn_lstm_fused", "cnn1d_lstm", "cnn2d_lstm", "lstm_cnn_2d", "lstm_cnn_1d", "cnn_transformer",
)


def check_families(families: dict[str, dict]) -> dict[str, dict]:
    """Every family known and its hyperparameters valid, before any step runs."""
    from speech_emotion.models import get_family
    from speech_emotion.models.functionals_svm import FAMILY as BASELINE, FunctionalsSvmHParams

    if not families:
        raise ValueError("no model family configured")
    for name, hparams in families.items():
        if name == BASELINE:
            FunctionalsSvmHParams.from_dict(hparams)
            continue
        get_family(name).hparams.from_dict(hparams)
    return families


class GAConfig(BaseModel):
    """Hyperparameters of the genetic weight search (chosen experimentally in the seed)."""

    model_config = ConfigDict(extra="forbid")

    population_size: int = Field(50, ge=2)
    generations: int = Field(40, ge=0)
    crossover_prob: float = Field(0.8, ge=0, le=1)
    mutation_prob: float = Field(0.2, ge=0, le=1)
    #: fraction of the genes averaged by a crossover (at least one gene)
    crossover_gene_fraction: float = Field(0.5, gt=0, le=1)
    #: fraction of the population kept unchanged into the next generation (at least one)
    elite_fraction: float = Field(0.1, ge=0, lt=1)
    tournament_size: int = Field(3, ge=1)
    restarts: int = Field(5, ge=1)
    seed: int = Field(0, ge=0)
    #: a member joins the search only if its validation UAR (balanced accuracy) beats chance (1 / the
    #: classes present) by more than this; the others keep weight 0. A member that collapsed to one
    #: class has a UAR of exactly chance. null: every member joins (the seed)
    min_uar_over_chance: float | None = Field(0.05, ge=0, le=1)

    @property
    def n_elite(self) -> int:
        return min(self.population_size - 1, max(1, int(round(self.elite_fraction * self.population_size))))


class EnsembleConfig(_Config):
    """Average voting (seed Table 14) and GA-weighted voting (Tables 15-16) over the trained families."""

    average: bool = True
    ga_enabled: bool = True
    ga: GAConfig = Field(default_factory=GAConfig)


class StackingConfig(BaseModel):
    """Stacking ensemble: base CNN2D-LSTM hyperparameters (the seed's Table 3 by default) and training."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: CnnLstmHParams overrides for the binary base models
    base_hparams: dict[str, Any] = Field(default_factory=dict)
    meta_units: int = Field(512, ge=1)
    meta_dropout: float = Field(0.4, ge=0, lt=1)
    base_epochs: int = Field(30, ge=1)
    meta_epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    early_stopping_patience: int = Field(5, ge=0)
    #: learning rate of the meta model (the base models use base_hparams' learning_rate)
    learning_rate: float = Field(1e-3, gt=0)
    seed: int = 0
    #: balanced class weights for the 1:6 one-vs-rest binary models
    class_weight_balanced: bool = True
    #: mixed_float16 on GPUs; set here, not inherited from whatever step ran before in the process
    mixed_precision: bool = False

    @field_validator("base_hparams")
    @classmethod
    def _known_hparams(cls, value: dict[str, Any]) -> dict[str, Any]:
        CnnLstmHParams.from_dict(value)  # raises ValueError on unknown keys
        return value

    def base_hp(self) -> CnnLstmHParams:
        return CnnLstmHParams.from_dict(self.base_hparams)


class AblationConfig(_Config):
    """The seed's Table 2: the named families also trained on unscaled features (``scaling``,
    rows ``<family>_no_scaled``) and, for those that read the log-mel, with the other log-mel
    scaling than ``features.logmel_scaling`` (``logmel_scaling``, rows ``<family>_logmel_band``
    or ``<family>_logmel_element``)."""

    scaling: bool = False
    logmel_scaling: bool = False
    families: list[str] = Field(default_factory=lambda: ["cnn1d_lstm", "cnn2d_lstm"])


class AugmentationConfig(_Config):
    """Augmented copies of the training clips (:mod:`speech_emotion.augmentation`): ``copies`` per clip
    (0: none, the seed's); a range or a count set to null or 0 switches that part off."""

    copies: int = Field(0, ge=0)
    #: additive white noise at a signal-to-noise ratio (dB) drawn from this range
    noise_snr_db: tuple[float, float] | None = (10.0, 30.0)
    #: speed perturbation factor (tempo and pitch together) drawn from this range
    speed: tuple[float, float] | None = (0.9, 1.1)
    #: pitch shift in semitones (tempo kept) drawn from this range
    pitch_semitones: tuple[float, float] | None = (-2.0, 2.0)
    #: SpecAugment masks on the log-mel: bands of up to 1/10 of the clip's frames, of up to 1/8 of the mel bands
    spec_time_masks: int = Field(2, ge=0)
    spec_freq_masks: int = Field(2, ge=0)
    seed: int = Field(0, ge=0)

    @field_validator("noise_snr_db", "speed", "pitch_semitones", mode="before")
    @classmethod
    def _off(cls, value):
        return None if value in (0, None) else value

    @model_validator(mode="after")
    def _ranges(self) -> "AugmentationConfig":
        for name in ("noise_snr_db", "speed", "pitch_semitones"):
            bounds = getattr(self, name)
            if bounds is not None and bounds[0] > bounds[1]:
                raise ValueError(f"augmentation.{name}: the range {list(bounds)} runs backwards (low, high)")
        if self.speed is not None and self.speed[0] <= 0:
            raise ValueError(f"augmentation.speed: factors must be > 0, got {list(self.speed)}")
        return self


class TrainingConfig(_Config):
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(32, ge=1)
    early_stopping_patience: int = Field(8, ge=0)
    seed: int = 0
    #: keras.utils.set_random_seed and TensorFlow's op determinism (GPU runs too; slower there)
    deterministic: bool = False
    mixed_precision: bool = False
    #: ``balanced``: each class's loss weighted by n / (classes present x its count) on the training split
    #: (sklearn's ``compute_class_weight("balanced")``), so a rare class is not traded for the majority one
    class_weights: Literal["none", "balanced"] = "none"
    #: ``temperature``: after training, one temperature T is fitted on the validation split (minimum
    #: negative log-likelihood) and every probability becomes softmax(log(p) / T), so that a probability
    #: of 0.8 is right about 8 times in 10 (:mod:`speech_emotion.calibration`); the predicted class never
    #: changes. ``none``: the network's softmax as it is (the seed's)
    calibration: Literal["none", "temperature"] = "temperature"


class DeployConfig(_Config):
    """Which model the run's predictor holds: ``best`` (best validation F1-macro, the scaling-ablation
    rows excluded), ``ga_ensemble``, ``average_voting``, ``stacking`` or a family name."""

    model: str = "best"
    #: below this top probability a clip is labelled ``uncertain`` (0: off)
    min_confidence: float = Field(0.0, ge=0, le=1)


class PromotionConfig(_Config):
    """The gate: promote when there is no production version, or when the new predictor's test
    F1-macro is at least production's minus ``margin`` (both scored on this run's test split)."""

    enabled: bool = True
    margin: float = Field(0.0, ge=0, le=1)
    #: MLflow registered model name (the ZenML Model's name comes from the run config's ``model:``)
    registered_model: str = "speech_emotion"


class RetrainConfig(_Config):
    """Scheduled retraining: train only when the data changed since the production version
    (or when ``force``); keep the newest ``keep_versions`` versions, archive older ones that are
    not in production."""

    force: bool = False
    keep_versions: int = Field(5, ge=1)
    #: the ZenML Model whose production version the data is compared with, and which a run versions
    model: str = "speech_emotion"


class StepResources(_Config):
    """What one kind of step asks the orchestrator for (ZenML's ``ResourceSettings`` and component settings).

    Left empty, nothing is requested: the local orchestrator cannot honour requests (it warns about each
    step that makes one), and a GPU or CPU request on a cluster is what decides where a pod runs.
    """

    #: CPU cores, GPUs and memory ("16GB") requested for each of these steps (ZenML ``ResourceSettings``)
    cpu_count: float | None = Field(None, gt=0)
    gpu_count: int | None = Field(None, ge=0)
    memory: str | None = Field(None, pattern=r"^\d+(\.\d+)?(KB|KiB|MB|MiB|GB|GiB|TB|TiB|PB|PiB)$")
    #: run these steps on this step operator (e.g. a Kubernetes step operator on GPU nodes)
    step_operator: str | None = None
    #: the orchestrator's own settings for these steps, e.g. ``{pod_settings: {node_selectors: ...,
    #: tolerations: [...]}}`` for Kubernetes and Kubeflow (validated against the active orchestrator's flavor)
    orchestrator: dict[str, Any] = Field(default_factory=dict)
    #: the step operator's settings for these steps (e.g. its ``pod_settings``)
    step_operator_settings: dict[str, Any] = Field(default_factory=dict)

    def requests_anything(self) -> bool:
        return any(v not in (None, {}) for v in self.model_dump().values())


class ResourcesConfig(_Config):
    """Resource needs by kind of step; the code says which step is of which kind.

    - ``gpu``: tuning, training and the stacking ensemble (Keras). TensorFlow uses a GPU when the pod has one;
      ask for it here (``gpu_count: 1``) on a cluster with GPU nodes.
    - ``cpu``: ingestion, feature extraction (per split, running in parallel on an orchestrator that runs
      independent steps at once, and with ``features.workers`` processes each) and the classical baseline's
      functionals. CPU-bound: ask for cores (``cpu_count``) to match ``features.workers``.

    Requests change where steps run, not what they compute: they are not part of any cache key.
    """

    gpu: StepResources = Field(default_factory=StepResources)
    cpu: StepResources = Field(default_factory=StepResources)
