"""Average voting and the genetic weight search (seed 6.1): operators, fitness, search, determinism."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import f1_score

from speech_emotion.ensemble import (
    GAConfig,
    GAResult,
    _PopulationScorer,
    _deap_classes,
    average_crossover,
    average_probabilities,
    eligible_members,
    fitness_figure,
    ga_search_weights,
    make_individual,
    make_toolbox,
    member_uar,
    mutate_single_gene,
    n_crossover_genes,
    next_generation,
    normalise,
    weighted_f1,
)
from speech_emotion.evaluation import f1_macro

#: every member joins: these tests are about the search itself (the chance guard has its own tests)
FAST = GAConfig(population_size=20, generations=12, restarts=2, seed=3, min_uar_over_chance=None)


def _individual(genes):
    _, Individual = _deap_classes()
    return Individual(genes)


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four models: accurate, confidently wrong (anti-correlated), two random."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    rows = np.arange(n)
    accurate = np.full((n, 7), 0.4 / 6)
    hit = np.where(rng.random(n) < 0.8, y, rng.integers(0, 7, n))
    accurate[rows, hit] = 0.6
    anti = np.full((n, 7), 0.1 / 6)
    anti[rows, (y + 1) % 7] = 0.9
    noise = [rng.dirichlet(np.ones(7), n) for _ in range(2)]
    return np.stack([accurate, anti, *noise]), y


# --------------------------------------------------------------------------- average voting


def test_average_probabilities_unweighted_and_weighted():
    rng = np.random.default_rng(0)
    probs = [rng.dirichlet(np.ones(7), 11).astype(np.float32) for _ in range(3)]
    np.testing.assert_allclose(average_probabilities(probs), np.mean(probs, axis=0), rtol=1e-6)
    assert average_probabilities(probs).dtype == np.float32
    w = [1.0, 2.0, 5.0]
    manual = (1 * probs[0] + 2 * probs[1] + 5 * probs[2]) / 8
    np.testing.assert_allclose(average_probabilities(np.stack(probs), w), manual, rtol=1e-6)
    np.testing.assert_allclose(average_probabilities(probs, w).sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(average_probabilities(probs, [0, 0, 3]), probs[2], rtol=1e-6)


@pytest.mark.parametrize(
    ("weights", "message"),
    [([1, 1], "got 2 weights for 3 models"), ([1, -1, 1], "non-negative"), ([0, 0, 0], "not all be zero"),
     ([1, np.nan, 1], "finite"), ([[1, 1, 1]], "1-D")],
)
def test_average_probabilities_rejects_bad_weights(weights, message):
    probs = np.full((3, 4, 7), 1 / 7)
    with pytest.raises(ValueError, match=message):
        average_probabilities(probs, weights)


def test_average_probabilities_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same"):
        average_probabilities([np.ones((4, 7)), np.ones((5, 7))])
    with pytest.raises(ValueError, match="no model"):
        average_probabilities([])
    with pytest.raises(ValueError, match=r"\(M models"):
        average_probabilities(np.ones((4, 7)))


# --------------------------------------------------------------------------- fitness


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_f1_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 80))
    y_true = rng.integers(0, 7 if seed % 2 else 4, n)  # some classes absent from y_true
    y_pred = rng.integers(0, 7, n)
    expected = f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0)
    assert f1_macro(y_true, y_pred) == pytest.approx(expected, abs=1e-12)
    if set(y_pred) <= set(y_true):  # then sklearn's default label set is the same
        assert f1_macro(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-12)
    assert f1_macro(y_true, y_true) == 1.0
    assert np.isnan(f1_macro(np.array([], int), np.array([], int)))


def test_weighted_f1_and_population_scorer_agree():
    P, y = _synthetic(60, 0)
    W = np.random.default_rng(1).random((9, 4))
    scores = _PopulationScorer(P, y)(W)
    for w, score in zip(W, scores):
        assert weighted_f1(w, P, y) == pytest.approx(score, abs=1e-12)
        pred = np.tensordot(w / w.sum(), P, axes=1).argmax(axis=1)
        assert score == pytest.approx(f1_score(y, pred, labels=np.unique(y), average="macro", zero_division=0))
    assert weighted_f1([1, 0, 0, 0], P, y) == pytest.approx(f1_macro(y, P[0].argmax(axis=1)))


# --------------------------------------------------------------------------- operators


def test_individuals_sum_to_one_after_creation_crossover_and_mutation():
    rng = random.Random(0)
    for m in (1, 2, 5, 7):
        population = [make_individual(m, rng) for _ in range(20)]
        for ind in population:
            assert len(ind) == m and sum(ind) == pytest.approx(1) and min(ind) >= 0
        for a, b in zip(population[::2], population[1::2]):
            average_crossover(a, b, rng, gene_fraction=0.5)
            assert sum(a) == pytest.approx(1) and sum(b) == pytest.approx(1)
        for ind in population:
            mutate_single_gene(ind, rng)
            assert sum(ind) == pytest.approx(1) and min(ind) >= 0
    # raw, unnormalised parents too
    a, b = _individual([2.0, 0.0, 1.0]), _individual([0.0, 0.0, 5.0])
    average_crossover(a, b, rng, gene_fraction=0.34)
    assert sum(a) == pytest.approx(1) and sum(b) == pytest.approx(1)
    assert normalise(_individual([0.0, 0.0])) == [0.5, 0.5]


def test_mutation_replaces_exactly_one_gene():
    rng = random.Random(7)
    for _ in range(50):
        before = [0.1, 0.2, 0.3, 0.15, 0.25]
        ind = _individual(before)
        (out,) = mutate_single_gene(ind, rng, normalised=False)
        assert out is ind
        changed = [i for i, (x, y) in enumerate(zip(before, ind)) if x != y]
        assert len(changed) == 1 and 0 <= ind[changed[0]] < 1
    # normalised: the other genes keep their ratios (only one gene was replaced before scaling)
    genes = np.array([0.1, 0.2, 0.3, 0.4])
    j = random.Random(11).randrange(4)  # the position the mutation will draw
    ind = _individual(genes.tolist())
    mutate_single_gene(ind, random.Random(11))
    assert sum(ind) == pytest.approx(1)
    others = np.array([i for i in range(4) if i != j])
    ratios = np.array(ind)[others] / genes[others]
    np.testing.assert_allclose(ratios, ratios[0])


def test_average_crossover_on_a_known_pair():
    a0, b0 = [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]
    # every gene averaged: both children are the parents' mean
    a, b = _individual(a0), _individual(b0)
    average_crossover(a, b, random.Random(0), gene_fraction=1.0)
    np.testing.assert_allclose(a, [0.25] * 4)
    np.testing.assert_allclose(b, [0.25] * 4)
    # half of the genes, drawn with rng.sample: predictable with the same seed
    assert n_crossover_genes(4, 0.5) == 2 and n_crossover_genes(4, 0.01) == 1 and n_crossover_genes(7, 0.5) == 4
    chosen = set(random.Random(5).sample(range(4), 2))
    a, b = _individual(a0), _individual(b0)
    average_crossover(a, b, random.Random(5), gene_fraction=0.5)
    raw_a = [(a0[i] + b0[i]) / 2 if i in chosen else a0[i] for i in range(4)]
    raw_b = [(a0[i] + b0[i]) / 2 if i in chosen else b0[i] for i in range(4)]
    np.testing.assert_allclose(a, np.array(raw_a) / sum(raw_a))
    np.testing.assert_allclose(b, np.array(raw_b) / sum(raw_b))
    # concretely: random.Random(5).sample(range(4), 2) picks genes 2 and 3
    assert chosen == {2, 3}
    np.testing.assert_allclose(a, [0.125, 0.25, 0.3125, 0.3125])  # [0.1, 0.2, 0.25, 0.25] / 0.8
    np.testing.assert_allclose(b, np.array([0.4, 0.3, 0.25, 0.25]) / 1.2)


def test_elitism_keeps_the_best_individual():
    P, y = _synthetic(80, 2)
    config = GAConfig(population_size=10, generations=1, elite_fraction=0.2, mutation_prob=1.0, crossover_prob=1.0)
    rng = random.Random(0)
    toolbox = make_toolbox(4, config, rng)
    population = toolbox.population(n=10)
    scorer = _PopulationScorer(P, y)
    for ind, score in zip(population, scorer(np.array(population))):
        ind.fitness.values = (float(score),)
    best = max(population, key=lambda ind: ind.fitness.values[0])
    new = next_generation(population, toolbox, config, rng)
    assert len(new) == 10 and config.n_elite == 2
    assert list(new[0]) == list(best) and new[0].fitness.values == best.fitness.values
    assert sum(not ind.fitness.valid for ind in new) >= 8 - 1  # bred ones need scoring
    # over a whole search, best fitness per generation never decreases
    result = ga_search_weights(P, y, FAST)
    for _, part in result.history.groupby("restart"):
        best_curve = part.sort_values("generation")["best"].to_numpy()
        assert np.all(np.diff(best_curve) >= 0)
        assert np.all(part["mean"] <= part["best"] + 1e-12)


# --------------------------------------------------------------------------- search


def test_ga_beats_uniform_averaging_and_favours_the_accurate_model():
    P, y = _synthetic(300, 0)
    uniform = weighted_f1(np.ones(4), P, y)
    result = ga_search_weights(P, y, FAST)
    assert isinstance(result, GAResult)
    assert result.weights.shape == (4,) and result.weights.sum() == pytest.approx(1) and result.weights.min() >= 0
    assert result.fitness > uniform
    assert int(np.argmax(result.weights)) == 0
    assert result.fitness == pytest.approx(weighted_f1(result.weights, P, y))
    assert result.fitness == max(f for _, f in result.restart_best) and len(result.restart_best) == FAST.restarts
    assert list(result.history.columns) == ["restart", "generation", "best", "mean"]
    assert len(result.history) == FAST.restarts * (FAST.generations + 1)
    # the weights carry over to held-out data
    P_test, y_test = _synthetic(300, 1)
    assert weighted_f1(result.weights, P_test, y_test) > weighted_f1(np.ones(4), P_test, y_test)
    assert (average_probabilities(P_test, result.weights).argmax(1) == np.tensordot(result.weights, P_test, 1).argmax(1)).all()


def test_ga_is_deterministic_and_leaves_global_random_alone():
    P, y = _synthetic(120, 3)
    random.seed(1234)
    state = random.getstate()
    first = ga_search_weights(P, y, FAST)
    assert random.getstate() == state
    second = ga_search_weights(list(P), y, FAST)
    np.testing.assert_array_equal(first.weights, second.weights)
    pd.testing.assert_frame_equal(first.history, second.history)
    other = ga_search_weights(P, y, FAST.model_copy(update={"seed": 99}))
    assert not first.history[["best", "mean"]].equals(other.history[["best", "mean"]])


def test_ga_rejects_bad_inputs_and_config():
    P, y = _synthetic(20, 0)
    with pytest.raises(ValueError, match="labels for probabilities"):
        ga_search_weights(P, y[:-1], FAST)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 7\)"):
        ga_search_weights(P, y + 7, FAST)
    with pytest.raises(ValidationError):
        GAConfig(population_size=1)
    with pytest.raises(ValidationError):
        GAConfig(crossover_prob=1.5)
    with pytest.raises(ValidationError):
        GAConfig(popsize=10)
    assert GAConfig().n_elite == 5 and GAConfig(elite_fraction=0).n_elite == 1


def test_single_model_and_fitness_figure():
    P, y = _synthetic(30, 0)
    result = ga_search_weights(P[:1], y, GAConfig(population_size=4, generations=2, restarts=2))
    np.testing.assert_allclose(result.weights, [1.0])
    fig = fitness_figure(ga_search_weights(P, y, GAConfig(population_size=6, generations=3, restarts=2)).history)
    assert len(fig.axes[0].lines) == 4  # best and mean per restart
    from speech_emotion.reports import figure_png

    assert figure_png(fig).startswith(b"\x89PNG")


def test_cross_fitted_ga_probabilities_are_out_of_fold():
    from speech_emotion.ensemble import GAConfig, cross_fitted_probabilities

    rng = np.random.default_rng(0)
    y = np.arange(70) % 7
    good = np.eye(7)[y] * 0.6 + 0.4 / 7  # right on every clip
    noise = rng.dirichlet(np.ones(7), size=70)
    out = cross_fitted_probabilities([noise, good], y, GAConfig(population_size=10, generations=5, restarts=1))
    assert out.shape == (70, 7)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    assert (out.argmax(axis=1) == y).mean() > 0.9  # every fold's weights, found on the other folds, favour `good`
    # each row is a convex combination of the two members' rows
    w = (out - noise)[:, 0] / (good - noise)[:, 0]
    np.testing.assert_allclose(out, noise + w[:, None] * (good - noise), atol=1e-6)


# --------------------------------------------------------------------------- members at chance


def test_member_uar_is_balanced_accuracy():
    from sklearn.metrics import balanced_accuracy_score

    P, y = _synthetic(200, 4)
    expected = [balanced_accuracy_score(y, p.argmax(axis=1)) for p in P]
    np.testing.assert_allclose(member_uar(P, y), expected)


def test_members_no_better_than_chance_get_no_weight():
    P, y = _synthetic(300, 0)
    collapsed = np.full_like(P[0], 0.1 / 6)
    collapsed[:, np.bincount(y).argmax()] = 0.9  # the majority class for every clip: UAR is exactly chance
    P = np.concatenate([P[[0, 2]], collapsed[None]])  # accurate, random, collapsed

    guarded = ga_search_weights(P, y, FAST.model_copy(update={"min_uar_over_chance": 0.05}))
    assert guarded.eligible.tolist() == [True, False, False]
    np.testing.assert_array_equal(guarded.weights, [1.0, 0.0, 0.0])
    assert all(w[1:].tolist() == [0.0, 0.0] for w, _ in guarded.restart_best)

    unguarded = ga_search_weights(P, y, FAST)  # the seed: every member joins, and the search leaves them weight
    assert unguarded.eligible.all() and (unguarded.weights[1:] > 0).all()


def test_when_no_member_beats_chance_all_join_with_a_warning(caplog):
    rng = np.random.default_rng(0)
    y = np.arange(140) % 7
    P = rng.dirichlet(np.ones(7), size=(3, 140))
    assert eligible_members(P, y, 0.5).all()
    assert "no ensemble member's UAR beats chance" in caplog.text
    assert eligible_members(P, y, None).all()


def test_the_ensemble_step_reports_each_members_uar_and_leaves_the_collapsed_one_out(monkeypatch):
    import steps.ensemble
    from speech_emotion.config import EnsembleConfig
    from steps.ensemble import ensemble_models
    from tests.synthetic import tiny_features

    logged = []  # the step's ZenML metadata (log_metadata needs a running step)
    monkeypatch.setattr(steps.ensemble, "log_metadata", lambda metadata: logged.append(metadata))

    val, test = tiny_features(140, seed=0), tiny_features(70, seed=1)
    good_val, good_test = (np.eye(7)[f.labels] * 0.6 + 0.4 / 7 for f in (val, test))
    collapsed_val, collapsed_test = (np.tile(np.eye(7)[0] * 0.6 + 0.4 / 7, (len(f), 1)) for f in (val, test))
    config = EnsembleConfig(average=False, ga_enabled=True,
                            ga=GAConfig(population_size=8, generations=2, restarts=1, min_uar_over_chance=0.05))
    metrics, weights, _, html, _ = ensemble_models.entrypoint(
        names=["good", "collapsed"], val_probabilities=[good_val, collapsed_val],
        test_probabilities=[good_test, collapsed_test], member_metrics=[], val=val, test=test, config=config)
    assert weights["in_search"].tolist() == [True, False]
    assert weights["weight"].tolist() == [1.0, 0.0]
    np.testing.assert_allclose(weights["val_uar"], [1.0, 1 / 7])
    assert "join the search (in_search)" in html
    assert metrics.set_index("split").loc["test", "accuracy"] == 1.0
    assert logged == [{"ga_weights": {"good": 1.0, "collapsed": 0.0}, "ga_val_f1": 1.0}]
