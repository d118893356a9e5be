"""Model inputs as ``tf.data`` datasets read a batch at a time from (memory-mapped) NumPy arrays.

Shared by training (:mod:`speech_emotion.training`, tuning, stacking) and prediction
(:class:`speech_emotion.models.trained.TrainedModel`); TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Inputs = np.ndarray | Sequence[np.ndarray]


def n_examples(x: Inputs) -> int:
    return int(len(x[0]) if isinstance(x, (list, tuple)) else len(x))


def make_dataset(x: Inputs, y: np.ndarray | None, batch_size: int, shuffle: bool, seed: int):
    """A batched, prefetched ``tf.data.Dataset`` of ``(x, y)`` (of ``x`` alone when ``y`` is None);
    ``x`` a list of arrays gives tuple inputs.

    The dataset holds only the row indices: each batch of indices (shuffled every epoch when
    ``shuffle``) is gathered from the NumPy arrays by ``tf.numpy_function``, so memory-mapped
    arrays are read a batch at a time and never copied whole into a TensorFlow tensor."""
    import tensorflow as tf

    arrays = list(x) if isinstance(x, (list, tuple)) else [x]
    if y is not None:
        arrays.append(y)
    n = n_examples(x)

    def gather(idx: np.ndarray) -> list[np.ndarray]:
        idx = np.sort(idx)  # ascending reads from a memory map; order within a batch does not matter
        return [np.asarray(a[idx]) for a in arrays]

    def load(idx):
        tensors = tf.numpy_function(gather, [idx], [tf.as_dtype(a.dtype) for a in arrays], stateful=False)
        for t, a in zip(tensors, arrays):
            t.set_shape((None, *a.shape[1:]))
        xs = tuple(tensors[: len(tensors) - (y is not None)])
        inputs = xs if isinstance(x, (list, tuple)) else xs[0]
        # a 1-tuple: Keras reads a bare tuple of inputs as (x, y[, sample_weight])
        return (inputs, tensors[-1]) if y is not None else (inputs,)

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)  # int64 indices only
    return ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )
