"""Figures and HTML reports: the seed's dataset analysis (Table 1, Figures 1-3) and
evaluation figures (confusion matrices, per-origin and per-class tables).

Figures are matplotlib ``Figure`` objects (logged to MLflow by the steps); the
HTML reports embed them as PNG so a ZenML dashboard or a browser shows them
with no other file.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from speech_emotion.corpora.common import EMOTIONS, corpus_order


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- dataset analysis


def duration_table(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The seed's Table 1: #samples and duration statistics per split and per origin."""
    rows = []
    for name, df in splits.items():
        if not df.empty:
            rows.append((name, df))
    all_rows = pd.concat([df for _, df in rows]) if rows else pd.DataFrame(columns=["corpus", "duration_s"])
    for corpus in corpus_order(all_rows["corpus"]):
        part = all_rows[all_rows["corpus"] == corpus]
        if not part.empty:
            rows.append((corpus, part))
    table = pd.DataFrame(
        [
            {
                "dataset": name,
                "n_samples": len(df),
                "avg_dur": df["duration_s"].mean(),
                "max_dur": df["duration_s"].max(),
                "min_dur": df["duration_s"].min(),
                "median_dur": df["duration_s"].median(),
            }
            for name, df in rows
        ]
    )
    return table.set_index("dataset") if not table.empty else table


def class_distribution_figure(df: pd.DataFrame, title: str):
    """Figure 1 (and 2 per corpus): number of samples per class."""
    plt = _pyplot()
    counts = df["emotion"].value_counts().reindex(EMOTIONS, fill_value=0)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bars = ax.bar(counts.index, counts.values, color="tab:blue")
    ax.bar_label(bars)
    ax.set_title(title)
    ax.set_ylabel("samples")
    fig.tight_layout()
    return fig


def per_corpus_class_figure(df: pd.DataFrame):
    """Figure 2 for every corpus at once: class distribution within each origin."""
    plt = _pyplot()
    present = corpus_order(df["corpus"])
    fig, axes = plt.subplots(1, max(1, len(present)), figsize=(4 * max(1, len(present)), 3.5), squeeze=False)
    for ax, corpus in zip(axes[0], present):
        counts = df[df["corpus"] == corpus]["emotion"].value_counts().reindex(EMOTIONS, fill_value=0)
        ax.bar(counts.index, counts.values, color="tab:green")
        ax.set_title(f"classes in {corpus}")
        ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig


def origin_distribution_figure(splits: dict[str, pd.DataFrame]):
    """Figure 3: number of samples per origin, one panel per split."""
    plt = _pyplot()
    names = [n for n, df in splits.items() if not df.empty]
    origins = corpus_order(set().union(*(set(df["corpus"]) for df in splits.values())))
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4 * max(1, len(names)), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        counts = splits[name]["corpus"].value_counts().reindex(origins, fill_value=0)
        bars = ax.bar(counts.index, counts.values, color="tab:orange")
        ax.bar_label(bars)
        ax.set_title(f"origin of samples ({name})")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- inputs over time (seed section 4)

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def choose_input_examples(utterances: pd.DataFrame, per_class: int = 2, prefer: tuple[str, ...] = ("tess",)) -> pd.DataFrame:
    """``per_class`` clips of similar duration per class, as the seed's section 4 picked them (two
    samples of similar duration of each class from TESS): for each class, the first corpus in
    ``prefer`` then report order that holds ``per_class`` clips of it, and there the run of
    ``per_class`` clips closest in duration (the first such run, so the choice is reproducible).
    A class that no corpus holds ``per_class`` times gets what the largest corpus has."""
    rows = []
    order = [c for c in prefer if c in set(utterances["corpus"])] + [
        c for c in corpus_order(utterances["corpus"]) if c not in prefer]
    for emotion in EMOTIONS:
        of_class = utterances[utterances["emotion"] == emotion]
        if of_class.empty:
            continue
        corpus = next((c for c in order if (of_class["corpus"] == c).sum() >= per_class),
                      of_class["corpus"].value_counts().index[0])
        part = of_class[of_class["corpus"] == corpus].sort_values(["duration_s", "path"], kind="stable")
        k = min(per_class, len(part))
        spreads = [part["duration_s"].iloc[i + k - 1] - part["duration_s"].iloc[i] for i in range(len(part) - k + 1)]
        start = int(np.argmin(spreads))
        rows.append(part.iloc[start : start + k])
    columns = [c for c in ("emotion", "corpus", "speaker", "relpath", "path", "duration_s") if c in utterances.columns]
    return pd.concat(rows)[columns].reset_index(drop=True) if rows else pd.DataFrame(columns=columns)


def clip_over_time(path: str, params) -> tuple[np.ndarray, np.ndarray]:
    """The log-mel (dB, ref = clip max; ``params.n_mels`` x frames) and the chromagram (12 x frames)
    of one clip over its own duration (cut to ``params.duration_s``, not padded), computed as
    :func:`speech_emotion.features.clip_features` does, but keeping the chroma of every frame."""
    from speech_emotion import numba_cache
    from speech_emotion.audio import load_audio

    librosa = numba_cache.librosa()

    y = load_audio(path, target_sr=params.sample_rate)[: params.n_samples]
    power = np.abs(librosa.stft(y, n_fft=params.n_fft, hop_length=params.hop_length)) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=params.sample_rate, n_mels=params.n_mels)
    logmel = librosa.power_to_db(mel, ref=np.max, top_db=params.top_db)
    chroma = librosa.feature.chroma_stft(S=power, sr=params.sample_rate, n_fft=params.n_fft,
                                         hop_length=params.hop_length, n_chroma=params.n_chroma,
                                         tuning=None if params.chroma_tuning else 0.0)
    return logmel, chroma


def inputs_over_time_figure(examples: pd.DataFrame, arrays: list[np.ndarray], kind: str, params):
    """Figures 4-9 of the seed: one row per class, one panel per clip, ``kind`` ``logmel`` or ``chroma``
    over time (seconds). ``arrays`` are row-aligned with ``examples``."""
    plt = _pyplot()
    classes = list(dict.fromkeys(examples["emotion"]))
    per_class = max(1, int(examples["emotion"].value_counts().max())) if len(examples) else 1
    fig, axes = plt.subplots(max(1, len(classes)), per_class, figsize=(4.6 * per_class, 1.9 * max(1, len(classes))),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.set_visible(False)
    seen: dict[str, int] = {}
    image = None
    for (_, row), arr in zip(examples.iterrows(), arrays):
        r = classes.index(row["emotion"])
        c = seen.get(row["emotion"], 0)
        seen[row["emotion"]] = c + 1
        ax = axes[r][c]
        ax.set_visible(True)
        seconds = arr.shape[1] * params.hop_length / params.sample_rate
        if kind == "chroma":
            image = ax.imshow(arr, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                              extent=(0, seconds, -0.5, arr.shape[0] - 0.5))
            ax.set_yticks(range(arr.shape[0]), PITCH_CLASSES[: arr.shape[0]] if arr.shape[0] == 12 else None,
                          fontsize=6)
        else:
            image = ax.imshow(arr, origin="lower", aspect="auto", cmap="magma", vmin=-params.top_db, vmax=0,
                              extent=(0, seconds, 0, arr.shape[0]))
            ax.set_ylabel("mel band", fontsize=7)
        name = str(row.get("relpath", row["path"])).rsplit("/", 1)[-1]
        ax.set_title(f"{row['emotion']}: {row['corpus']} {name} ({row['duration_s']:.2f} s)", fontsize=8)
        ax.tick_params(labelsize=7)
        if r == len(classes) - 1:
            ax.set_xlabel("time (s)", fontsize=7)
    title = "Chromagram" if kind == "chroma" else "Log-mel spectrogram (dB)"
    fig.suptitle(f"{title} over time, {per_class} clips per class (seed section 4)")
    if image is not None:
        fig.colorbar(image, ax=axes, fraction=0.03, pad=0.01, label="dB" if kind != "chroma" else "energy")
    return fig


def input_visualisations(utterances: pd.DataFrame, params, per_class: int = 2):
    """The seed's section 4 for a dataset: the chosen clips (a table with a ``status`` column: ``ok``
    or why a clip could not be read) and the log-mel and chromagram figures (None without a clip)."""
    examples = choose_input_examples(utterances, per_class)
    logmels, chromas, status = [], [], []
    for path in examples["path"]:
        try:
            logmel, chroma = clip_over_time(path, params)
        except Exception as exc:  # a file gone or unreadable since ingestion: say so, plot the others
            status.append(f"not plotted: {exc}")
            continue
        logmels.append(logmel)
        chromas.append(chroma)
        status.append("ok")
    examples = examples.assign(status=status)
    shown = examples[examples["status"] == "ok"]
    if not len(shown):
        return examples, None, None
    return (examples, inputs_over_time_figure(shown, logmels, "logmel", params),
            inputs_over_time_figure(shown, chromas, "chroma", params))


# --------------------------------------------------------------------------- evaluation


def confusion_matrix_figure(cm: np.ndarray, title: str):
    plt = _pyplot()
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = cm / cm.sum(axis=1, keepdims=True)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(np.nan_to_num(norm), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def training_curves_figure(history: dict[str, list[float]], title: str):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key in (metric, f"val_{metric}"):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- HTML


def figure_png(fig, close: bool = True) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    if close:
        _pyplot().close(fig)
    return buf.getvalue()


@dataclass
class HtmlReport:
    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(self, df: pd.DataFrame, caption: str | None = None) -> None:
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        if df.index.nlevels == 1 and df.index.name and df.columns.name is None:
            # the index's name in the header's corner, not on a row of empty cells of its own
            df = df.rename_axis(index=None, columns=df.index.name)
        body = df.to_html(float_format=lambda v: f"{v:.4f}", border=0, classes="t")
        self.parts.append(re.sub(r"<table[^>]*>", f'<table class="t">{cap}', body, count=1))

    def image(self, png: bytes, alt: str) -> None:
        data = base64.b64encode(png).decode()
        self.parts.append(f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'
                          f"<figcaption>{html.escape(alt)}</figcaption></figure>")

    def render(self) -> str:
        style = ("body{font-family:sans-serif;margin:1.5em;max-width:1100px}"
                 "table.t{border-collapse:collapse;margin:.5em 0}"
                 "table.t td,table.t th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                 "caption{font-weight:bold;text-align:left}img{max-width:100%}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>"
                + "\n".join(self.parts) + "</body></html>")


def logmel_examples_figure(features, per_class: int = 1):
    """The seed's section 4: a log-mel spectrogram of one example per class."""
    plt = _pyplot()
    labels = np.asarray(features.labels)
    present = [i for i in range(len(EMOTIONS)) if (labels == i).any()]
    fig, axes = plt.subplots(1, max(1, len(present)), figsize=(2.6 * max(1, len(present)), 2.8), squeeze=False)
    for ax, cls in zip(axes[0], present):
        idx = int(np.flatnonzero(labels == cls)[0])
        ax.imshow(np.asarray(features.logmel[idx]), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(EMOTIONS[cls])
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def comparison_figure(table: pd.DataFrame):
    """F1-macro of every model and ensemble, validation and test side by side."""
    plt = _pyplot()
    pivot = table.pivot_table(index="model", columns="split", values="f1_macro")
    pivot = pivot.sort_values(pivot.columns[-1], ascending=True)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(pivot) + 1.5))
    height = 0.8 / max(1, len(pivot.columns))
    for i, split in enumerate(pivot.columns):
        ax.barh([y + i * height for y in range(len(pivot))], pivot[split].values, height=height, label=split)
    ax.set_yticks([y + height * (len(pivot.columns) - 1) / 2 for y in range(len(pivot))], pivot.index)
    ax.set_xlabel("F1-macro")
    ax.set_xlim(0, 1)
    ax.set_title("F1-macro per model and ensemble")
    ax.legend()
    fig.tight_layout()
    return fig
