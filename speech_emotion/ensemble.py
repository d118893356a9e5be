"""Ensembles of the final models' predictions (seed section 6.1).

Two ways to aggregate the (N, 7) class probabilities of M trained models:

- **Average voting** (6.1.1, Table 14): the unweighted mean of the models'
  probabilities, or a weighted mean with given weights
  (:func:`average_probabilities`).
- **Weighted average voting with a genetic algorithm** (6.1.2, Tables 15-16):
  :func:`ga_search_weights` searches one non-negative weight per model, summing
  to 1, that maximises the F1-macro of the weighted average, with DEAP.

Genetic algorithm, as in the seed:

- chromosome: one real gene (weight) per model; every individual is
  normalised to sum 1 when created, after crossover and after mutation;
- fitness: F1-macro (:func:`speech_emotion.evaluation.f1_macro_from_confusion`,
  over the classes present in the labels, as every figure of the project) of the
  argmax of the weighted average. The whole population is scored at once: one
  matrix product ``(pop, M) @ (M, N*C)`` and one ``np.bincount`` of confusion
  counts, no Python loop over samples;
- selection: k-tournament (``deap.tools.selTournament``);
- crossover, "average crossover" (:func:`average_crossover`): a random subset of
  ``max(1, round(crossover_gene_fraction * M))`` gene positions is drawn; at those
  positions both children take the mean of the two parents' genes, elsewhere
  each child keeps its own parent's gene; both children are then normalised;
- mutation (:func:`mutate_single_gene`): one gene, chosen uniformly, is replaced
  by a draw from U[0, 1), then the chromosome is normalised;
- elitism: the best ``max(1, round(elite_fraction * population_size))``
  individuals pass unchanged into the next generation; the rest of it is bred
  from tournament winners of the whole current population. Hence the best
  fitness per generation never decreases;
- several restarts (seeds ``seed``, ``seed + 1``, ...), each from a fresh random
  population; the best solution across restarts wins (ties: the earliest).

Members no better than chance get no weight (not in the seed): only the members whose UAR
(unweighted average recall, sklearn's balanced accuracy) on the searched split beats chance,
1 / the classes present, by more than ``min_uar_over_chance`` join the search
(:func:`eligible_members`); the others keep weight 0. A model that collapsed to the majority
class has a UAR of exactly chance, yet the F1-macro fitness alone can still give it weight
when it helps on a few clips of the split the weights are searched on. When no member
qualifies, all join (their weights cannot do better than chance either way) and a warning
says so.

Determinism: the initial population, crossover and mutation draw from a
``random.Random(restart_seed)`` owned by the search. ``deap.tools.selTournament``
draws from the global :mod:`random` module, so each restart seeds it with
``random.seed(restart_seed)`` and the previous global state is restored
afterwards (also on error): the same seed gives the same weights and history,
and the caller's global random stream is left as it was.

Which split: the caller searches the weights on the **validation** split and
reports the ensemble on the held-out **test** split. The seed reported the
weights on the split it had tuned them on, which is optimistic; the ``fitness``
of :class:`GAResult` is that optimistic, in-sample figure.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from speech_emotion.config import GAConfig
from speech_emotion.evaluation import check_labels, f1_macro, f1_macro_from_confusion

logger = logging.getLogger(__name__)

#: names of the DEAP classes made with ``creator.create`` (a global registry)
FITNESS_CLASS = "SerFitnessMax"
INDIVIDUAL_CLASS = "SerWeights"

#: most float64 values a batched population evaluation holds at once
_MAX_BATCH_VALUES = 8_000_000


# --------------------------------------------------------------------------- inputs


def stack_probabilities(probs: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """The models' probabilities as one (M, N, C) array; clear errors on mismatched shapes."""
    if isinstance(probs, np.ndarray):
        arr = probs
    else:
        items = [np.asarray(p) for p in probs]
        if not items:
            raise ValueError("no model probabilities given")
        shapes = {p.shape for p in items}
        if len(shapes) != 1:
            raise ValueError(f"every model's probabilities must have the same (N, C) shape; got {sorted(shapes)}")
        arr = np.stack(items)
    if arr.ndim != 3:
        raise ValueError(f"expected probabilities of shape (M models, N samples, C classes); got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("no model probabilities given")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _check_weights(weights: Sequence[float] | np.ndarray, n_models: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"weights must be a 1-D sequence, one per model; got shape {w.shape}")
    if len(w) != n_models:
        raise ValueError(f"got {len(w)} weights for {n_models} models")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be finite; got {w.tolist()}")
    if np.any(w < 0):
        raise ValueError(f"weights must be non-negative; got {w.tolist()}")
    total = w.sum()
    if total <= 0:
        raise ValueError("weights must not all be zero")
    return w / total


def average_probabilities(
    probs: Sequence[np.ndarray] | np.ndarray, weights: Sequence[float] | None = None
) -> np.ndarray:
    """Average voting: the (N, C) mean of M models' probabilities.

    Unweighted (the seed's Table 14) when ``weights`` is None, otherwise the
    weighted mean with ``weights`` (one per model, non-negative, not all zero)
    normalised to sum 1. Float32 inputs give a float32 result.
    """
    P = stack_probabilities(probs)
    out_dtype = np.result_type(P.dtype, np.float32)
    if weights is None:
        return P.mean(axis=0).astype(out_dtype, copy=False)
    w = _check_weights(weights, P.shape[0])
    return np.tensordot(w, P, axes=1).astype(out_dtype, copy=False)


# --------------------------------------------------------------------------- fitness


def weighted_f1(weights: Sequence[float] | np.ndarray, P: Sequence[np.ndarray] | np.ndarray, y: np.ndarray) -> float:
    """F1-macro of the argmax of the weighted average of (M, N, C) probabilities ``P``.

    ``weights`` need not sum to 1 (argmax is scale-invariant) but must be
    non-negative and not all zero.
    """
    P = stack_probabilities(P)
    w = _check_weights(weights, P.shape[0])
    pred = np.tensordot(w, P, axes=1).argmax(axis=1)
    return f1_macro(y, pred, n_classes=P.shape[2])


class _PopulationScorer:
    """F1-macro of many weight vectors at once on fixed (M, N, C) probabilities."""

    def __init__(self, P: np.ndarray, y: np.ndarray):
        self.M, self.N, self.C = P.shape
        self.flat = np.ascontiguousarray(P, dtype=np.float64).reshape(self.M, self.N * self.C)
        self.y = y
        self.batch = max(1, _MAX_BATCH_VALUES // max(1, self.N * self.C))

    def __call__(self, W: np.ndarray) -> np.ndarray:
        W = np.asarray(W, dtype=np.float64).reshape(-1, self.M)
        out = np.empty(len(W))
        CC = self.C * self.C
        for start in range(0, len(W), self.batch):
            w = W[start : start + self.batch]
            k = len(w)
            # one matrix product for the whole batch: (k, M) @ (M, N*C)
            pred = (w @ self.flat).reshape(k, self.N, self.C).argmax(axis=2)
            codes = (np.arange(k)[:, None] * CC + self.y[None, :] * self.C + pred).ravel()
            counts = np.bincount(codes, minlength=k * CC).reshape(k, self.C, self.C)
            out[start : start + k] = f1_macro_from_confusion(counts)
        return out


# --------------------------------------------------------------------------- configuration and result


def member_uar(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each member's UAR (balanced accuracy over the classes present in ``y``) on (M, N, C) ``P``."""
    from sklearn.metrics import recall_score

    present = np.unique(y)
    return np.array([recall_score(y, p.argmax(axis=1), labels=present, average="macro", zero_division=0)
                     for p in P])


def eligible_members(P: np.ndarray, y: np.ndarray, min_uar_over_chance: float | None) -> np.ndarray:
    """Which of the M members of (M, N, C) ``P`` may get weight: UAR above chance + the margin
    (every member when the margin is None, or when none qualifies)."""
    if min_uar_over_chance is None:
        return np.ones(len(P), bool)
    chance = 1.0 / len(np.unique(y))
    ok = member_uar(P, y) > chance + min_uar_over_chance
    if not ok.any():
        logger.warning("no ensemble member's UAR beats chance (%.3f) by %.3f on the searched split: all of them "
                       "join the GA", chance, min_uar_over_chance)
        return np.ones(len(P), bool)
    return ok


@dataclass
class GAResult:
    weights: np.ndarray  # (M,) non-negative, sums to 1
    fitness: float  # best F1-macro on the data it searched (the validation split)
    #: one row per restart and generation (0 = initial population): restart, generation, best, mean
    history: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["restart", "generation", "best", "mean"]))
    #: (weights, fitness) of the best individual of each restart
    restart_best: list[tuple[np.ndarray, float]] = field(default_factory=list)
    #: (M,) whether each member joined the search (the others have weight 0; :func:`eligible_members`)
    eligible: np.ndarray | None = None


# --------------------------------------------------------------------------- DEAP operators


def _deap_classes():
    """The DEAP fitness and individual classes, created once in ``deap.creator``'s global registry."""
    from deap import base, creator

    if not hasattr(creator, FITNESS_CLASS):
        creator.create(FITNESS_CLASS, base.Fitness, weights=(1.0,))
    if not hasattr(creator, INDIVIDUAL_CLASS):
        creator.create(INDIVIDUAL_CLASS, list, fitness=getattr(creator, FITNESS_CLASS))
    return getattr(creator, FITNESS_CLASS), getattr(creator, INDIVIDUAL_CLASS)


def normalise(individual: list[float]) -> list[float]:
    """Scale the genes in place to sum 1 (uniform when they sum to 0); returns the individual."""
    total = float(sum(individual))
    n = len(individual)
    if total > 0 and np.isfinite(total):
        individual[:] = [g / total for g in individual]
    else:
        individual[:] = [1.0 / n] * n
    return individual


def make_individual(n_models: int, rng: random.Random):
    """A new chromosome: one U[0, 1) gene per model, normalised to sum 1."""
    _, Individual = _deap_classes()
    return normalise(Individual(rng.random() for _ in range(n_models)))


def n_crossover_genes(n_models: int, fraction: float) -> int:
    """How many gene positions an average crossover touches: round(fraction * M), at least 1."""
    return min(n_models, max(1, int(round(fraction * n_models))))


def average_crossover(ind1: list[float], ind2: list[float], rng: random.Random, gene_fraction: float):
    """Average crossover, in place: both children take the parents' mean on a random subset of genes.

    ``n_crossover_genes(M, gene_fraction)`` positions are drawn without
    replacement (``rng.sample``); at each of them both children get
    ``(ind1[i] + ind2[i]) / 2``; elsewhere each child keeps its parent's gene.
    Both children are then normalised to sum 1.
    """
    n = len(ind1)
    if len(ind2) != n:
        raise ValueError(f"parents differ in length: {n} vs {len(ind2)}")
    for i in rng.sample(range(n), n_crossover_genes(n, gene_fraction)):
        mean = (ind1[i] + ind2[i]) / 2.0
        ind1[i] = mean
        ind2[i] = mean
    normalise(ind1)
    normalise(ind2)
    return ind1, ind2


def mutate_single_gene(individual: list[float], rng: random.Random, normalised: bool = True):
    """Single-gene mutation, in place: one gene (uniform position) becomes U[0, 1), then normalise.

    With ``normalised=False`` the normalisation is skipped (to inspect the
    operator). Returns ``(individual,)`` as DEAP mutations do.
    """
    i = rng.randrange(len(individual))
    individual[i] = rng.random()
    if normalised:
        normalise(individual)
    return (individual,)


def clone_individual(individual):
    """A copy of an individual and its fitness (DEAP's default clone, deepcopy, is slower)."""
    twin = type(individual)(individual)
    if individual.fitness.valid:
        twin.fitness.values = individual.fitness.values
    return twin


def make_toolbox(n_models: int, config: GAConfig, rng: random.Random):
    """A DEAP toolbox with the seed's operators, drawing from ``rng`` (selection: global ``random``)."""
    from deap import base, tools

    _deap_classes()
    toolbox = base.Toolbox()
    toolbox.register("clone", clone_individual)
    toolbox.register("individual", make_individual, n_models, rng)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    toolbox.register("mate", average_crossover, rng=rng, gene_fraction=config.crossover_gene_fraction)
    toolbox.register("mutate", mutate_single_gene, rng=rng)
    toolbox.register("select", tools.selTournament, tournsize=config.tournament_size)
    return toolbox


# --------------------------------------------------------------------------- search


def _evaluate(population: list, scorer: _PopulationScorer) -> None:
    """Score, in one batch, the individuals whose fitness is not valid."""
    todo = [ind for ind in population if not ind.fitness.valid]
    if not todo:
        return
    scores = scorer(np.array(todo, dtype=np.float64))
    for ind, score in zip(todo, scores):
        ind.fitness.values = (float(score),)


def next_generation(population: list, toolbox, config: GAConfig, rng: random.Random) -> list:
    """Elites unchanged, then tournament winners varied by crossover and mutation (fitness not yet computed).

    ``population`` must be evaluated. Crossover applies to consecutive pairs of
    the selected offspring with probability ``crossover_prob``, then mutation to
    each offspring with probability ``mutation_prob`` (DEAP's ``varAnd`` scheme).
    """
    from deap import tools

    elites = [toolbox.clone(ind) for ind in tools.selBest(population, config.n_elite)]
    offspring = [toolbox.clone(ind) for ind in toolbox.select(population, len(population) - len(elites))]
    for a, b in zip(offspring[::2], offspring[1::2]):
        if rng.random() < config.crossover_prob:
            toolbox.mate(a, b)
            del a.fitness.values, b.fitness.values
    for ind in offspring:
        if rng.random() < config.mutation_prob:
            toolbox.mutate(ind)
            del ind.fitness.values
    return elites + offspring


def _run_restart(scorer: _PopulationScorer, config: GAConfig, restart: int, seed: int, tick=None):
    rng = random.Random(seed)
    saved_state = random.getstate()
    random.seed(seed)  # deap.tools.selTournament draws from the global random module
    try:
        toolbox = make_toolbox(scorer.M, config, rng)
        population = toolbox.population(n=config.population_size)
        rows = []
        for generation in range(config.generations + 1):
            if generation:
                population = next_generation(population, toolbox, config, rng)
            _evaluate(population, scorer)
            fits = np.array([ind.fitness.values[0] for ind in population])
            rows.append({"restart": restart, "generation": generation, "best": float(fits.max()), "mean": float(fits.mean())})
            if tick is not None:
                tick()
        best = max(population, key=lambda ind: ind.fitness.values[0])  # first of the ties
        return np.array(best, dtype=np.float64), float(best.fitness.values[0]), rows
    finally:
        random.setstate(saved_state)


def ga_search_weights(
    val_probs: Sequence[np.ndarray] | np.ndarray,
    val_labels: np.ndarray,
    config: GAConfig,
    progress: bool = False,
) -> GAResult:
    """Search ensemble weights maximising F1-macro on ``val_probs`` (M models' (N, C) probabilities).

    Returns the best weights across ``config.restarts`` restarts (seeds
    ``config.seed + r``), their in-sample F1-macro, the per-generation history
    and each restart's best. Report the weights on a held-out split.
    """
    P = stack_probabilities(val_probs)
    M, N, C = P.shape
    y = check_labels(val_labels, C)
    if len(y) != N:
        raise ValueError(f"{len(y)} labels for probabilities of {N} samples")
    if N == 0:
        raise ValueError("cannot search ensemble weights on an empty split")
    eligible = eligible_members(P, y, config.min_uar_over_chance)
    if not eligible.all():
        logger.info("GA: %d of %d members beat chance by more than %s on UAR and join the search; members %s keep "
                    "weight 0", eligible.sum(), M, config.min_uar_over_chance, np.flatnonzero(~eligible).tolist())
    scorer = _PopulationScorer(P[eligible], y)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.restarts * (config.generations + 1), desc="GA weights")
    try:
        rows: list[dict] = []
        restart_best: list[tuple[np.ndarray, float]] = []
        for r in range(config.restarts):
            weights, fitness, history = _run_restart(scorer, config, r, config.seed + r, bar.update if bar else None)
            weights = _spread(weights, eligible)
            rows.extend(history)
            restart_best.append((weights, fitness))
            logger.info("GA restart %d (seed %d): F1-macro %.4f, weights %s", r, config.seed + r, fitness,
                        np.round(weights, 4).tolist())
    finally:
        if bar is not None:
            bar.close()
    best_r = int(np.argmax([f for _, f in restart_best]))  # first of the ties
    weights, fitness = restart_best[best_r]
    return GAResult(
        weights=weights.copy(),
        fitness=fitness,
        history=pd.DataFrame(rows, columns=["restart", "generation", "best", "mean"]),
        restart_best=restart_best,
        eligible=eligible,
    )


def _spread(weights: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """The eligible members' weights back in place among all M, 0 for the others."""
    out = np.zeros(len(eligible))
    out[eligible] = weights
    return out


def cross_fitted_probabilities(
    val_probs: Sequence[np.ndarray] | np.ndarray,
    val_labels: np.ndarray,
    config: GAConfig,
    folds: int = 5,
) -> np.ndarray:
    """Out-of-fold GA ensemble probabilities on the validation split.

    The split is cut into ``folds`` stratified folds (fewer when a class has
    fewer members); each fold's probabilities use weights searched on the
    other folds only. The result is as out-of-sample as every single model's
    validation figure (they too only saw validation through early stopping
    and tuning), so the GA ensemble competes with them fairly when the
    deployed model is chosen on validation.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    P = stack_probabilities(val_probs)
    y = check_labels(val_labels, P.shape[2])
    out = np.zeros(P.shape[1:], dtype=np.float64)
    if len(y) < 2:
        return average_probabilities(P, None)
    counts = np.bincount(y)
    k = min(folds, len(y))
    if counts[counts > 0].min() >= k:
        splits = StratifiedKFold(k, shuffle=True, random_state=config.seed).split(np.zeros(len(y)), y)
    else:
        splits = KFold(k, shuffle=True, random_state=config.seed).split(np.zeros(len(y)))
    for fit_idx, held_idx in splits:
        weights = ga_search_weights(P[:, fit_idx], y[fit_idx], config).weights
        out[held_idx] = average_probabilities(P[:, held_idx], weights)
    return out


# --------------------------------------------------------------------------- figures


def fitness_figure(history: pd.DataFrame, title: str = "Genetic algorithm: F1-macro per generation"):
    """Best (solid) and mean (dashed) fitness per generation, one colour per restart."""
    from speech_emotion.reports import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, (restart, part) in enumerate(history.groupby("restart", sort=True)):
        part = part.sort_values("generation")
        colour = colours[i % len(colours)]
        ax.plot(part["generation"], part["best"], color=colour, label=f"restart {restart} best")
        ax.plot(part["generation"], part["mean"], color=colour, linestyle="--", alpha=0.7, label=f"restart {restart} mean")
    ax.set_xlabel("generation")
    ax.set_ylabel("F1-macro")
    ax.set_title(title)
    if len(history):
        ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig
