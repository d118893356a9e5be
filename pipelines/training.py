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

from speech_emotion.config import (
    AblationConfig,
    CorporaConfig,
    EnsembleConfig,
    FeatureConfig,
    IngestConfig,
    SplitConfig,
    StackingConfig,
    TrainingConfig,
    TuningConfig,
    check_families,
)
from speech_emotion.corpora.common import CORPORA
from speech_emotion.corpora.fingerprint import corpora_fingerprint
from steps import (
    analyse_dataset,
    compare_models,
    ensemble_models,
    evaluate_model,
    extract_features,
    ingest_corpora,
    scale_features,
    split_dataset,
    train_model,
    train_stacking_model,
    tune_model,
)

logger = logging.getLogger(__name__)


def project_root() -> Path:
    from zenml.utils import source_utils

    return Path(source_utils.get_source_root())


def resolve_corpora(corpora: CorporaConfig, base: Path | None = None) -> dict[str, str]:
    """Absolute corpus roots; synthesises the demo corpus first when it is configured and missing."""
    base = base or project_root()
    roots = corpora.explicit_roots(base)
    if corpora.demo is not None and len(roots) < len(CORPORA):
        from speech_emotion.demo_corpus import generate_demo_corpus

        demo_root = Path(corpora.demo.root)
        demo_root = demo_root if demo_root.is_absolute() else base / demo_root
        demo = generate_demo_corpus(demo_root, per_class=corpora.demo.per_class, seed=corpora.demo.seed)
        for corpus, root in demo.items():
            roots.setdefault(corpus, root)
    missing = {c: str(p) for c, p in roots.items() if not Path(p).is_dir()}
    if missing:
        raise FileNotFoundError(f"corpus folders not found: {missing}")
    return {c: str(p) for c, p in sorted(roots.items())}


def check_configuration(
    families: dict[str, dict],
    tuning: TuningConfig,
    search_spaces: dict[str, dict[str, list]],
    features: FeatureConfig,
    ablation: AblationConfig,
) -> None:
    """Refuse, before any step runs, a configuration that would be silently ignored or contradict itself."""
    check_families(families)
    if tuning.space:
        raise ValueError("tuning.space is not used by the pipeline: give each family's space under "
                         "search_spaces: {<family>: {<hyperparameter>: [choices]}}")
    if unknown := set(search_spaces) - set(families):
        raise ValueError(f"search_spaces for families that are not trained: {sorted(unknown)}")
    for family, space in search_spaces.items():
        if both := set(space) & set(families[family]):
            raise ValueError(f"{family}: {sorted(both)} both fixed in families and searched in search_spaces; "
                             "remove them from one of the two")
    if ablation.scaling and not set(ablation.families) <= set(families):
        raise ValueError(f"ablation families {ablation.families} must be among the trained families {list(families)}")
    if ablation.scaling and not features.scale:
        logger.warning("ablation.scaling with features.scale false: the no_scaled models equal the main ones")


@pipeline(enable_cache=True)
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
) -> None:
    """``families`` maps each family to train to its hyperparameters: fixed when tuning is off;
    when it is on, they stay fixed and the rest of the family's search space (or the
    ``search_spaces`` entry given for it) is searched."""
    check_configuration(families, tuning, search_spaces, features, ablation)

    roots = resolve_corpora(corpora)
    utterances, rejected = ingest_corpora(roots=roots, options=ingest, fingerprint=corpora_fingerprint(roots))
    train_utt, val_utt, test_utt = split_dataset(utterances, split)
    analyse_dataset(utterances, rejected, train_utt, val_utt, test_utt)
    # workers and the cache folder change how, not what: kept out of the steps' cache keys
    extract = extract_features.with_options(extra={"workers": features.workers, "cache_dir": features.cache_dir})
    params = features.params()
    train_raw = extract(train_utt, params, id="extract_train_features")
    val_raw = extract(val_utt, params, id="extract_val_features")
    test_raw = extract(test_utt, params, id="extract_test_features")
    _, train_f, val_f, test_f = scale_features(train_raw, val_raw, test_raw, scale=features.scale)

    def fit_and_evaluate(family: str, hparams, name: str, train, val, test):
        model = train_model.with_options(substitutions={"model_name": name})(
            train, val, family=family, hparams=hparams, training=training, name=name, id=f"train_{name}"
        )
        return evaluate_model(model, val, test, id=f"evaluate_{name}")

    all_metrics, names, val_probs, test_probs, chosen = [], [], [], [], {}
    for family, fixed in families.items():
        if tuning.enabled:
            chosen[family], _ = tune_model(
                train_f, val_f, family=family, fixed_hparams=fixed, space=search_spaces.get(family, {}),
                config=tuning, id=f"tune_{family}",
            )
        else:
            chosen[family] = fixed
        metrics, val_p, test_p, *_ = fit_and_evaluate(family, chosen[family], family, train_f, val_f, test_f)
        all_metrics.append(metrics)
        names.append(family)
        val_probs.append(val_p)
        test_probs.append(test_p)

    if ablation.scaling:  # the seed's Table 2: same hyperparameters, features not scaled
        for family in ablation.families:
            metrics, *_ = fit_and_evaluate(family, chosen[family], f"{family}_no_scaled", train_raw, val_raw, test_raw)
            all_metrics.append(metrics)

    ga_weights = None
    if len(names) >= 2 and (ensemble.average or ensemble.ga_enabled):
        ens_metrics, ga_weights, *_ = ensemble_models(
            names=names, val_probabilities=val_probs, test_probabilities=test_probs,
            member_metrics=list(all_metrics[: len(names)]), val=val_f, test=test_f, config=ensemble,
        )
        all_metrics.append(ens_metrics)

    if stacking.enabled:
        stacked = train_stacking_model(train_f, val_f, stacking)
        metrics, *_ = evaluate_model(stacked, val_f, test_f, id="evaluate_stacking")
        all_metrics.append(metrics)

    compare_models(metrics=all_metrics, ga_weights=ga_weights)
