"""bench/fixed_hparams.py: its --variant syntax (the training itself is train_model's, tested elsewhere)."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture
def fixed_hparams():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import fixed_hparams
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return fixed_hparams


def test_a_variant_is_a_name_and_yaml_values(fixed_hparams):
    name, values = fixed_hparams.parse_variant("k5:kernel_size=5,optimizer=rmsprop,learning_rate=0.0003")
    assert name == "k5" and values == {"kernel_size": 5, "optimizer": "rmsprop", "learning_rate": 0.0003}
    assert fixed_hparams.parse_variant("as_is:") == ("as_is", {})


def test_a_variant_item_without_a_value_is_refused_with_the_item(fixed_hparams):
    with pytest.raises(SystemExit, match="'kernel_size' is not KEY=VALUE"):
        fixed_hparams.parse_variant("k5:kernel_size")
