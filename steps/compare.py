"""One table of every model and ensemble (seed Tables 13, 14, 16, 17 and 2 in one place)."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step
from zenml.types import HTMLString

from speech_emotion import reports
from speech_emotion.evaluation import compare_to_baseline
from steps import _tracking
from steps.evaluate import split_note


@step(experiment_tracker=True)
def compare_models(
    metrics: list[pd.DataFrame], ga_weights: pd.DataFrame | None = None, split_description: str = ""
) -> tuple[Annotated[pd.DataFrame, "comparison"], Annotated[HTMLString, "comparison_report"]]:
    table = pd.concat([m for m in metrics if len(m)], ignore_index=True)
    table = table.sort_values(["split", "f1_macro"], ascending=[True, False]).reset_index(drop=True)
    table = compare_to_baseline(table)  # the classical baseline's figures beside every model's
    report = reports.HtmlReport("Model comparison")
    report.paragraph(split_note(split_description))
    for split in ("val", "test"):
        part = table[table["split"] == split].drop(columns="split").set_index("model")
        if len(part):
            report.table(part, f"All models and ensembles on {split} (seed Table 13 columns; inference time in seconds for the whole split)")
            _tracking.log_table(part, f"comparison/{split}.csv")
    if ga_weights is not None and len(ga_weights) and ga_weights["weight"].notna().any():
        report.table(ga_weights.set_index("model"), "GA ensemble weights (seed Table 15)")
    fig = reports.comparison_figure(table)
    _tracking.report_figure(report, fig, "F1-macro per model", "comparison/f1_macro.png")
    html = report.render()
    _tracking.log_text(html, "comparison/report.html")
    # chosen on validation: the test split stays an unbiased estimate of the chosen model
    val = table[table["split"] == "val"]
    if len(val):
        top = val.iloc[0]["model"]
        _tracking.set_tags({"best_model": str(top), "best_model_selected_on": "val"})
        test_row = table[(table["split"] == "test") & (table["model"] == top)]
        if len(test_row):
            _tracking.log_metrics({"best_model.test_f1_macro": float(test_row.iloc[0]["f1_macro"]),
                                   "best_model.test_accuracy": float(test_row.iloc[0]["accuracy"])})
    return table, HTMLString(html)
