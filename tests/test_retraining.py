"""What changed since production, per corpus and class, and whether to retrain."""

from __future__ import annotations

import pandas as pd

from speech_emotion.retraining import decide, diff_utterances


def _table(rows):
    return pd.DataFrame(rows, columns=["corpus", "relpath", "emotion", "content_hash"])


def test_added_removed_and_changed_files_per_corpus_and_class():
    old = _table([("tess", "a.wav", "angry", "h1"), ("tess", "b.wav", "happy", "h2"), ("crema", "c.wav", "fear", "h3")])
    new = _table([("tess", "a.wav", "angry", "h1"),  # same
                  ("tess", "b.wav", "happy", "h2x"),  # edited
                  ("tess", "d.wav", "angry", "h4"),  # added
                  ("savee", "e.wav", "fear", "h5")])  # added; crema/c.wav removed
    changes = diff_utterances(old, new)
    assert changes.to_dict("records") == [
        {"corpus": "crema", "emotion": "fear", "added": 0, "removed": 1, "changed": 0},
        {"corpus": "savee", "emotion": "fear", "added": 1, "removed": 0, "changed": 0},
        {"corpus": "tess", "emotion": "angry", "added": 1, "removed": 0, "changed": 0},
        {"corpus": "tess", "emotion": "happy", "added": 0, "removed": 0, "changed": 1},
    ]


def test_moving_a_corpus_is_no_change_and_first_run_adds_everything():
    rows = [("tess", "OAF/a.wav", "angry", "h1"), ("tess", "OAF/b.wav", "sadness", "h2")]
    assert diff_utterances(_table(rows), _table(rows)).empty
    first = diff_utterances(None, _table(rows))
    assert first["added"].sum() == 2 and first["removed"].sum() == 0


def test_decision():
    assert decide("f", None).train and decide("f", None).reason == "no production version yet"
    unchanged = decide("f", "f", production_version="3")
    assert not unchanged.train and unchanged.reason.startswith("no new data") and "3" in unchanged.reason
    assert decide("f", "f", force=True).train
    assert decide("g", "f", production_version="3").train
