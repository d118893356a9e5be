"""Read a finished training run back from the ZenML store and its MLflow run, for ``ser report``.

It knows the training pipeline's step and artifact names (``pipelines.training``), so it
lives here beside the pipeline; :mod:`speech_emotion.run_report` writes the folder.

- ZenML (typed artifacts): the utterance and rejected tables, the dataset report and
  duration table, the comparison table, the GA weights and history, every step's
  confusion matrices, the model card, the run's configuration.
- MLflow (the run's logged files): the dataset figures and the section-4 input
  visualisations, the per-origin and per-class tables of every model and split, and
  the protocol tables (``protocol/*.csv``) of cross-validated runs.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd

from speech_emotion import reports
from speech_emotion.corpora.common import corpus_order
from speech_emotion.model_card import data_table, describe_corpora, model_card, protocol_text
from speech_emotion.run_report import Item, RunReport, Section

logger = logging.getLogger(__name__)

class RunNotFound(LookupError):
    """No training run matches what was asked for."""


def find_run(name_or_id: str | None = None):
    """The named run, or the latest completed run of the training pipeline."""
    from zenml.client import Client

    client = Client()
    if name_or_id:
        try:
            return client.get_pipeline_run(name_or_id)
        except KeyError:
            raise RunNotFound(f"no pipeline run named or with id {name_or_id!r}") from None
    runs = client.list_pipeline_runs(pipeline_name="training_pipeline", sort_by="desc:created", size=50).items
    for run in runs:
        if str(run.status).lower().endswith("completed"):
            return run
    raise RunNotFound("no completed run of the training pipeline" + (f" (latest: {runs[0].name}, {runs[0].status})"
                                                                      if runs else ""))


def _output(run, step: str, name: str):
    """A step's output loaded, or None when the run has no such step or output."""
    if step not in run.steps or name not in run.steps[step].outputs:
        return None
    try:
        return run.steps[step].outputs[name][0].load()
    except Exception as exc:  # an artifact store moved or cleaned: the report says what is missing
        logger.warning("could not load %s of step %s: %s", name, step, exc)
        return None


def _mlflow_run(run, tracking_uri: str | None):
    """The MLflow run that mirrors the pipeline run (same name, experiment named after the pipeline)."""
    if not tracking_uri:
        return None, None
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per folder otherwise
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(run.pipeline.name if run.pipeline else "training_pipeline")
    if experiment is None:
        return client, None
    found = client.search_runs([experiment.experiment_id], filter_string=f'tags.mlflow.runName = "{run.name}"',
                               max_results=1)
    return client, (found[0] if found else None)


def _download(client, run_id: str, path: str, dst: Path) -> Path | None:
    try:
        if not client.list_artifacts(run_id, path) and path.endswith("/"):
            return None
        return Path(client.download_artifacts(run_id, path.rstrip("/"), str(dst)))
    except Exception as exc:  # not logged by this run (no ensembles, no protocol, ...)
        logger.debug("no MLflow artifact %s: %s", path, exc)
        return None


def _png(fig) -> bytes:
    return reports.figure_png(fig)


def collect(run, tracking_uri: str | None, workdir: Path) -> RunReport:
    """Everything the report shows, read from ``run`` (a ZenML pipeline run) and its MLflow run."""
    params = dict(run.config.parameters or {})
    utterances = _output(run, "ingest_corpora", "utterances")
    rejected = _output(run, "ingest_corpora", "rejected")
    corpora_cfg = params.get("corpora") or {}
    from speech_emotion.config import CorporaConfig

    try:
        corpora = CorporaConfig(**corpora_cfg)
    except Exception:  # a configuration this version no longer reads: no synthetic flags
        corpora = None
    present = sorted(set(utterances["corpus"])) if utterances is not None else []
    synthetic = [c for c in (corpora.synthetic() if corpora else []) if c in present]
    present = corpus_order(present)
    sources = describe_corpora(present, synthetic=synthetic, custom=corpora.custom if corpora else [])
    n = len(utterances) if utterances is not None else 0
    data = (f"{n} utterances of {', '.join(present) or 'no corpus'}"
            + (f" ({', '.join(synthetic)}: synthetic demo corpus)" if synthetic else " (recordings)"))
    split = params.get("split") or {}
    protocol = (params.get("evaluation") or {}).get("protocol")
    report = RunReport(run=run.name, run_id=str(run.id), pipeline=run.pipeline.name if run.pipeline else "",
                       status=str(run.status).split(".")[-1].lower(), started=str(run.start_time or run.created)[:19],
                       data=data, protocol=protocol_text(split, protocol), synthetic=synthetic)

    mlclient, mlrun = _mlflow_run(run, tracking_uri)
    files = workdir / "mlflow"
    if mlrun is not None:
        report.mlflow_run_id = mlrun.info.run_id
        for folder in ("dataset", "evaluation", "protocol"):
            _download(mlclient, mlrun.info.run_id, folder, files)
    else:
        report.notes.append("No MLflow run was found for this pipeline run: the figures logged there (dataset "
                            "figures, input visualisations, per-origin and per-class tables) are missing.")
    ml = f"MLflow run {report.mlflow_run_id}"

    # ---------------------------------------------------------------- dataset
    dataset = Section("Dataset analysis", "The seed's section 2.3: Table 1 and Figures 1-3, over the data this run "
                      "ingested.")
    durations = _output(run, "analyse_dataset", "duration_table")
    if durations is not None:
        dataset.items.append(Item("dataset/duration_table.csv", "Durations in seconds per split and origin (seed "
                                  "Table 1)", "ZenML step analyse_dataset, artifact duration_table", durations))
    if utterances is not None:
        dataset.items.append(Item("dataset/utterances_per_class.csv", "Utterances per origin and class",
                                  "ZenML step ingest_corpora, artifact utterances",
                                  pd.crosstab(utterances["corpus"], utterances["emotion"], margins=True)))
        dataset.items.append(Item("dataset/corpora.csv", "Corpora: licence, language, speech, speakers by gender",
                                  "ZenML step ingest_corpora, artifact utterances; facts from the corpora's "
                                  "distributors", data_table(utterances, sources)))
    if rejected is not None and len(rejected):
        dataset.items.append(Item("dataset/rejected_per_reason.csv", "Rejected files per origin and reason",
                                  "ZenML step ingest_corpora, artifact rejected",
                                  pd.crosstab(rejected["corpus"], rejected["reason"], margins=True)))
    for name, caption in (("class_distribution_train", "Class distribution of the training split (seed Figure 1)"),
                          ("class_distribution_per_corpus", "Class distribution per corpus (seed Figure 2)"),
                          ("origin_distribution", "Origin of the samples per split (seed Figure 3)")):
        path = files / "dataset" / f"{name}.png"
        if path.is_file():
            dataset.items.append(Item(f"dataset/{name}.png", caption, f"{ml}, artifact dataset/{name}.png",
                                      path.read_bytes()))
    page = _output(run, "analyse_dataset", "dataset_report")
    if page is not None:
        dataset.items.append(Item("dataset/dataset_report.html", "The dataset report as one page",
                                  "ZenML step analyse_dataset, artifact dataset_report", str(page)))
    report.sections.append(dataset)

    inputs = Section("Inputs over time (seed section 4)", "Log-mel spectrograms and chromagrams of two clips of "
                     "similar duration per class, before scaling.")
    for name, caption in (("input_examples.csv", "The clips plotted"),
                          ("inputs_logmel.png", "Log-mel spectrograms over time (seed Figures 4-6)"),
                          ("inputs_chromagram.png", "Chromagrams over time (seed Figures 7-9)")):
        path = files / "dataset" / name
        if path.is_file():
            value = pd.read_csv(path, index_col=0) if name.endswith(".csv") else path.read_bytes()
            inputs.items.append(Item(f"inputs/{name}", caption, f"{ml}, artifact dataset/{name}", value))
    if not inputs.items:
        inputs.note += " Not in this run (it predates them, or has no MLflow run)."
    report.sections.append(inputs)

    # ---------------------------------------------------------------- comparison
    comparison = _output(run, "compare_models", "comparison")
    comp = Section("Comparison of every model and ensemble", "The seed's Tables 13 (families), 14 (average "
                   "voting), 16 (GA-weighted voting) and 17 (stacking) in one table per split, with the classical "
                   "baseline's figures (functionals + SVM) beside every model: baseline_accuracy, baseline_f1_macro, "
                   "f1_macro_vs_baseline. Inference time in seconds for the whole split. " + report.protocol)
    if comparison is not None:
        ablation = comparison["model"].str.endswith(("_no_scaled", "_logmel_band", "_logmel_element"))
        for split_name in ("val", "test"):
            part = comparison[(comparison["split"] == split_name) & ~ablation].drop(columns="split").set_index("model")
            if len(part):
                comp.items.append(Item(f"comparison/{split_name}.csv", f"All models and ensembles on {split_name}",
                                       "ZenML step compare_models, artifact comparison", part))
        comp.items.append(Item("comparison/f1_macro.png", "F1-macro per model and ensemble",
                               "ZenML step compare_models, artifact comparison (plotted here)",
                               _png(reports.comparison_figure(comparison))))
        if ablation.any():
            bases = {m.rsplit("_no_scaled", 1)[0].rsplit("_logmel_", 1)[0] for m in comparison.loc[ablation, "model"]}
            rows = comparison[ablation | comparison["model"].isin(bases)].sort_values(["split", "model"])
            features = params.get("features") or {}
            comp.items.append(Item(
                "comparison/scaling_ablation.csv",
                "Scaling ablation (seed Table 2): <family> is scaled with features.logmel_scaling = "
                f"{features.get('logmel_scaling', 'element')}; _no_scaled unscaled; _logmel_band / _logmel_element "
                "the other log-mel scaling", "ZenML step compare_models, artifact comparison",
                rows.set_index(["model", "split"])))
    else:
        comp.note += " This run has no comparison table."
    report.sections.append(comp)

    weights = _output(run, "ensemble_models", "ga_weights")
    history = _output(run, "ensemble_models", "ga_history")
    ens = Section("Genetic-algorithm ensemble", "Weights searched on validation (seed Tables 15-16) and the "
                  "fitness (validation F1-macro) per generation.")
    if weights is not None and weights["weight"].notna().any():
        ens.items.append(Item("ensemble/ga_weights.csv", "GA weights per member (seed Table 15)",
                              "ZenML step ensemble_models, artifact ga_weights", weights.set_index("model")))
    if history is not None and len(history):
        from speech_emotion.ensemble import fitness_figure

        ens.items.append(Item("ensemble/ga_fitness.png", "GA fitness per generation: best (solid) and mean (dashed)",
                              "ZenML step ensemble_models, artifact ga_history (plotted here)",
                              _png(fitness_figure(history))))
        ens.items.append(Item("ensemble/ga_history.csv", "GA fitness per restart and generation",
                              "ZenML step ensemble_models, artifact ga_history", history))
    if not ens.items:
        ens.note += " No GA ensemble in this run."
    report.sections.append(ens)

    # ---------------------------------------------------------------- per origin / class, confusion
    per = Section("Per origin and per class", "Accuracy and F1-macro per corpus (seed Table 18), accuracy "
                  "(recall) and F1 per class (seed Tables 19-20), for every model and split.")
    evaluation = files / "evaluation"
    if evaluation.is_dir():
        for csv in sorted(evaluation.glob("*/*_per_*.csv")):
            model, stem = csv.parent.name, csv.stem
            split_name, kind = stem.split("_per_", 1)
            per.items.append(Item(f"evaluation/{model}/{csv.name}", f"{model} on {split_name}, per {kind}",
                                  f"{ml}, artifact evaluation/{model}/{csv.name}", pd.read_csv(csv, index_col=0)))
    if not per.items:
        per.note += " Not available (no MLflow run)."
    report.sections.append(per)

    conf = Section("Confusion matrices", "Rows: true class, columns: predicted; shading is the share of the "
                   "row, numbers are counts.")
    for step_name, step in run.steps.items():
        if "confusion_matrices" not in step.outputs:
            continue
        matrices = _output(run, step_name, "confusion_matrices")
        for key, cm in (matrices.matrices.items() if matrices is not None else []):
            slug = key.replace(" on ", "_").replace(" ", "_")
            conf.items.append(Item(f"confusion/{slug}.png", f"Confusion matrix: {key}",
                                   f"ZenML step {step_name}, artifact confusion_matrices (plotted here)",
                                   _png(reports.confusion_matrix_figure(cm, key))))
    report.sections.append(conf)

    protocol_dir = files / "protocol"
    if protocol_dir.is_dir():
        prot = Section("Protocols", "Cross-validated figures: pooled over all test folds with bootstrap 95 % "
                       "intervals, and per fold. " + report.protocol)
        for csv in sorted(protocol_dir.rglob("*.csv")):
            rel = csv.relative_to(files).as_posix()
            prot.items.append(Item(rel, f"{csv.stem.replace('_', ' ')}", f"{ml}, artifact {rel}",
                                   pd.read_csv(csv, index_col=0)))
        report.sections.append(prot)

    # ---------------------------------------------------------------- model card
    card = _output(run, "register_model", "model_card")
    if card is None and mlrun is not None:
        path = _download(mlclient, mlrun.info.run_id, "model_card.md", files)
        card = path.read_text() if path is not None and path.is_file() else None
    if card is None and utterances is not None and comparison is not None:
        deployed = (mlrun.data.tags.get("deployed_model") if mlrun is not None else None) or str(
            comparison[comparison["split"] == "val"].sort_values("f1_macro", ascending=False).iloc[0]["model"])
        card = model_card(model=deployed, kind="", reason="", utterances=utterances, sources=sources,
                          comparison=comparison, split=split, protocol=protocol, run=run.name)
        report.notes.append("The model card was made for this report (the run registered none): it has no figures "
                            "per gender.")
    report.model_card = str(card) if card is not None else None
    return report


def write_run_report(name_or_id: str | None, out: str | Path, tracking_uri: str | None) -> tuple[str, Path]:
    """Find the run, collect its report and write it into ``out``; return the run's name and ``index.html``."""
    from speech_emotion.run_report import write_report

    run = find_run(name_or_id)
    with tempfile.TemporaryDirectory(prefix="ser-report-") as tmp:
        report = collect(run, tracking_uri, Path(tmp))
        return run.name, write_report(report, out)
