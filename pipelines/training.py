"""The training pipeline.

    zenml pipeline run pipelines.training.training_pipeline -c configs/demo.yaml

ingest -> split -> dataset analysis -> features (per split) -> scaling (fit on
train) -> per family: [tune (Hyperband)] -> train -> evaluate -> average and
GA-weighted voting -> stacking -> comparison -> predictor, Model version,
promotion gate. Every tracked step logs to one MLflow run named after the
pipeline run; tuning trials are its child runs.

``evaluation.protocol`` other than ``holdout`` makes it an evaluation run:
ingest -> folds (leakage-checked) -> features once -> per fold: its rows, its
scaler, the same model steps -> pooled figures (``protocol/`` in MLflow). The
pipeline is dynamic because the number of folds is known only after ingestion.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zenml import pipeline
from zenml.config import CachePolicy

from pipelines._runs import RUN_HOOKS
from pipelines.disk_check import check_storage
from speech_emotion import storage
from speech_emotion.config import (
    AblationConfig,
    AugmentationConfig,
    CorporaConfig,
    DeployConfig,
    EnsembleConfig,
    EvaluationConfig,
    FeatureConfig,
    IngestConfig,
    PromotionConfig,
    ResourcesConfig,
    SplitConfig,
    StackingConfig,
    TrainingConfig,
    TuningConfig,
    check_families,
)
from speech_emotion.corpora.custom import CustomCorpus
from speech_emotion.corpora.fingerprint import files_fingerprint, source_fingerprint
from speech_emotion.model_card import describe_corpora
from speech_emotion.models.functionals_svm import FAMILY as BASELINE, GRID as BASELINE_GRID, FunctionalsSvmHParams
from speech_emotion.protocols import describe as describe_protocol
from speech_emotion.provenance import code_fingerprint
from steps import (
    analyse_dataset,
    augment_training_features,
    build_predictor,
    compare_models,
    ensemble_models,
    evaluate_model,
    extract_features,
    ingest_corpora,
    promote_model,
    register_model,
    resolve_feature_params,
    scale_features,
    split_dataset,
    train_model,
    train_stacking_model,
    tune_model,
)
from steps.baseline import (
    evaluate_functionals_svm,
    extract_functionals,
    train_functionals_svm_model,
    tune_functionals_svm,
)
from steps.resources import CPU_STEPS, GPU_STEPS, with_resources
from steps.protocol import (
    collect_fold_predictions,
    fold_features,
    fold_functionals,
    make_protocol_folds,
    pool_protocol,
)

logger = logging.getLogger(__name__)

# In a dynamic run ZenML 0.98 turns every plain value given to a step (a config, a family name, a
# fold number) into an external artifact unless ZENML_PARAMETER_SIZE_THRESHOLD allows parameters
# (default 0: none). Those uploaded after the run's first ``.load()`` are new artifacts every run,
# so every fold's steps would miss the cache of an unchanged re-run. As parameters, their values
# are part of the cache key, as in a static pipeline. Read when each step is compiled, in the
# process that runs the pipeline's body (which imports this module); a value set by the user wins.
os.environ.setdefault("ZENML_PARAMETER_SIZE_THRESHOLD", str(1 << 16))


def project_root() -> Path:
    from zenml.utils import source_utils

    return Path(source_utils.get_source_root())


def hash_cache_dir() -> Path:
    """Where the content hashes of corpus files are remembered (by path, size and mtime)."""
    return project_root() / "data" / "cache" / "content-hashes"


def resolve_corpora(corpora: CorporaConfig, base: Path | None = None) -> dict[str, str]:
    """Absolute corpus roots, or object-storage URLs as given (``s3://...``); synthesises the demo corpus first
    when it is configured and missing."""
    base = base or project_root()
    roots = corpora.explicit_roots(base)
    if corpora.demo is not None:  # generated if missing; explicit roots (e.g. data/demo/TESS) take precedence
        from speech_emotion.demo_corpus import generate_demo_corpus

        if storage.is_url(corpora.demo.root):
            raise ValueError(f"corpora.demo.root {corpora.demo.root!r}: the demo corpus is generated on local disk; "
                             "upload it and name the URLs as corpora.tess, corpora.savee, ... instead")
        demo_root = Path(corpora.demo.root)
        demo_root = demo_root if demo_root.is_absolute() else base / demo_root
        demo = generate_demo_corpus(demo_root, per_class=corpora.demo.per_class, seed=corpora.demo.seed)
        for corpus, root in demo.items():
            roots.setdefault(corpus, str(root))
    missing = {c: str(p) for c, p in roots.items() if not storage.is_dir(p)}
    if missing:
        raise FileNotFoundError(f"corpus folders not found: {missing}")
    return {c: str(p) for c, p in sorted(roots.items())}


def resolve_custom_corpora(corpora: CorporaConfig, base: Path | None = None) -> list[CustomCorpus]:
    """The custom corpora with absolute roots (relative ones are taken from the project root)."""
    base = base or project_root()
    custom = [c.resolved(base) for c in corpora.custom]
    missing = {c.name: c.root for c in custom if not storage.is_dir(c.root)}
    if missing:
        raise FileNotFoundError(f"custom corpus folders not found: {missing}")
    return custom


def check_search_space(family: str, space: dict[str, list]) -> None:
    """Every hyperparameter of ``search_spaces.<family>`` is one the family has, every choice a valid value."""
    from dataclasses import fields

    from speech_emotion.models import get_family

    hparams = FunctionalsSvmHParams if family == BASELINE else get_family(family).hparams
    known = sorted(f.name for f in fields(hparams) if not (family == BASELINE and f.name == "features"))
    for name, choices in space.items():
        if name not in known:
            raise ValueError(f"search_spaces.{family}.{name}: {family} has no hyperparameter {name!r}; "
                             f"its hyperparameters: {known}")
        for choice in choices if isinstance(choices, list) else []:
            try:
                hparams.from_dict({name: choice})
            except ValueError as err:
                raise ValueError(f"search_spaces.{family}.{name}: {err}") from None


def check_configuration(
    families: dict[str, dict],
    tuning: TuningConfig,
    search_spaces: dict[str, dict[str, list]],
    features: FeatureConfig,
    ablation: AblationConfig,
    corpora: CorporaConfig | None = None,
    split: SplitConfig | None = None,
    evaluation: EvaluationConfig | None = None,
) -> None:
    """Refuse, before any step runs, a configuration that would be silently ignored or contradict itself."""
    check_families(families)
    if evaluation is not None and evaluation.cross_validated:
        check_protocol(evaluation, corpora, split)
    if corpora is not None and split is not None and split.test_corpus is not None:
        if split.test_corpus not in corpora.names():
            raise ValueError(f"split.test_corpus {split.test_corpus!r} is not one of the configured corpora "
                             f"{corpora.names()}")
    if tuning.space:
        raise ValueError("tuning.space is not used by the pipeline: give each family's space under "
                         "search_spaces: {<family>: {<hyperparameter>: [choices]}}")
    if search_spaces and not tuning.enabled:
        raise ValueError(f"search_spaces is set for {sorted(search_spaces)} but tuning.enabled is false: nothing "
                         "would be searched; turn tuning on or remove search_spaces")
    if unknown := set(search_spaces) - set(families):
        raise ValueError(f"search_spaces for families that are not trained: {sorted(unknown)}")
    for family, space in search_spaces.items():
        check_search_space(family, space)
        if both := set(space) & set(families[family]):
            raise ValueError(f"{family}: {sorted(both)} both fixed in families and searched in search_spaces; "
                             "remove them from one of the two")
    any_ablation = ablation.scaling or ablation.logmel_scaling
    if any_ablation and BASELINE in ablation.families:
        raise ValueError(f"ablation.families: {BASELINE} standardises its own functionals; the scaling ablation "
                         "is for the networks")
    if any_ablation and not set(ablation.families) <= set(families):
        raise ValueError(f"ablation families {ablation.families} must be among the trained families {list(families)}")
    if ablation.scaling and not features.scale:
        logger.warning("ablation.scaling with features.scale false: the no_scaled models equal the main ones")
    if ablation.logmel_scaling and not features.scale:
        raise ValueError("ablation.logmel_scaling compares two log-mel scalings, but features.scale is false: "
                         "turn scaling on or the log-mel ablation off")
    if ablation.logmel_scaling and not logmel_families(ablation.families):
        raise ValueError(f"ablation.logmel_scaling: none of ablation.families {ablation.families} reads the log-mel; "
                         "name one that does (e.g. cnn2d_lstm)")


def logmel_families(names: list[str]) -> list[str]:
    """The families among ``names`` whose inputs include the 2-D log-mel."""
    from speech_emotion.models import FAMILIES

    return [n for n in names if n in FAMILIES and "logmel" in FAMILIES[n].inputs]


def other_logmel_scaling(scaling: str) -> str:
    return "band" if scaling == "element" else "element"


def check_protocol(evaluation: EvaluationConfig, corpora: CorporaConfig | None, split: SplitConfig | None) -> None:
    """A cross-validated protocol makes its own test folds: refuse what contradicts it, say what it leaves unused."""
    protocol = evaluation.protocol
    if split is not None and split.strategy == "corpus":
        raise ValueError(f"split.strategy 'corpus' (test_corpus {split.test_corpus!r}) makes a holdout split, but "
                         f"evaluation.protocol is {protocol!r}: for cross-validation over corpora use "
                         "evaluation.protocol: loco and remove split.strategy/test_corpus")
    if protocol == "loco" and corpora is not None and len(corpora.names()) < 2:
        raise ValueError(f"evaluation.protocol loco leaves one corpus out, but only {corpora.names()} is configured "
                         "(corpora): give at least 2 corpora")
    if split is not None and (unused := sorted({"strategy", "test_fraction"} & split.model_fields_set)):
        logger.warning("split.%s not used: evaluation.protocol %s makes the test folds (split.val_fraction and "
                       "split.seed are used)", "/".join(unused), protocol)
    logger.info("evaluation.protocol %s: an evaluation run; no predictor is built, no Model version is created, "
                "nothing is promoted (deploy and promotion are not used)", protocol)


def named(outputs, *names: str) -> tuple:
    """A step's outputs by name. Dynamic runs may list a step's outputs out of their declared order
    (ZenML puts those with a configured materializer first), so positional unpacking can swap them;
    a static invocation's outputs come in declared order."""
    if hasattr(outputs, "get_artifact"):  # a dynamic run's step future
        return tuple(outputs.get_artifact(name) for name in names)
    by_name = {o.output_name: o for o in (outputs if isinstance(outputs, (tuple, list)) else (outputs,))}
    return tuple(by_name[name] for name in names)


#: every step's cache key includes the library's code and the numerical libraries' versions
LIBRARY_CACHE_POLICY = CachePolicy(cache_func=code_fingerprint)


@dataclass
class Trained:
    """What :func:`compose_models` trained, as step outputs: the ensemble members (families and the
    baseline, in order) with their validation and test probabilities, every metrics table, the GA
    weights, the stacking model, and the test probabilities of the rows that are no members
    (scaling ablation, stacking)."""

    names: list[str] = field(default_factory=list)
    models: list = field(default_factory=list)
    metrics: list = field(default_factory=list)
    val_probs: list = field(default_factory=list)
    test_probs: list = field(default_factory=list)
    extra_names: list[str] = field(default_factory=list)
    extra_test_probs: list = field(default_factory=list)
    ga_weights: Any = None
    stacked: Any = None


def compose_models(
    train_f, val_f, test_f, train_raw, val_raw, test_raw, functionals: Callable[[str], dict[str, Any]], *,
    families: dict[str, dict],
    tuning: TuningConfig,
    search_spaces: dict[str, dict[str, list]],
    training: TrainingConfig,
    ensemble: EnsembleConfig,
    stacking: StackingConfig,
    ablation: AblationConfig,
    features: FeatureConfig,
    resources: ResourcesConfig = ResourcesConfig(),
    description: str = "",
    suffix: str = "",
    tracked: bool = True,
) -> Trained:
    """Per family [tune] -> train -> evaluate, the baseline, the scaling ablation, average and GA
    voting, stacking: the model part of a holdout run, and of every fold of a protocol run.

    ``functionals(kind)`` gives the baseline's functionals per split (``train``, ``val``,
    ``test``); ``suffix`` ends every step id (``_fold2``); ``tracked=False`` keeps the steps
    out of MLflow (a protocol run logs its pooled figures instead of each fold's);
    ``description`` says in the reports which split or protocol made the data; ``resources`` what
    the GPU- and CPU-bound steps ask the orchestrator for (:mod:`steps.resources`)."""
    off = {} if tracked else {"experiment_tracker": False}

    def opt(s, **options):
        s = with_resources(s, resources) if s.name in GPU_STEPS + CPU_STEPS else s
        return s.with_options(**options, **off) if (options or off) else s

    out = Trained()

    def fit_and_evaluate(family: str, hparams, name: str, train, val, test):
        trained = opt(train_model, substitutions={"model_name": f"{name}{suffix}"})(  # cnn2d_lstm_fold2_model
            train, val, family=family, hparams=hparams, training=training, name=name, id=f"train_{name}{suffix}"
        )
        evaluated = opt(evaluate_model)(trained, val, test, split_description=description, id=f"evaluate_{name}{suffix}")
        return trained, *named(evaluated, "metrics", "val_probabilities", "test_probabilities")

    def fit_baseline(fixed: dict):
        """The classical baseline: functionals of every split, [validation grid over C and gamma], SVM."""
        x = functionals(FunctionalsSvmHParams.from_dict(fixed).features)
        hparams = fixed
        grid = {**{k: v for k, v in BASELINE_GRID.items() if k not in fixed}, **search_spaces.get(BASELINE, {})}
        if tuning.enabled and grid:  # C and gamma both fixed: nothing to search
            (hparams,) = named(opt(tune_functionals_svm)(x["train"], train_f, x["val"], val_f, fixed_hparams=fixed,
                                                         grid=grid, seed=training.seed, id=f"tune_{BASELINE}{suffix}"),
                               "best_hparams")
        model = opt(train_functionals_svm_model)(x["train"], train_f, hparams=hparams, seed=training.seed,
                                                 id=f"train_functionals_svm_model{suffix}")
        metrics, val_p, test_p = named(opt(evaluate_functionals_svm)(
            model, x["val"], x["test"], val_f, test_f, split_description=description,
            id=f"evaluate_functionals_svm{suffix}"), "metrics", "val_probabilities", "test_probabilities")
        return model, metrics, val_p, test_p

    chosen = {}
    for family, fixed in families.items():
        if family == BASELINE:  # functionals + SVM: its own steps, then the same comparison and ensembles
            trained, metrics, val_p, test_p = fit_baseline(fixed)
        else:
            if tuning.enabled:
                (chosen[family],) = named(opt(tune_model)(
                    train_f, val_f, family=family, fixed_hparams=fixed, space=search_spaces.get(family, {}),
                    config=tuning, id=f"tune_{family}{suffix}",
                ), "best_hparams")
            else:
                chosen[family] = fixed
            trained, metrics, val_p, test_p = fit_and_evaluate(family, chosen[family], family,
                                                                   train_f, val_f, test_f)
        out.models.append(trained)
        out.metrics.append(metrics)
        out.names.append(family)
        out.val_probs.append(val_p)
        out.test_probs.append(test_p)

    if ablation.scaling:  # the seed's Table 2: same hyperparameters, features not scaled
        for family in ablation.families:
            name = f"{family}_no_scaled"
            _, metrics, _, test_p = fit_and_evaluate(family, chosen[family], name, train_raw, val_raw, test_raw)
            out.metrics.append(metrics)
            out.extra_names.append(name)
            out.extra_test_probs.append(test_p)
    if ablation.logmel_scaling:  # the same families with the other log-mel scaling (element <-> band)
        other = other_logmel_scaling(features.logmel_scaling)
        train_o, val_o, test_o = named(opt(scale_features)(
            train_raw, val_raw, test_raw, scale=True, logmel_scaling=other, std_floor=features.logmel_std_floor,
            mask_padding=features.mask_padding, track=False, id=f"scale_features_logmel_{other}{suffix}",
        ), "train_features", "val_features", "test_features")
        for family in logmel_families(ablation.families):
            name = f"{family}_logmel_{other}"
            _, metrics, _, test_p = fit_and_evaluate(family, chosen[family], name, train_o, val_o, test_o)
            out.metrics.append(metrics)
            out.extra_names.append(name)
            out.extra_test_probs.append(test_p)

    if len(out.names) >= 2 and (ensemble.average or ensemble.ga_enabled):
        ens_metrics, out.ga_weights = named(opt(ensemble_models)(
            names=out.names, val_probabilities=out.val_probs, test_probabilities=out.test_probs,
            member_metrics=list(out.metrics[: len(out.names)]), val=val_f, test=test_f, config=ensemble,
            split_description=description, id=f"ensemble_models{suffix}",
        ), "ensemble_metrics", "ga_weights")
        out.metrics.append(ens_metrics)

    if stacking.enabled:
        out.stacked = opt(train_stacking_model)(train_f, val_f, stacking, calibration=training.calibration,
                                                id=f"train_stacking_model{suffix}")
        metrics, test_p = named(opt(evaluate_model)(out.stacked, val_f, test_f, split_description=description,
                                                    id=f"evaluate_stacking{suffix}"), "metrics", "test_probabilities")
        out.metrics.append(metrics)
        out.extra_names.append("stacking")
        out.extra_test_probs.append(test_p)
    return out


def _feature_params(utterances, features: FeatureConfig):
    """The feature parameters, or with ``duration_s: auto`` the step that resolves them from ``utterances``."""
    return resolve_feature_params(utterances, features) if features.duration_s == "auto" else features.params()


def _augmented(train_raw, utterances, params, features: FeatureConfig, augmentation: AugmentationConfig,
               resources: ResourcesConfig, suffix: str = ""):
    """The training split's features, followed by their augmented copies when ``augmentation.copies``
    (after the split: validation and test are never augmented)."""
    if not augmentation.copies:
        return train_raw
    augment = with_resources(augment_training_features, resources).with_options(
        extra={"workers": features.workers, "cache_dir": features.cache_dir})
    return augment(train_raw, utterances, params, augmentation, id=f"augment_train_features{suffix}")


def compose_training(
    utterances,
    rejected,
    roots: dict[str, str],
    *,
    split: SplitConfig,
    features: FeatureConfig,
    families: dict[str, dict],
    tuning: TuningConfig,
    search_spaces: dict[str, dict[str, list]],
    training: TrainingConfig,
    ensemble: EnsembleConfig,
    stacking: StackingConfig,
    ablation: AblationConfig,
    deploy: DeployConfig,
    promotion: PromotionConfig,
    source: str = "",
    model=None,
    resources: ResourcesConfig = ResourcesConfig(),
    data_sources: dict[str, dict] | None = None,
    augmentation: AugmentationConfig = AugmentationConfig(),
):
    """The holdout step graph from the utterance table to the promotion gate, shared by the training
    and retraining pipelines. ``model`` (a ``zenml.Model``) is given to the deployment steps when the
    pipeline itself has none (retraining decides at run time whether a version is made at all).
    Returns the promotion step's output."""
    train_utt, val_utt, test_utt = named(split_dataset(utterances, split),
                                         "train_utterances", "val_utterances", "test_utterances")
    params = _feature_params(train_utt, features)
    analyse_dataset(utterances, rejected, train_utt, val_utt, test_utt, params)
    # workers and the cache folder change how, not what: kept out of the steps' cache keys
    extract = with_resources(extract_features, resources).with_options(
        extra={"workers": features.workers, "cache_dir": features.cache_dir})
    train_raw = _augmented(extract(train_utt, params, id="extract_train_features"), train_utt, params, features,
                           augmentation, resources)
    val_raw = extract(val_utt, params, id="extract_val_features")
    test_raw = extract(test_utt, params, id="extract_test_features")
    scaler, train_f, val_f, test_f = named(scale_features(
        train_raw, val_raw, test_raw, scale=features.scale, logmel_scaling=features.logmel_scaling,
        std_floor=features.logmel_std_floor, mask_padding=features.mask_padding,
    ), "scaler", "train_features", "val_features", "test_features")
    description = describe_protocol(EvaluationConfig(), split)

    def functionals(kind: str) -> dict[str, Any]:
        return {name: with_resources(extract_functionals, resources)(
                    utt, kind, features.sample_rate, features.workers, id=f"extract_{name}_functionals")
                for name, utt in (("train", train_utt), ("val", val_utt), ("test", test_utt))}

    trained = compose_models(
        train_f, val_f, test_f, train_raw, val_raw, test_raw, functionals, families=families, tuning=tuning,
        search_spaces=search_spaces, training=training, ensemble=ensemble, stacking=stacking, ablation=ablation,
        features=features, resources=resources, description=description,
    )
    (comparison,) = named(compare_models(metrics=trained.metrics, ga_weights=trained.ga_weights,
                                         split_description=description), "comparison")

    # the run's predictor, its Model version and MLflow registration, and the promotion gate
    build, register, promote = ((s.with_options(model=model) for s in (build_predictor, register_model, promote_model))
                                if model is not None else (build_predictor, register_model, promote_model))
    predictor = build(scaler, trained.models, comparison, deploy, params, ga_weights=trained.ga_weights,
                      stacking_model=trained.stacked, average_voting=ensemble.average)
    mlflow_version, test_probabilities = named(
        register(predictor, utterances, comparison, scaler, test_raw, corpora=sorted(roots), split=split,
                 registered_model=promotion.registered_model, source_fingerprint=source,
                 data_sources=data_sources or {}),
        "mlflow_model_version", "test_probabilities")
    return promote(predictor, test_raw, promotion, mlflow_version, test_probabilities)


def compose_protocol(
    utterances,
    *,
    evaluation: EvaluationConfig,
    split: SplitConfig,
    features: FeatureConfig,
    families: dict[str, dict],
    tuning: TuningConfig,
    search_spaces: dict[str, dict[str, list]],
    training: TrainingConfig,
    ensemble: EnsembleConfig,
    stacking: StackingConfig,
    ablation: AblationConfig,
    resources: ResourcesConfig = ResourcesConfig(),
    augmentation: AugmentationConfig = AugmentationConfig(),
):
    """An evaluation run: the protocol's folds (leakage-checked), features and functionals extracted
    once for every utterance, then per fold: its slices, a scaler fitted on its train part, and
    :func:`compose_models` with validation from its training speakers; finally the test predictions
    of all folds pooled (``protocol/pooled.csv``, ``protocol/folds.csv`` in MLflow). No predictor,
    no Model version, no promotion. Needs a dynamic pipeline: the number of folds is known only
    after ingestion. Returns the pooling step's outputs."""
    folds_table = make_protocol_folds(utterances, evaluation, split)
    fold_ids = sorted(int(k) for k in folds_table.load()["fold"].unique())
    extract = with_resources(extract_features, resources).with_options(
        extra={"workers": features.workers, "cache_dir": features.cache_dir})
    params = _feature_params(utterances, features)
    all_raw = extract(utterances, params, id="extract_features")
    all_functionals: dict[str, Any] = {}  # per kind, extracted once when the baseline first asks
    description = describe_protocol(evaluation, split)
    members_average = ensemble.average
    predictions = []
    for k in fold_ids:
        suffix = f"_fold{k}"
        train_raw, val_raw, test_raw = named(fold_features(all_raw, folds_table, fold=k, id=f"fold_features{suffix}"),
                                             "train_raw", "val_raw", "test_raw")
        train_raw = _augmented(train_raw, utterances, params, features, augmentation, resources, suffix)
        train_f, val_f, test_f = named(scale_features.with_options(experiment_tracker=False)(
            train_raw, val_raw, test_raw, scale=features.scale, logmel_scaling=features.logmel_scaling,
            std_floor=features.logmel_std_floor, mask_padding=features.mask_padding, id=f"scale_features{suffix}"),
            "train_features", "val_features", "test_features")

        def functionals(kind: str, k=k, suffix=suffix) -> dict[str, Any]:
            if kind not in all_functionals:
                all_functionals[kind] = with_resources(extract_functionals, resources)(
                    utterances, kind, features.sample_rate, features.workers, id=f"extract_functionals_{kind}")
            parts = fold_functionals(all_functionals[kind], utterances, folds_table, fold=k,
                                     id=f"fold_functionals_{kind}{suffix}")
            names = ("train_functionals", "val_functionals", "test_functionals")
            return dict(zip(("train", "val", "test"), named(parts, *names)))

        trained = compose_models(
            train_f, val_f, test_f, train_raw, val_raw, test_raw, functionals, families=families, tuning=tuning,
            search_spaces=search_spaces, training=training, ensemble=ensemble, stacking=stacking,
            ablation=ablation, features=features, resources=resources, description=f"{description} This is fold {k}.",
            suffix=suffix, tracked=False,
        )
        predictions.append(collect_fold_predictions(
            test_f, trained.test_probs + trained.extra_test_probs, names=trained.names + trained.extra_names,
            folds=folds_table, fold=k, members=trained.names,
            average_voting=members_average and len(trained.names) >= 2,
            ga_weights=trained.ga_weights if ensemble.ga_enabled else None, id=f"collect_predictions{suffix}",
        ))
    return pool_protocol(predictions, utterances, evaluation, split)


def resolve_all_corpora(corpora: CorporaConfig) -> tuple[dict[str, str], list[CustomCorpus], dict[str, str]]:
    """The built-in corpora's roots, the custom corpora, and every corpus's root by name."""
    roots = resolve_corpora(corpora)
    custom = resolve_custom_corpora(corpora)
    return roots, custom, {**roots, **{c.name: c.root for c in custom}}


def ingest_all(corpora: CorporaConfig, ingest: IngestConfig, resources: ResourcesConfig = ResourcesConfig()):
    """Resolve the corpora (synthesising the demo corpus if needed), fingerprint their files and
    ingest them. Returns the ingest step's utterances and rejected outputs, every corpus root and
    the data's source fingerprint and description (what a Model version records)."""
    roots, custom, every_root = resolve_all_corpora(corpora)
    # content of every file (hashes cached by path, size and mtime): new or edited audio misses the cache
    fingerprint = files_fingerprint(every_root, cache_dir=hash_cache_dir())
    utterances, rejected = named(with_resources(ingest_corpora, resources)(roots=roots, options=ingest, fingerprint=fingerprint, custom=custom),
                                 "utterances", "rejected")
    data_sources = describe_corpora(every_root, synthetic=corpora.synthetic(), custom=custom)
    return utterances, rejected, every_root, source_fingerprint(fingerprint, ingest.model_dump()), data_sources


def configured_model_name() -> str | None:
    """The ZenML Model the running (dynamic) pipeline run is configured with (``model:``), if any."""
    try:
        from zenml.execution.pipeline.dynamic.run_context import DynamicPipelineRunContext

        context = DynamicPipelineRunContext.get()
    except Exception:  # not inside a dynamic run (e.g. a unit test)
        return None
    if context is None:
        return None
    model = context.snapshot.pipeline_configuration.model
    return model.name if model is not None else None


@pipeline(dynamic=True, enable_cache=True, cache_policy=LIBRARY_CACHE_POLICY, **RUN_HOOKS)
def training_pipeline(
    corpora: CorporaConfig = CorporaConfig(demo={}),
    ingest: IngestConfig = IngestConfig(),
    split: SplitConfig = SplitConfig(),
    features: FeatureConfig = FeatureConfig(),
    families: dict[str, dict] = {"cnn2d_lstm": {}},
    tuning: TuningConfig = TuningConfig(enabled=False),
    search_spaces: dict[str, dict[str, list]] = {},
    training: TrainingConfig = TrainingConfig(),
    ensemble: EnsembleConfig = EnsembleConfig(),
    stacking: StackingConfig = StackingConfig(enabled=False),
    ablation: AblationConfig = AblationConfig(),
    deploy: DeployConfig = DeployConfig(),
    promotion: PromotionConfig = PromotionConfig(),
    evaluation: EvaluationConfig = EvaluationConfig(),
    resources: ResourcesConfig = ResourcesConfig(),
    augmentation: AugmentationConfig = AugmentationConfig(),
) -> None:
    """``families`` maps each family to train to its hyperparameters: fixed when tuning is off;
    when it is on, they stay fixed and the rest of the family's search space (or the
    ``search_spaces`` entry given for it) is searched.

    ``evaluation.protocol`` ``holdout`` (default) trains for use: split, train, compare, build the
    predictor, version and promote. Any other protocol is an evaluation run over test folds
    (:func:`compose_protocol`) that builds, versions and promotes nothing. The pipeline is dynamic
    because a protocol's number of folds is known only after ingestion."""
    check_configuration(families, tuning, search_spaces, features, ablation, corpora=corpora, split=split,
                        evaluation=evaluation)
    if evaluation.cross_validated and (model := configured_model_name()):
        raise ValueError(f"evaluation.protocol {evaluation.protocol} is an evaluation run and creates no Model "
                         f"version, but the run configuration names the Model {model!r} (model:): remove model: "
                         "from it (configs/protocol.yaml has none), or use protocol holdout to train for use")

    check_storage({"the feature cache": features.cache_dir, "the content-hash cache": str(hash_cache_dir())})

    utterances, rejected, every_root, source, data_sources = ingest_all(corpora, ingest, resources)
    if evaluation.cross_validated:
        compose_protocol(
            utterances, evaluation=evaluation, split=split, features=features, families=families, tuning=tuning,
            search_spaces=search_spaces, training=training, ensemble=ensemble, stacking=stacking, ablation=ablation,
            resources=resources, augmentation=augmentation,
        )
        return
    compose_training(
        utterances, rejected, every_root, split=split, features=features, families=families, tuning=tuning,
        search_spaces=search_spaces, training=training, ensemble=ensemble, stacking=stacking, ablation=ablation,
        deploy=deploy, promotion=promotion, source=source, resources=resources, data_sources=data_sources,
        augmentation=augmentation,
    )
