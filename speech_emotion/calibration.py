"""Probability calibration: temperature scaling fitted on the validation split (issue 11).

A network trained with cross-entropy and early stopping is often over-confident:
of the clips it labels with probability 0.8, fewer than 8 in 10 are right.
Temperature scaling (Guo et al., 2017) divides the log-probabilities by one
scalar ``T`` and renormalises, ``softmax(log(p) / T)``; ``T`` is chosen to
minimise the negative log-likelihood of the validation labels. ``T > 1``
softens over-confident probabilities, ``T < 1`` sharpens under-confident ones.
Dividing every class's log-probability by the same positive number keeps their
order, so the predicted class (the argmax) never changes: accuracy and F1 stay
as they were, only the probabilities move.

The expected calibration error (:func:`expected_calibration_error`) measures
the gap: clips are grouped into equal-width bins of their top probability and
ECE is the mean, weighted by the clips in each bin, of ``|accuracy - mean
confidence|``. :func:`reliability_figure` draws those bins before and after.
"""

from __future__ import annotations

import numpy as np

#: probabilities are clipped to this before their log is taken (a softmax output of exactly 0)
EPS = 1e-7
#: the search range of ``log T``: T from about 0.05 to 20
LOG_T_BOUNDS = (-3.0, 3.0)
N_BINS = 15


def _log_probs(probs: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    return np.log(p)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)`` row by row, in the input's float dtype; ``T == 1`` returns ``probs`` itself.

    The predicted class (argmax) is unchanged for any ``T > 0``."""
    if temperature == 1.0:
        return probs
    if not temperature > 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be a positive finite number; got {temperature!r}")
    probs = np.asarray(probs)
    if probs.size == 0:
        return probs
    dtype = probs.dtype if np.issubdtype(probs.dtype, np.floating) else np.float64
    return _softmax(_log_probs(probs) / float(temperature)).astype(dtype)


def _nll(log_p: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = log_p / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_softmax[np.arange(len(labels)), labels].mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` under
    ``softmax(log(probs) / T)``, searched over ``log T`` in :data:`LOG_T_BOUNDS`.

    1.0 (no change) when there are no labels or only one class is present: with a
    single class the likelihood only grows as ``T`` shrinks, which says nothing
    about calibration."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels).astype(np.int64).ravel()
    probs = np.asarray(probs)
    if labels.size == 0 or len(np.unique(labels)) < 2:
        return 1.0
    if probs.ndim != 2 or probs.shape[0] != labels.size:
        raise ValueError(f"probabilities of shape {probs.shape} for {labels.size} labels")
    log_p = _log_probs(probs)
    result = minimize_scalar(lambda log_t: _nll(log_p, labels, float(np.exp(log_t))),
                             bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
    temperature = float(np.exp(result.x))
    # never worse than leaving the probabilities alone
    return temperature if _nll(log_p, labels, temperature) <= _nll(log_p, labels, 1.0) else 1.0


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS):
    """Per equal-width confidence bin ``(k/n, (k+1)/n]``: the number of clips, their mean top
    probability and their accuracy (NaN for an empty bin). Returns ``(edges, counts, confidence, accuracy)``."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).ravel()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.zeros(n_bins, np.int64)
    confidence = np.full(n_bins, np.nan)
    accuracy = np.full(n_bins, np.nan)
    if labels.size == 0:
        return edges, counts, confidence, accuracy
    top = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    # bin k holds (edges[k], edges[k+1]]; a confidence of exactly 0 goes to the first bin
    which = np.clip(np.searchsorted(edges, top, side="left") - 1, 0, n_bins - 1)
    for k in range(n_bins):
        mask = which == k
        counts[k] = int(mask.sum())
        if counts[k]:
            confidence[k] = float(top[mask].mean())
            accuracy[k] = float(correct[mask].mean())
    return edges, counts, confidence, accuracy


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE over ``n_bins`` equal-width bins of the top probability: ``sum_b n_b / N * |acc_b - conf_b|``.
    NaN for an empty set."""
    _, counts, confidence, accuracy = reliability_bins(probs, labels, n_bins)
    total = counts.sum()
    if total == 0:
        return float("nan")
    filled = counts > 0
    return float(np.sum(counts[filled] / total * np.abs(accuracy[filled] - confidence[filled])))


def reliability_figure(probs_before: np.ndarray, probs_after: np.ndarray, labels: np.ndarray, title: str,
                       n_bins: int = N_BINS):
    """Reliability diagram: accuracy against mean confidence per bin, before and after calibration,
    with the diagonal of perfect calibration and the ECE of each in the legend; below, the number
    of clips per bin."""
    from speech_emotion.reports import _pyplot

    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    width = edges[1] - edges[0]
    for probs, label, colour, shift in ((probs_before, "before", "tab:red", -0.25),
                                        (probs_after, "after", "tab:blue", 0.25)):
        _, counts, confidence, accuracy = reliability_bins(probs, labels, n_bins)
        filled = counts > 0
        ece = expected_calibration_error(probs, labels, n_bins)
        ax.plot(confidence[filled], accuracy[filled], marker="o", color=colour, label=f"{label} (ECE {ece:.3f})")
        hist.bar(edges[:-1] + width * (0.5 + shift / 2), counts, width=width / 2, color=colour, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left")
    hist.set_xlabel("confidence (top probability)")
    hist.set_ylabel("clips")
    fig.tight_layout()
    return fig
