"""Every network family of the seed (section 5): registry, hyperparameters, paper sizes, one training
step on tiny inputs, and a round trip through the Keras 3 materializer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speech_emotion.config import ModelConfig, TrainingConfig
from speech_emotion.models import FAMILIES, get_family, register_custom_objects
from speech_emotion.models.cnn_lstm import Cnn1dLstmHParams, CnnLstmHParams, FusedCnnLstmHParams
from speech_emotion.models.cnn_transformer import CnnTransformerHParams
from speech_emotion.models.lstm_cnn import LstmCnn1dHParams, LstmCnn2dHParams
from speech_emotion.training import train_model
from tests.synthetic import tiny_features

_CNN_LSTM_TINY = {"kernel_size": 3, "conv_blocks": 2, "filters_first": 4, "filters_next": 8, "lstm_units": 8,
                  "learning_rate": 1e-2}
TINY: dict[str, dict] = {
    "cnn2d_lstm": _CNN_LSTM_TINY,
    "cnn1d_lstm": {**_CNN_LSTM_TINY, "dropout": 0.1},
    "cnn1d_lstm_no_mel": {**_CNN_LSTM_TINY, "dropout": 0.0},
    "cnn1d_lstm_all": {**_CNN_LSTM_TINY, "conv_blocks": 3},
    "cnn_lstm_fused": {
        **{f"cnn1d_{k}": v for k, v in _CNN_LSTM_TINY.items() if k != "learning_rate"},
        **{f"cnn2d_{k}": v for k, v in _CNN_LSTM_TINY.items() if k != "learning_rate"},
        "dropout": 0.1, "learning_rate": 1e-2,
    },
    "lstm_cnn_1d": {"lstm_units": 8, "conv_blocks": 1, "filters_first": 4, "filters_next": 8, "learning_rate": 1e-2},
    "lstm_cnn_2d": {"lstm_units": 8, "conv_blocks": 2, "filters_first": 4, "filters_next": 8, "learning_rate": 1e-2,
                    "pooling": "global_avg"},
    "cnn_transformer": {"conv_blocks": 2, "filters_first": 4, "num_heads": 2, "key_dim": 4, "ff_dim": 8,
                        "learning_rate": 1e-2},
}
PAPER_SHAPES = {"logmel": (128, 251), "mfcc": (40,), "mfcc+chroma": (52,), "mfcc+chroma+mel": (180,)}
#: parameter counts of the defaults on the paper's input sizes (seed: CNN2D-LSTM 3.3-3.8 M, CNN-Transformer 2.1 M)
PAPER_PARAMS = {
    "cnn2d_lstm": (3.0e6, 4.0e6),
    "cnn1d_lstm": (3e4, 1.5e5),
    "cnn1d_lstm_no_mel": (3e4, 1.5e5),
    "cnn1d_lstm_all": (3e4, 1.5e5),
    "cnn_lstm_fused": (3.0e6, 4.2e6),
    "lstm_cnn_1d": (1e4, 1e5),
    "lstm_cnn_2d": (1.0e6, 3.0e6),
    "cnn_transformer": (1.6e6, 2.6e6),
}


_features = tiny_features


def _paper_shape(family):
    return tuple(PAPER_SHAPES[name] for name in family.input) if family.multi_input else PAPER_SHAPES[family.input]


_TRAINED: dict = {}


def _trained(name: str):
    """The family trained for one step (16 clips, one batch) through training.train_model, cached per session."""
    if name not in _TRAINED:
        train, val = _features(16), _features(9, seed=1)
        config = TrainingConfig(epochs=1, batch_size=16, early_stopping_patience=0)
        _TRAINED[name] = (train_model(train, val, ModelConfig(family=name, hparams=TINY[name]), config, progress=False), val)
    return _TRAINED[name]


def test_registry_inputs_and_seed_defaults():
    assert set(FAMILIES) == set(TINY)
    expected = {
        "cnn2d_lstm": ("logmel", CnnLstmHParams),
        "cnn1d_lstm": ("mfcc", Cnn1dLstmHParams),
        "cnn1d_lstm_no_mel": ("mfcc+chroma", Cnn1dLstmHParams),
        "cnn1d_lstm_all": ("mfcc+chroma+mel", Cnn1dLstmHParams),
        "cnn_lstm_fused": (("mfcc", "logmel"), FusedCnnLstmHParams),
        "lstm_cnn_1d": ("mfcc+chroma", LstmCnn1dHParams),
        "lstm_cnn_2d": ("logmel", LstmCnn2dHParams),
        "cnn_transformer": ("logmel", CnnTransformerHParams),
    }
    for name, (input_name, hparams) in expected.items():
        family = get_family(name)
        assert (family.input, family.hparams) == (input_name, hparams)
        assert family.multi_input == (not isinstance(input_name, str))
    assert get_family("cnn_lstm_fused").inputs == ("mfcc", "logmel") and get_family("cnn2d_lstm").inputs == ("logmel",)

    # the seed's best hyperparameters (Tables 3, 5, 8, 10; 5.3)
    assert CnnLstmHParams().to_dict() == dict(kernel_size=5, conv_blocks=3, filters_first=128, filters_next=256,
                                              lstm_units=48, dropout=0.0, learning_rate=1e-4, optimizer="adam")
    assert Cnn1dLstmHParams().to_dict() == dict(kernel_size=3, conv_blocks=2, filters_first=64, filters_next=128,
                                                lstm_units=48, dropout=0.5, learning_rate=2e-4, optimizer="adam")
    h = LstmCnn1dHParams()
    assert (h.kernel_size, h.conv_blocks, h.lstm_units, h.learning_rate, h.optimizer, h.dropout) == (3, 1, 52, 2e-4, "adam", 0.2)
    h = LstmCnn2dHParams()
    assert (h.kernel_size, h.conv_blocks, h.lstm_units, h.filters_first, h.filters_next, h.learning_rate, h.dropout) == (
        3, 2, 64, 128, 256, 2e-4, 0.0)
    h = CnnTransformerHParams()
    assert h.block_filters() == [32, 64, 128, 256] and (h.kernel_size, h.dropout, h.learning_rate) == (3, 0.1, 1e-4)
    fused = FusedCnnLstmHParams()
    assert fused.branch("cnn1d") == CnnLstmHParams(**{**Cnn1dLstmHParams().to_dict(), "learning_rate": 1e-4})
    assert fused.branch("cnn2d") == CnnLstmHParams()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_hparams_round_trip_and_validation(name):
    cls = get_family(name).hparams
    for hp in (cls(), cls.from_dict(TINY[name])):
        assert cls.from_dict(hp.to_dict()) == hp
        assert cls.from_dict(json.loads(json.dumps(hp.to_dict()))) == hp
    with pytest.raises(ValueError, match=f"unknown {cls.__name__} hyperparameters"):
        cls.from_dict({"not_a_hyperparameter": 1})
    with pytest.raises(ValueError, match="optimizer"):
        cls.from_dict({"optimizer": "sgd"})
    with pytest.raises(ValueError, match="dropout"):
        cls.from_dict({"dropout": 1.5})
    with pytest.raises(ValueError, match="learning_rate"):
        cls.from_dict({"learning_rate": "fast"})
    # YAML reads 1e-4 as a string and JSON may give 3.0 for an int: both are coerced
    hp = cls.from_dict({"learning_rate": "1e-4"})
    assert hp.learning_rate == 1e-4 and isinstance(hp.learning_rate, float)
    int_field = next(k for k, v in cls().to_dict().items() if isinstance(v, int) and not isinstance(v, bool))
    assert cls.from_dict({int_field: 3.0}).to_dict()[int_field] == 3
    with pytest.raises(ValueError):
        cls.from_dict({int_field: 2.5})
    with pytest.raises(ValueError):
        cls.from_dict({int_field: 0})


def test_paper_sizes_of_every_family():
    counts = {}
    for name, family in FAMILIES.items():
        model = family.build(_paper_shape(family), 7, family.hparams())
        assert model.output_shape == (None, 7)
        assert model.layers[-1].name == "classifier" and model.layers[-1].dtype_policy.name == "float32"
        counts[name] = model.count_params()
        # every conv block's BatchNorm keeps a short moving average (see cnn_lstm.BATCHNORM_MOMENTUM)
        norms = [l for l in model.layers if l.__class__.__name__ == "BatchNormalization"]
        assert norms and {l.momentum for l in norms} == {0.9}, name
        low, high = PAPER_PARAMS[name]
        assert low < counts[name] < high, (name, counts[name])
        if name == "cnn_transformer":
            convs = [l.filters for l in model.layers if l.name.endswith("_conv")]
            assert convs == [32, 64, 128, 256]
            block = model.get_layer("transformer")
            assert (block.num_heads, block.key_dim, block.ff_dim) == (4, 32, 128)
        if name == "cnn_lstm_fused":
            assert [i.name for i in model.inputs] == ["mfcc", "logmel"]
            assert model.get_layer("mfcc_lstm").units == 48 and model.get_layer("logmel_lstm").units == 48
        if name.startswith("lstm_cnn"):
            assert model.get_layer("lstm").return_sequences
    assert counts["cnn_transformer"] < counts["cnn2d_lstm"]  # seed Table 12: 2.1 M vs 3.8 M


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_tiny_family_trains_one_step_and_predicts(name):
    trained, val = _trained(name)
    family = get_family(name)
    assert trained.family == name and trained.input_name == family.input
    assert trained.hparams == family.hparams.from_dict(TINY[name]).to_dict()
    assert len(trained.history["loss"]) == 1 and np.isfinite(trained.history["val_loss"][0])
    probs = trained.predict_proba(val)
    assert probs.shape == (9, 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_materializer_round_trip(name, tmp_path):
    from materializers import TrainedModelMaterializer

    trained, val = _trained(name)
    (tmp_path / "artifact").mkdir()
    mat = TrainedModelMaterializer(uri=str(tmp_path / "artifact"))
    mat.save(trained)
    loaded = mat.load(type(trained))
    assert loaded.family == name and loaded.input_name == trained.input_name  # a tuple again for cnn_lstm_fused
    assert loaded.hparams == trained.hparams
    np.testing.assert_allclose(loaded.predict_proba(val), trained.predict_proba(val), rtol=1e-5, atol=1e-6)


def test_transformer_layer_loads_after_register_custom_objects(tmp_path):
    """A fresh process knows nothing of the custom layer until register_custom_objects() runs."""
    import keras

    from speech_emotion.models.cnn_transformer import REGISTERED_NAME

    trained, val = _trained("cnn_transformer")
    path = str(tmp_path / "model.keras")
    trained.model.save(path)
    registry = keras.saving.get_custom_objects()
    registry.pop(REGISTERED_NAME)
    try:
        with pytest.raises(TypeError, match="TransformerEncoder"):
            keras.saving.load_model(path)
    finally:
        objects = register_custom_objects()
    assert REGISTERED_NAME in objects and registry[REGISTERED_NAME] is objects[REGISTERED_NAME]
    model = keras.saving.load_model(path)
    np.testing.assert_allclose(model.predict(trained.inputs(val), verbose=0), trained.predict_proba(val), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["cnn_lstm_fused", "cnn_transformer"])
def test_mixed_precision_keeps_float32_probabilities(name):
    import keras

    from speech_emotion.models.trained import model_inputs
    from speech_emotion.training import input_shapes

    family = get_family(name)
    features = _features(9, seed=2)
    data = model_inputs(features, family.input)
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        model = family.build(input_shapes(data), 7, TINY[name])
        assert model.get_layer("classifier").compute_dtype == "float32"
        first_conv = "block1_conv" if name == "cnn_transformer" else "logmel_block1_conv"
        assert model.get_layer(first_conv).compute_dtype == "float16"
        model.train_on_batch(data, features.labels)
        probs = model.predict(data, verbose=0)
        assert probs.dtype == np.float32 and probs.shape == (9, 7)
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-3)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_transformer_blocks_are_conv_elu_bn_and_the_lstm_families_conv_bn_elu():
    def order(model, block):
        return [l.name.removeprefix(f"{block}_") for l in model.layers if l.name.startswith(f"{block}_")]

    shape = _paper_shape(get_family("cnn_transformer"))
    transformer = get_family("cnn_transformer").build(shape, 7, TINY["cnn_transformer"])
    lstm = get_family("cnn2d_lstm").build(shape, 7, TINY["cnn2d_lstm"])
    assert order(transformer, "block1") == ["conv", "elu", "bn", "pool"]  # seed 5.3
    assert order(lstm, "block1") == ["conv", "bn", "elu", "pool"]  # seed 5.1.1


def test_position_encoding_makes_the_encoder_see_the_frames_order():
    import keras

    from speech_emotion.models.cnn_transformer import sinusoidal_positions, transformer_encoder_class

    pe = keras.ops.convert_to_numpy(sinusoidal_positions(5, 6))
    np.testing.assert_allclose(pe[0], [0, 1, 0, 1, 0, 1], atol=1e-7)  # sin(0), cos(0)
    np.testing.assert_allclose(pe[3, 2:4], [np.sin(3 / 10000 ** (2 / 6)), np.cos(3 / 10000 ** (2 / 6))], rtol=1e-5)

    x = np.random.default_rng(0).standard_normal((2, 7, 6)).astype(np.float32)
    reverse = x[:, ::-1]
    keras.utils.set_random_seed(0)
    plain = transformer_encoder_class()(2, 4, 8, 0.0, position_encoding=False)
    # without positions self-attention is permutation-equivariant: reversed frames give reversed outputs
    np.testing.assert_allclose(np.asarray(plain(reverse)), np.asarray(plain(x))[:, ::-1], atol=1e-5)
    positional = transformer_encoder_class()(2, 4, 8, 0.0, position_encoding=True)
    assert np.abs(np.asarray(positional(reverse)) - np.asarray(positional(x))[:, ::-1]).max() > 1e-2
    # a block saved before position encoding existed (no key in its config) loads without it
    config = positional.get_config()
    config.pop("position_encoding")
    assert not transformer_encoder_class().from_config(config).position_encoding


def test_transformer_learning_rate_warms_up_and_the_schedule_survives_saving(tmp_path):
    import keras

    from speech_emotion.models.cnn_transformer import CnnTransformerHParams

    hp = {**TINY["cnn_transformer"], "learning_rate": 1e-3, "warmup_steps": 4}
    model = get_family("cnn_transformer").build(_paper_shape(get_family("cnn_transformer")), 7, hp)
    schedule = model.optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 1, 3, 10)]
    np.testing.assert_allclose(rates, [2.5e-4, 5e-4, 1e-3, 1e-3], rtol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", custom_objects=register_custom_objects())
    assert type(loaded.optimizer._learning_rate).__name__ == "LinearWarmup"
    assert loaded.optimizer._learning_rate.get_config() == {"learning_rate": 1e-3, "warmup_steps": 4}
    # no warm-up: a plain float learning rate
    flat = get_family("cnn_transformer").build(_paper_shape(get_family("cnn_transformer")), 7,
                                               {**hp, "warmup_steps": 0})
    assert float(flat.optimizer.learning_rate) == pytest.approx(1e-3)
    assert CnnTransformerHParams().warmup_steps == 50 and CnnTransformerHParams().position_encoding


@pytest.mark.parametrize("name", ["cnn2d_lstm", "cnn_lstm_fused", "cnn_transformer", "lstm_cnn_2d"])
def test_padding_is_masked_more_padding_leaves_the_prediction_and_unmasked_padding_does_not(name):
    """The LSTM, attention and pooling skip the zero padding frames (speech_emotion.models.masking)."""
    import keras

    family = get_family(name)
    features = _features(4, seed=5, frames=24)
    clip_frames = np.array([24, 17, 9, 3])
    short, longer = np.zeros((4, 16, 40), np.float32), np.zeros((4, 16, 120), np.float32)
    for i, n in enumerate(clip_frames):
        short[i, :, :n] = longer[i, :, :n] = features.logmel[i, :, :n]

    def inputs(logmel):
        return [features.mfcc, logmel] if family.multi_input else logmel

    models = []
    for frames in (40, 120):
        keras.utils.set_random_seed(0)
        shapes = ((40,), (16, frames)) if family.multi_input else (16, frames)
        models.append(family.build(shapes, 7, TINY[name]))
    models[1].set_weights(models[0].get_weights())
    probs = models[0].predict(inputs(short), verbose=0)
    np.testing.assert_allclose(models[1].predict(inputs(longer), verbose=0), probs, atol=1e-5, rtol=0)
    # padding that is not zero (the seed's scaled padding) is read: the prediction moves
    read = short.copy()
    for i, n in enumerate(clip_frames):
        read[i, :, n:] = 0.5
    assert np.abs(models[0].predict(inputs(read), verbose=0) - probs).max() > 1e-3
