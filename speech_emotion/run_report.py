"""A training run's whole report as a folder: ``index.html``, ``README.md``, the tables as CSV and the
figures as PNG, each saying where it comes from (``ser report``).

This module writes what it is given: a :class:`RunReport` of plain tables, images
and texts, grouped in sections. Reading a run (the ZenML client, MLflow) is
:mod:`pipelines.run_report`'s job, so nothing here imports ZenML.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Item", "RunReport", "Section", "markdown_to_html", "write_report"]


@dataclass
class Item:
    """One table (DataFrame), figure (PNG bytes), or page (HTML/Markdown text) of the report."""

    path: str  # relative to the report folder
    caption: str
    source: str  # where it was read from, e.g. "ZenML step compare_models, artifact comparison"
    data: pd.DataFrame | bytes | str


@dataclass
class Section:
    title: str
    note: str = ""
    items: list[Item] = field(default_factory=list)


@dataclass
class RunReport:
    run: str
    run_id: str
    pipeline: str
    status: str
    started: str
    #: which data every figure comes from, in words
    data: str
    #: the split or protocol that produced the figures, in words
    protocol: str
    synthetic: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None
    model_card: str | None = None
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


SYNTHETIC_WARNING = ("Synthetic demo corpus: {corpora} {verb} synthesised speech (`ser demo-corpus`, eSpeak NG), not "
                     "recordings of people. Every figure here says that the code paths work; none says how well "
                     "emotions in human speech are recognised.")


def _warning(report: RunReport) -> str:
    if not report.synthetic:
        return ""
    return SYNTHETIC_WARNING.format(corpora=", ".join(report.synthetic), verb="is" if len(report.synthetic) == 1 else "are")


def _inline(text: str) -> str:
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _align(cell: str) -> str:
    """Numbers right-aligned (the tables' default), text left."""
    return "" if re.fullmatch(r"-?[\d.]+|-", cell.strip()) else ' style="text-align:left"'


def markdown_to_html(text: str) -> str:
    """The Markdown the model card uses (headings, lists, tables, block quotes, bold, code) as HTML."""
    out, table, listing, para = [], [], False, []

    def flush() -> None:
        nonlocal table, listing, para
        if table:
            rows = [r for r in table if not re.fullmatch(r"\|(\s*-+\s*\|)+", r.replace("---", "-"))]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td{_align(c)}>{_inline(c)}</td>" for c in r) + "</tr>"
                           for r in cells[1:])
            out.append(f'<table class="t"><tr>{head}</tr>{body}</table>')
            table = []
        if listing:
            out.append("</ul>")
            listing = False
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para = []

    for line in text.splitlines():
        if line.startswith("|"):
            if not table:
                flush()
            table.append(line)
            continue
        if table:
            flush()
        if m := re.match(r"(#{1,4}) (.*)", line):
            flush()
            level = len(m.group(1)) + 1  # the page's own title is the h1
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif line.startswith("- "):
            if para:
                flush()
            if not listing:
                out.append("<ul>")
                listing = True
            out.append(f"<li>{_inline(line[2:])}</li>")
        elif line.startswith("> "):
            flush()
            out.append(f'<blockquote class="warn">{_inline(line[2:])}</blockquote>')
        elif not line.strip():
            flush()
        else:
            if listing:
                flush()
            para.append(line.strip())
    flush()
    return "\n".join(out)


_STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:1150px;line-height:1.4}"
          "table.t{border-collapse:collapse;margin:.5em 0;font-size:90%}"
          "table.t td,table.t th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
          "table.t th{background:#f3f3f3}caption{font-weight:bold;text-align:left}"
          "img{max-width:100%;border:1px solid #eee}.src{color:#555;font-size:85%;margin-top:0}"
          ".warn{background:#fff3cd;border:1px solid #e0b000;padding:.6em 1em;margin:1em 0}"
          "nav a{margin-right:1em}figure{margin:1em 0}")


def _integers_as_integers(df: pd.DataFrame) -> pd.DataFrame:
    """Float columns that hold only whole numbers (counts with gaps, e.g. n_params) shown as integers."""
    out = df.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_float_dtype(values) and values.notna().any() and (values.dropna() % 1 == 0).all():
            out[column] = values.astype("Int64")
    return out


def _table_html(df: pd.DataFrame, caption: str) -> str:
    df = _integers_as_integers(df)
    if df.index.nlevels == 1 and df.index.name and df.columns.name is None:
        df = df.rename_axis(index=None, columns=df.index.name)
    body = df.to_html(float_format=lambda v: f"{v:.4f}", border=0, na_rep="-")
    return re.sub(r"<table[^>]*>", f'<table class="t"><caption>{html.escape(caption)}</caption>', body, count=1)


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def write_report(report: RunReport, out: str | Path) -> Path:
    """Write the report into ``out`` (created; files of an earlier report there are replaced) and
    return the path of its ``index.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    warning = _warning(report)
    parts = [f"<h1>Report of training run {html.escape(report.run)}</h1>"]
    if warning:
        parts.append(f'<div class="warn"><strong>{_inline(warning)}</strong></div>')
    facts = [("Pipeline run", f"{report.run} ({report.run_id}), {report.pipeline}, {report.status}, started {report.started}"),
             ("MLflow run", report.mlflow_run_id or "none found (figures from ZenML artifacts only)"),
             ("Data", report.data), ("Figures from", report.protocol)]
    parts.append('<table class="t">' + "".join(f"<tr><th>{html.escape(k)}</th><td style='text-align:left'>"
                                               f"{_inline(v)}</td></tr>" for k, v in facts) + "</table>")
    for note in report.notes:
        parts.append(f"<p>{_inline(note)}</p>")
    titles = (["Model card"] if report.model_card else []) + [s.title for s in report.sections]
    parts.append("<nav>" + "".join(f'<a href="#{_anchor(t)}">{html.escape(t)}</a>' for t in titles) + "</nav>")
    readme = [f"# Report of training run {report.run}", ""]
    if warning:
        readme += [f"> **{warning}**", ""]
    readme += [f"- **{k}**: {v}" for k, v in facts] + [""] + report.notes + ([""] if report.notes else [])
    readme += ["Open `index.html` for everything on one page. Files:", ""]

    if report.model_card:
        (out / "model_card.md").write_text(report.model_card)
        parts.append(f'<section id="{_anchor("Model card")}">' + markdown_to_html(report.model_card) + "</section>")
        readme.append("- `model_card.md`: the model card (data, protocol, figures per gender, intended use and limits)")
    for section in report.sections:
        parts.append(f'<section id="{_anchor(section.title)}"><h2>{html.escape(section.title)}</h2>')
        readme += ["", f"## {section.title}", ""]
        if section.note:
            parts.append(f"<p>{_inline(section.note)}</p>")
            readme += [section.note, ""]
        for item in section.items:
            target = out / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            src = f'<p class="src">From {_inline(item.source)}. Data: {_inline(report.data)}</p>'
            link = html.escape(item.path)
            if isinstance(item.data, pd.DataFrame):
                item.data.to_csv(target)
                parts.append(_table_html(item.data, item.caption) + f' <a href="{link}">CSV</a>' + src)
            elif isinstance(item.data, bytes):
                target.write_bytes(item.data)
                parts.append(f'<figure><img alt="{html.escape(item.caption)}" src="{link}"/>'
                             f"<figcaption>{html.escape(item.caption)}</figcaption></figure>" + src)
            else:
                target.write_text(item.data)
                parts.append(f'<p><a href="{link}">{html.escape(item.caption)}</a></p>' + src)
            readme.append(f"- `{item.path}`: {item.caption} (from {item.source})")
        parts.append("</section>")

    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Run {html.escape(report.run)}</title>"
            f"<style>{_STYLE}</style></head><body>" + "\n".join(parts) + "</body></html>")
    (out / "index.html").write_text(page)
    (out / "README.md").write_text("\n".join(readme) + "\n")
    return out / "index.html"
