"""The training pipeline.

    zenml pipeline run pipelines.training.training_pipeline -c configs/demo.yaml

ingest -> split -> dataset analysis -> features (per split) -> scaling (fit on
train) -> per family: [tune (Hyperband)] -> train -> evaluate -> average and
GA-weighted voting -> stacking -> comparison. Every tracked step logs to one
MLflow run named after the pipeline run; tuning trials are its child runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from zenml import pipeline
from zenml.config import CachePolicy

from pipelines._runs import RUN_HOOKS
from speech_emotion import storage
from speech_emotion.config import (
    AblationConfig,
    CorporaConfig,
    DeployConfig,
    EnsembleConfig,
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
from pipelines.disk_check import check_storage
from speech_emotion.provenance import code_fingerprint
from steps import (
    analyse_dataset,
    build_predictor,
    compare_models,
    ensemble_models,
    evaluate_model,
    extract_features,
    ingest_corpora,
    promote_model,
    register_model,
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
from steps.resources import with_resources

logger = logging.getLogger(__name__)


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
) -> None:
    """Refuse, before any step runs, a configuration that would be silently ignored or contradict itself."""
    check_families(families)
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


#: every step's cache key includes the library's code and the numerical libraries' versions
LIBRARY_CACHE_POLICY = CachePolicy(cache_func=code_fingerprint)


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
):
    """The step graph from the utterance table to the promotion gate, shared by the training and
    retraining pipelines. ``model`` (a ``zenml.Model``) is given to the deployment steps when the
    pipeline itself has none (retraining decides at run time whether a version is made at all).
    Returns the promotion step's output. ``resources`` says what the GPU- and CPU-bound steps ask the
    orchestrator for (:mod:`steps.resources`)."""
    tune_model_, train_model_, train_stacking_model_, extract_features_, extract_functionals_, tune_svm_, train_svm_ = (
        with_resources(s, resources) for s in (tune_model, train_model, train_stacking_model, extract_features,
                                               extract_functionals, tune_functionals_svm, train_functionals_svm_model))
    train_utt, val_utt, test_utt = split_dataset(utterances, split)
    params = features.params()
    analyse_dataset(utterances, rejected, train_utt, val_utt, test_utt, params)
    # workers and the cache folder change how, not what: kept out of the steps' cache keys
    extract = extract_features_.with_options(extra={"workers": features.workers, "cache_dir": features.cache_dir})
    train_raw = extract(train_utt, params, id="extract_train_features")
    val_raw = extract(val_utt, params, id="extract_val_features")
    test_raw = extract(test_utt, params, id="extract_test_features")
    scaler, train_f, val_f, test_f = scale_features(
        train_raw, val_raw, test_raw, scale=features.scale, logmel_scaling=features.logmel_scaling,
        std_floor=features.logmel_std_floor,
    )

    def fit_and_evaluate(family: str, hparams, name: str, train, val, test):
        trained = train_model_.with_options(substitutions={"model_name": name})(
            train, val, family=family, hparams=hparams, training=training, name=name, id=f"train_{name}"
        )
        return trained, *evaluate_model(trained, val, test, id=f"evaluate_{name}")

    def fit_baseline(fixed: dict):
        """The classical baseline: functionals of every split, [validation grid over C and gamma], SVM."""
        kind = FunctionalsSvmHParams.from_dict(fixed).features
        x = {name: extract_functionals_(utt, kind, features.sample_rate, id=f"extract_{name}_functionals")
             for name, utt in (("train", train_utt), ("val", val_utt), ("test", test_utt))}
        hparams = fixed
        grid = {**{k: v for k, v in BASELINE_GRID.items() if k not in fixed}, **search_spaces.get(BASELINE, {})}
        if tuning.enabled and grid:  # C and gamma both fixed: nothing to search
            hparams, _ = tune_svm_(x["train"], train_f, x["val"], val_f, fixed_hparams=fixed, grid=grid,
                                              seed=training.seed, id=f"tune_{BASELINE}")
        model = train_svm_(x["train"], train_f, hparams=hparams, seed=training.seed)
        metrics, val_p, test_p, *_ = evaluate_functionals_svm(model, x["val"], x["test"], val_f, test_f)
        return model, metrics, val_p, test_p

    all_metrics, names, val_probs, test_probs, chosen, models = [], [], [], [], {}, []
    for family, fixed in families.items():
        if family == BASELINE:  # functionals + SVM: its own steps, then the same comparison and ensembles
            trained, metrics, val_p, test_p = fit_baseline(fixed)
            models.append(trained)
            all_metrics.append(metrics)
            names.append(family)
            val_probs.append(val_p)
            test_probs.append(test_p)
            continue
        if tuning.enabled:
            chosen[family], _ = tune_model_(
                train_f, val_f, family=family, fixed_hparams=fixed, space=search_spaces.get(family, {}),
                config=tuning, id=f"tune_{family}",
            )
        else:
            chosen[family] = fixed
        trained, metrics, val_p, test_p, *_ = fit_and_evaluate(family, chosen[family], family, train_f, val_f, test_f)
        models.append(trained)
        all_metrics.append(metrics)
        names.append(family)
        val_probs.append(val_p)
        test_probs.append(test_p)

    if ablation.scaling:  # the seed's Table 2: same hyperparameters, features not scaled
        for family in ablation.families:
            _, metrics, *_ = fit_and_evaluate(family, chosen[family], f"{family}_no_scaled", train_raw, val_raw, test_raw)
            all_metrics.append(metrics)
    if ablation.logmel_scaling:  # the same families with the other log-mel scaling (element <-> band)
        other = other_logmel_scaling(features.logmel_scaling)
        _, train_o, val_o, test_o = scale_features(
            train_raw, val_raw, test_raw, scale=True, logmel_scaling=other, std_floor=features.logmel_std_floor,
            track=False, id=f"scale_features_logmel_{other}",
        )
        for family in logmel_families(ablation.families):
            _, metrics, *_ = fit_and_evaluate(family, chosen[family], f"{family}_logmel_{other}", train_o, val_o, test_o)
            all_metrics.append(metrics)

    ga_weights = None
    if len(names) >= 2 and (ensemble.average or ensemble.ga_enabled):
        ens_metrics, ga_weights, *_ = ensemble_models(
            names=names, val_probabilities=val_probs, test_probabilities=test_probs,
            member_metrics=list(all_metrics[: len(names)]), val=val_f, test=test_f, config=ensemble,
        )
        all_metrics.append(ens_metrics)

    stacked = None
    if stacking.enabled:
        stacked = train_stacking_model_(train_f, val_f, stacking)
        metrics, *_ = evaluate_model(stacked, val_f, test_f, id="evaluate_stacking")
        all_metrics.append(metrics)

    comparison, _ = compare_models(metrics=all_metrics, ga_weights=ga_weights)

    # the run's predictor, its Model version and MLflow registration, and the promotion gate
    build, register, promote = ((s.with_options(model=model) for s in (build_predictor, register_model, promote_model))
                                if model is not None else (build_predictor, register_model, promote_model))
    predictor = build(scaler, models, comparison, deploy, params, ga_weights=ga_weights, stacking_model=stacked,
                      average_voting=ensemble.average)
    _, mlflow_version, _ = register(predictor, utterances, comparison, scaler, test_raw, corpora=sorted(roots),
                                    split=split, registered_model=promotion.registered_model,
                                    source_fingerprint=source, data_sources=data_sources or {})
    return promote(predictor, test_raw, promotion, mlflow_version)


@pipeline(enable_cache=True, cache_policy=LIBRARY_CACHE_POLICY, **RUN_HOOKS)
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
    resources: ResourcesConfig = ResourcesConfig(),
) -> None:
    """``families`` maps each family to train to its hyperparameters: fixed when tuning is off;
    when it is on, they stay fixed and the rest of the family's search space (or the
    ``search_spaces`` entry given for it) is searched."""
    check_configuration(families, tuning, search_spaces, features, ablation, corpora=corpora, split=split)
    check_storage({"the feature cache": features.cache_dir, "the content-hash cache": str(hash_cache_dir())})

    roots = resolve_corpora(corpora)
    custom = resolve_custom_corpora(corpora)
    every_root = {**roots, **{c.name: c.root for c in custom}}
    # content of every file (hashes cached by path, size and mtime): new or edited audio misses the cache
    fingerprint = files_fingerprint(every_root, cache_dir=hash_cache_dir())
    ingest_step = with_resources(ingest_corpora, resources)
    utterances, rejected = ingest_step(roots=roots, options=ingest, fingerprint=fingerprint, custom=custom)
    compose_training(
        utterances, rejected, every_root, split=split, features=features, families=families, tuning=tuning,
        search_spaces=search_spaces, training=training, ensemble=ensemble, stacking=stacking, ablation=ablation,
        deploy=deploy, promotion=promotion, source=source_fingerprint(fingerprint, ingest.model_dump()),
        resources=resources,
        data_sources=describe_corpora(every_root, synthetic=corpora.synthetic(), custom=custom),
    )
