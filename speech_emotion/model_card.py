"""A model card for a trained predictor: the data, the protocol and the figures, intended use and limits.

Markdown built from plain records (the utterance table, the comparison table, the
split settings, per-group figures), so the same text goes into the registered
model's description (MLflow and the ZenML Model version), the run's artifacts
(``model_card.md``) and ``ser report``. No ZenML here.

The card follows the sections of Mitchell et al., "Model Cards for Model
Reporting" (2019), cut to what this product knows about its own runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from speech_emotion.corpora.common import CORPORA, EMOTIONS, corpus_order
from speech_emotion.evaluation import f1_macro

__all__ = ["BUILTIN_CORPORA", "CorpusFacts", "MLFLOW_DESCRIPTION_LIMIT", "data_table", "describe_corpora",
           "group_scores", "markdown_table", "model_card", "protocol_text", "short_description"]

#: MLflow's registry stores a version's description in 5000 characters
MLFLOW_DESCRIPTION_LIMIT = 5000


@dataclass(frozen=True)
class CorpusFacts:
    """What a corpus is, as its distributors describe it."""

    title: str
    license: str
    language: str
    #: acted | elicited | natural | synthetic | not stated
    speech: str
    speakers: str = ""
    synthetic: bool = False


#: the four built-in corpora as distributed (see DESIGN.md, "Facts about the corpora")
BUILTIN_CORPORA: dict[str, CorpusFacts] = {
    "tess": CorpusFacts("Toronto Emotional Speech Set (TESS)", "CC BY-NC-ND 4.0 (non-commercial, no derivatives)",
                        "English (Canadian)", "acted", "2 female actors, aged 26 and 64"),
    "savee": CorpusFacts("Surrey Audio-Visual Expressed Emotion (SAVEE)",
                         "free for research use, on registration with the University of Surrey",
                         "English (British)", "acted", "4 male speakers, aged 27-31"),
    "ravdess": CorpusFacts("Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS)",
                           "CC BY-NC-SA 4.0 (non-commercial, share alike)", "English (North American)", "acted",
                           "24 professional actors, 12 female and 12 male"),
    "crema": CorpusFacts("Crowd-sourced Emotional Multimodal Actors Dataset (CREMA-D)",
                         "Open Database License 1.0 (contents: Database Contents License 1.0)", "English (US)",
                         "acted", "91 actors, 48 male and 43 female, aged 20-74"),
}


_LAYOUT_NAMES = {"tess": "TESS", "savee": "SAVEE", "ravdess": "RAVDESS", "crema": "CREMA-D"}


def _demo_facts(corpus: str) -> CorpusFacts:
    layout = _LAYOUT_NAMES.get(corpus, corpus)
    return CorpusFacts(f"synthetic demo corpus in the layout of {layout} (`ser demo-corpus`, eSpeak NG)",
                       "generated on this machine; no recording of a person", "English (synthesised)", "synthetic",
                       "synthetic voices", synthetic=True)


def describe_corpora(names: Iterable[str], synthetic: Iterable[str] = (), custom: Iterable = ()) -> dict[str, dict]:
    """Facts per corpus a run reads, as plain dicts (a step parameter): the built-in corpora's from
    :data:`BUILTIN_CORPORA`, those in ``synthetic`` (built-in corpora that came from the demo
    generator) as synthetic speech, and the custom corpora's from their ``license``, ``language``
    and ``speech`` settings (``not stated`` where the configuration does not say)."""
    synthetic = set(synthetic)
    by_name = {c.name: c for c in custom}
    out = {}
    for name in names:
        if name in synthetic:
            facts = _demo_facts(name)
        elif name in BUILTIN_CORPORA:
            facts = BUILTIN_CORPORA[name]
        else:
            c = by_name.get(name)
            facts = CorpusFacts(f"custom corpus {name}", getattr(c, "license", None) or "not stated",
                                getattr(c, "language", None) or "not stated", getattr(c, "speech", None) or "not stated")
        out[name] = asdict(facts)
    return out


def data_table(utterances: pd.DataFrame, sources: dict[str, dict]) -> pd.DataFrame:
    """Per corpus: what it is, its licence, language, kind of speech, and the speakers by gender
    and utterances this run used (counted in the utterance table)."""
    rows = []
    for corpus in corpus_order(utterances["corpus"]):
        part = utterances[utterances["corpus"] == corpus]
        facts = sources.get(corpus, asdict(CorpusFacts(corpus, "not stated", "not stated", "not stated")))
        genders = part.drop_duplicates("speaker")["gender"].value_counts() if "gender" in part else pd.Series(dtype=int)
        rows.append({
            "corpus": corpus, "source": facts["title"], "licence": facts["license"], "language": facts["language"],
            "speech": facts["speech"], "utterances": len(part), "speakers": int(part["speaker"].nunique()),
            "female": int(genders.get("female", 0)), "male": int(genders.get("male", 0)),
            "gender unknown": int(genders.get("unknown", 0)),
        })
    return pd.DataFrame(rows).set_index("corpus") if rows else pd.DataFrame()


def group_scores(probs: np.ndarray, labels: Sequence[int], groups: Sequence[str], name: str = "group") -> pd.DataFrame:
    """Accuracy and F1-macro per group (gender, corpus, ...) of (N, 7) probabilities against labels."""
    probs, labels, groups = np.asarray(probs), np.asarray(labels, dtype=int), np.asarray(groups, dtype=str)
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    rows = [{name: g, "n": int((groups == g).sum()),
             "accuracy": float((pred[groups == g] == labels[groups == g]).mean()),
             "f1_macro": f1_macro(labels[groups == g], pred[groups == g], len(EMOTIONS))}
            for g in sorted(set(groups))]
    return pd.DataFrame(rows, columns=[name, "n", "accuracy", "f1_macro"]).set_index(name)


def protocol_text(split: dict, protocol: str | None = None) -> str:
    """Where the figures come from, in words: the split strategy (or a cross-validation protocol)."""
    if protocol and protocol != "holdout":
        return (f"Cross-validated protocol `{protocol}`: every figure is pooled over the test folds; "
                "validation comes from each fold's training speakers.")
    strategy = split.get("strategy", "stratified")
    val, test = split.get("val_fraction"), split.get("test_fraction")
    sizes = f" Validation {val:.0%} of the training data, test {test:.0%} held out." if val is not None and test else ""
    if strategy == "speaker":
        return ("Speaker-independent hold-out: every speaker is in one split only, so test figures are for "
                "voices the model never heard." + sizes)
    if strategy == "corpus":
        return (f"Leave-one-corpus-out: the test split is the whole corpus `{split.get('test_corpus')}`, "
                "never seen in training." + sizes)
    return ("Random split stratified by class and origin (the seed's): the same speakers and sentences are in "
            "training and test, so the figures are optimistic (by about ten points on the real corpora) for "
            "speakers the model never heard." + sizes)


INTENDED_USE = (
    "Research and engineering on emotional speech: comparing methods and reproducing the seed's experiments, "
    "and labelling recordings made for such research, with the consent of the people recorded."
)

LIMITS = (
    "The model learned **acted** speech: actors portraying seven emotions in short, fixed sentences. It is "
    "**not validated on spontaneous speech**, where emotions are subtler, mixed and context-dependent; expect "
    "much lower figures there.",
    "It knows English as spoken in the corpora listed above; other languages, accents, children's voices and "
    "telephone-band audio are not validated.",
    "Every clip gets one of seven labels (or `uncertain` below `deploy.min_confidence`): there is no 'other' "
    "and no intensity; a label is what the voice resembles in acted data, not what a person feels.",
    "The speakers are few and not balanced (TESS: two women; SAVEE: four men): figures may differ by gender, "
    "age and accent; the figures per gender are above where genders are known.",
    "**Emotion recognition is not to be used to make decisions about people.** The EU AI Act (Regulation (EU) "
    "2024/1689), Art. 5(1)(f), forbids AI systems that infer the emotions of people in the workplace and in "
    "education institutions (except for medical or safety reasons); elsewhere emotion recognition is a high-risk "
    "use (Annex III, point 1(c)) and the people exposed to it must be told (Art. 50(3)).",
)


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "-" if not np.isfinite(value) else f"{value:.4f}"
    return str(value).replace("|", "/")


def markdown_table(df: pd.DataFrame | None) -> str:
    """A DataFrame as a Markdown table, its index as the first column(s); floats to 4 places."""
    if df is None or not len(df):
        return "_none_\n"
    flat = df.reset_index() if any(n is not None for n in df.index.names) else df
    header = "| " + " | ".join(map(str, flat.columns)) + " |"
    rule = "|" + "|".join("---" for _ in flat.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in flat.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


_table = markdown_table


def model_card(
    *,
    model: str,
    kind: str,
    reason: str,
    utterances: pd.DataFrame,
    sources: dict[str, dict],
    comparison: pd.DataFrame,
    split: dict,
    protocol: str | None = None,
    per_gender: pd.DataFrame | None = None,
    per_corpus: pd.DataFrame | None = None,
    version: str | None = None,
    run: str | None = None,
    baseline: str = "functionals_svm",
) -> str:
    """The card as Markdown."""
    synthetic = corpus_order(c for c, f in sources.items() if f.get("synthetic") and c in set(utterances["corpus"]))
    title = f"Model card: speech emotion recognition, {model}" + (f" (version {version})" if version else "")
    lines = [f"# {title}", ""]
    if synthetic:
        which = f"The corpora {', '.join(synthetic)} are" if len(synthetic) > 1 else f"The corpus {synthetic[0]} is"
        lines += [f"> **Synthetic data.** {which} the synthetic demo corpus "
                  "(text-to-speech in the real corpora's file layouts). The figures below say that the code paths "
                  "work; they say nothing about how well the model recognises emotions in human speech. Do not use "
                  "this model on real audio.", ""]
    lines += ["## Model", "",
              f"- Predictor: `{model}` ({kind}); chosen on validation: {reason}." if reason else
              f"- Predictor: `{model}` ({kind}).",
              f"- Classes: {', '.join(EMOTIONS)}.",
              *( [f"- Training run: `{run}`."] if run else []), ""]
    lines += ["## Data", "", _table(data_table(utterances, sources))]
    non_commercial = [c for c, f in sources.items() if "non-commercial" in f.get("license", "")
                      and c in set(utterances["corpus"])]
    if non_commercial:
        lines += [f"The licences of {', '.join(non_commercial)} allow non-commercial use only; a model trained on "
                  "them is bound by that.", ""]
    lines += ["## Protocol", "", protocol_text(split, protocol), ""]
    lines += ["## Figures", ""]
    shown = comparison[comparison["model"].isin([model, baseline])] if len(comparison) else comparison
    columns = [c for c in ("model", "split", "n", "accuracy", "f1_macro") if c in shown.columns]
    lines += ["The deployed model and the classical baseline (functionals + SVM), per split:", "",
              _table(shown[columns].set_index(["model", "split"]) if len(shown) else None)]
    if per_gender is not None and len(per_gender):
        lines += ["Test split, per speaker gender:", "", _table(per_gender)]
    else:
        lines += ["Per gender: not available (no gender known for the test speakers, or no test split).", ""]
    if per_corpus is not None and len(per_corpus):
        lines += ["Test split, per corpus:", "", _table(per_corpus)]
    lines += ["## Intended use", "", INTENDED_USE, "", "## Limits", "", *[f"- {item}" for item in LIMITS], ""]
    return "\n".join(lines)


def short_description(card: str, where: str, limit: int = MLFLOW_DESCRIPTION_LIMIT) -> str:
    """The card cut to ``limit`` characters at a line, with a pointer to the full text (``where``)."""
    if len(card) <= limit:
        return card
    note = f"\n\n[cut to fit; the full model card: {where}]"
    cut = card[: limit - len(note)]
    return cut[: cut.rfind("\n")] + note if "\n" in cut else cut + note
