"""make_dataset reads batches from (memory-mapped) NumPy arrays: every row once per epoch, the
labels with their rows, a seeded order, and no whole-array tensor; training and prediction run on memmaps."""

from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.config import ModelConfig, TrainingConfig
from speech_emotion.datasets import make_dataset
from speech_emotion.features import FeatureSet
from speech_emotion.training import train_model
from tests.synthetic import tiny_features

TINY = {"kernel_size": 3, "conv_blocks": 2, "filters_first": 4, "filters_next": 8, "lstm_units": 8, "learning_rate": 1e-2}


def _memmap(tmp_path, name: str, array: np.ndarray) -> np.memmap:
    path = tmp_path / f"{name}.npy"
    np.save(path, array)
    return np.load(path, mmap_mode="r")


def _epoch(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy() if not isinstance(x, tuple) else tuple(t.numpy() for t in x))
        ys.append(y.numpy())
    return xs, ys


def test_each_epoch_yields_every_row_once_with_its_label(tmp_path):
    x = _memmap(tmp_path, "x", np.arange(23 * 3, dtype=np.float32).reshape(23, 3))
    y = _memmap(tmp_path, "y", np.arange(23, dtype=np.int64) % 7)
    ds = make_dataset(x, y, batch_size=5, shuffle=True, seed=3)
    orders = []
    for _ in range(2):
        xs, ys = _epoch(ds)
        assert [len(b) for b in xs] == [5, 5, 5, 5, 3]
        rows = np.concatenate(xs)
        ids = (rows[:, 0] // 3).astype(int)
        assert sorted(ids) == list(range(23))  # all rows, once
        np.testing.assert_array_equal(rows, np.asarray(x)[ids])
        np.testing.assert_array_equal(np.concatenate(ys), np.asarray(y)[ids])  # labels travel with their rows
        orders.append(ids)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch
    again = np.concatenate(_epoch(make_dataset(x, y, 5, True, seed=3))[0])[:, 0] // 3
    np.testing.assert_array_equal(again, orders[0])  # same seed, same first epoch
    other = np.concatenate(_epoch(make_dataset(x, y, 5, True, seed=4))[0])[:, 0] // 3
    assert not np.array_equal(other, orders[0])


def test_unshuffled_multi_input_keeps_order_and_holds_no_tensor_copy(tmp_path):
    a = _memmap(tmp_path, "a", np.random.default_rng(0).standard_normal((11, 64, 100)).astype(np.float32))
    b = _memmap(tmp_path, "b", np.random.default_rng(1).standard_normal((11, 6)).astype(np.float32))
    y = np.arange(11) % 7
    ds = make_dataset([a, b], y, batch_size=4, shuffle=False, seed=0)
    xs, ys = _epoch(ds)
    np.testing.assert_array_equal(np.concatenate([t[0] for t in xs]), a)
    np.testing.assert_array_equal(np.concatenate([t[1] for t in xs]), b)
    np.testing.assert_array_equal(np.concatenate(ys), y)
    # the dataset's graph holds only the row indices: the arrays are not embedded in it (from_tensor_slices would)
    graph_bytes = len(ds._as_serialized_graph().numpy())
    assert graph_bytes < a.nbytes + b.nbytes
    assert isinstance(a, np.memmap) and isinstance(b, np.memmap)
    pred = make_dataset([a, b], None, batch_size=4, shuffle=False, seed=0)
    # inputs only come as 1-tuples, so Keras does not take the second input for labels
    batches = [t[0] for t in pred]
    np.testing.assert_array_equal(np.concatenate([inputs[0].numpy() for inputs in batches]), a)
    np.testing.assert_array_equal(np.concatenate([inputs[1].numpy() for inputs in batches]), b)


def test_train_and_predict_on_memory_maps(tmp_path):
    small = tiny_features(28)
    fields = {k: _memmap(tmp_path, k, getattr(small, k)) for k in ("mfcc", "chroma", "mel", "logmel")}
    mapped = FeatureSet(utterance_ids=small.utterance_ids, labels=small.labels, corpus=small.corpus,
                        scaled=True, **fields)
    trained = train_model(mapped, mapped, ModelConfig(hparams=TINY),
                          TrainingConfig(epochs=2, batch_size=8, early_stopping_patience=2), progress=False)
    assert len(trained.history["loss"]) == 2
    assert all(isinstance(getattr(mapped, k), np.memmap) for k in fields)  # nothing replaced the maps
    probs = trained.predict_proba(mapped, batch_size=5)
    assert probs.shape == (28, 7)
    np.testing.assert_allclose(probs, trained.model.predict(np.asarray(small.logmel), verbose=0), rtol=1e-4, atol=1e-5)


def test_prediction_of_an_empty_set_and_the_order_of_rows():
    feats = tiny_features(9)
    trained = train_model(feats, feats, ModelConfig(hparams=TINY), TrainingConfig(epochs=1, batch_size=4,
                          early_stopping_patience=1), progress=False)
    probs = trained.predict_proba(feats, batch_size=4)
    np.testing.assert_allclose(probs[::-1], trained.predict_proba(feats.subset(np.arange(9)[::-1]), 4),
                               rtol=1e-5, atol=1e-6)
    assert trained.predict_proba(feats.subset(np.arange(0)), 4).shape == (0, 7)



def test_balanced_class_weights_are_sklearns_and_absent_classes_weigh_one():
    from speech_emotion.training import class_weights

    labels = np.array([0] * 6 + [1] * 3 + [3] * 1)  # 10 clips, 3 classes present of 5
    weights = class_weights(labels, "balanced", 5)
    # n / (classes present x count): 10/(3*6), 10/(3*3), 10/(3*1); classes 2 and 4 are absent
    assert weights == pytest.approx({0: 10 / 18, 1: 10 / 9, 2: 1.0, 3: 10 / 3, 4: 1.0})
    assert class_weights(labels, "none", 5) is None
    with pytest.raises(ValueError, match="class_weights"):
        class_weights(labels, "inverse", 5)
    with pytest.raises(ValueError, match="class_weights"):
        TrainingConfig(class_weights="inverse")


def test_balanced_class_weights_reach_the_loss():
    """A model trained with balanced weights on a 10:1 split gives the rare class more probability
    than the same model, same seed, trained without them."""
    data = tiny_features(44)
    labels = np.where(np.arange(44) % 11 == 0, 1, 0)  # class 1 is rare
    data = FeatureSet(utterance_ids=data.utterance_ids, labels=labels, corpus=data.corpus, mfcc=data.mfcc,
                      chroma=data.chroma, mel=data.mel, logmel=data.logmel, scaled=True)
    rare = {}
    for mode in ("none", "balanced"):
        trained = train_model(data, data, ModelConfig(hparams=TINY),
                              TrainingConfig(epochs=3, batch_size=11, early_stopping_patience=3, class_weights=mode),
                              progress=False)
        rare[mode] = float(trained.predict_proba(data)[:, 1].mean())
    assert rare["balanced"] > rare["none"]
