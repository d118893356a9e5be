"""Where a pipeline run's minutes go, and what its models reached: ZenML's step durations and the
comparison table of a finished training run (issue 10: the demo profile's per-step times).

    python bench/run_times.py [RUN_NAME_OR_ID]     # default: the latest run of training_pipeline
        [--top 15]                                  # the slowest steps listed one by one

Prints the run's wall time (first step start to last step end), the time per step (slowest first),
the time per group of steps (a family's tuning + training + evaluation, the features, the
ensembles, ...), and the test split's accuracy, macro-F1 and UAR per model beside chance (one
over the number of classes, and the majority class's share). Reads the ZenML store of ``ZENML_CONFIG_PATH`` (the Makefile's).
A step served from ZenML's cache counts 0 s.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

#: step-name patterns -> the group they are reported under (first match wins)
GROUPS = (
    (r"^(ingest|check_for_new|split|analyse|resolve_feature|make_protocol)", "data: ingest, split, analysis"),
    (r"(extract|scale|augment)_.*features|fold_features", "features (extract, augment, scale)"),
    (r"stack", "stacking ensemble"),
    (r"_no_scaled|_logmel_band|ablation", "scaling ablation"),
    (r"functionals", "baseline (openSMILE functionals, SVM)"),
    (r"^(tune|train|evaluate)_(.+?)(_model)?(_fold\d+)?$", None),  # per family: the family's name
    (r"ensemble|vote|ga_", "voting and GA ensembles"),
)


def group_of(step: str) -> str:
    for pattern, name in GROUPS:
        match = re.search(pattern, step)
        if match:
            return name or f"family {match.group(2)} (tune, train, evaluate)"
    return "other (compare, predictor, registry, promotion)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="run name or id (default: the latest training_pipeline run)")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    from zenml.client import Client

    client = Client()
    run = (client.get_pipeline_run(args.run) if args.run
           else client.get_pipeline("training_pipeline").runs[0])
    steps = {name: s for name, s in run.steps.items()}
    times = {}
    for name, s in steps.items():
        cached = str(s.status).lower().endswith("cached")
        times[name] = 0.0 if cached or not (s.start_time and s.end_time) else (s.end_time - s.start_time).total_seconds()
    starts = [s.start_time for s in steps.values() if s.start_time]
    ends = [s.end_time for s in steps.values() if s.end_time]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else float("nan")
    print(f"run {run.name} ({run.status}): {len(steps)} steps, wall {wall / 60:.1f} min "
          f"(first step start to last step end), steps' sum {sum(times.values()) / 60:.1f} min")

    print(f"\nslowest {args.top} steps:")
    for name, t in sorted(times.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {t:7.1f} s  {name}")
    groups: dict[str, float] = defaultdict(float)
    for name, t in times.items():
        groups[group_of(name)] += t
    print("\nper group:")
    for name, t in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {t:7.1f} s  {100 * t / max(sum(times.values()), 1e-9):4.1f} %  {name}")

    if "compare_models" in steps:
        table = steps["compare_models"].outputs["comparison"][0].load()
        test = table[table["split"] == "test"].set_index("model")
        labels = steps["scale_features"].outputs["test_features"][0].load().labels
        classes = sorted(set(labels.tolist()))
        majority = max((labels == c).mean() for c in classes) if len(labels) else float("nan")
        cols = [c for c in ("accuracy", "f1_macro", "uar") if c in test.columns]
        print(f"\ntest split ({len(labels)} clips, {len(classes)} classes; chance: 1/{len(classes)} = "
              f"{1 / max(len(classes), 1):.3f}, the majority class {majority:.3f}):")
        print(test[cols].sort_values(cols[0], ascending=False).round(3).to_string())


if __name__ == "__main__":
    main()
