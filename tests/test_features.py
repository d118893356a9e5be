"""Features against librosa called directly, scaling, the cache and the FeatureSet materializer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

librosa = pytest.importorskip("librosa")

from speech_emotion.features import (
    FeatureCache,
    FeatureParams,
    FeatureScaler,
    clip_features,
    extract_features,
)

SR = 16000


def _clip(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 180 + 40 * np.sin(2 * np.pi * 1.5 * t)
    y = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SR) + 0.02 * rng.standard_normal(t.size)
    return y.astype(np.float32)


@pytest.mark.parametrize("seconds", [1.3, 2.0, 8.0, 9.5])
def test_clip_features_equal_librosa_direct(seconds):
    params = FeatureParams()
    y = _clip(seconds)
    f = clip_features(y, params)

    padded = librosa.util.fix_length(y, size=params.n_samples)
    mel = librosa.feature.melspectrogram(y=padded, sr=SR, n_fft=2048, hop_length=512, n_mels=128)
    expected_logmel = librosa.power_to_db(mel, ref=np.max)
    assert f.logmel.shape == (128, 251)
    np.testing.assert_allclose(f.logmel, expected_logmel, atol=1e-3)

    clip = y[: params.n_samples]
    np.testing.assert_allclose(f.mfcc, librosa.feature.mfcc(y=clip, sr=SR, n_mfcc=40).mean(axis=1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(f.chroma, librosa.feature.chroma_stft(y=clip, sr=SR).mean(axis=1), rtol=1e-4, atol=1e-4)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(y=clip, sr=SR))
    np.testing.assert_allclose(f.mel, mel_db.mean(axis=1), rtol=1e-4, atol=1e-3)
    assert f.mfcc.shape == (40,) and f.chroma.shape == (12,) and f.mel.shape == (128,)


def test_padding_is_minus_top_db_and_short_clip_frames():
    f = clip_features(_clip(2.0), FeatureParams())
    # frames after the clip (2 s = 62.5 frames, plus the half-window spill) are silence at -top_db
    assert np.all(f.logmel[:, 70:] == pytest.approx(-80.0))
    assert f.logmel.max() == pytest.approx(0.0)


def _write(tmp_path, name, y, sr=SR):
    path = tmp_path / name
    sf.write(path, y, sr)
    return str(path)


def test_extract_features_uses_cache_and_resamples(tmp_path):
    paths = [_write(tmp_path, "a.wav", _clip(1.0, 1)), _write(tmp_path, "b.wav", _clip(1.5, 2), sr=44100)]
    params = FeatureParams()
    fs = extract_features(paths, [0, 3], ["tess", "savee"], ["h1", "h2"], params, cache_dir=tmp_path / "cache", progress=False)
    assert fs.logmel.shape == (2, 128, 251) and fs.mfcc.shape == (2, 40)
    assert list(fs.labels) == [0, 3] and list(fs.corpus) == ["tess", "savee"]
    cache = FeatureCache(tmp_path / "cache", params)
    cached = cache.get("h1")
    assert cached is not None
    np.testing.assert_array_equal(cached.logmel, fs.logmel[0])

    # a poisoned cache entry is what a second extraction returns: proof it read the cache
    cache.put("h1", type(cached)(mfcc=cached.mfcc + 1, chroma=cached.chroma, mel=cached.mel, logmel=cached.logmel))
    again = extract_features(paths, [0, 3], ["tess", "savee"], ["h1", "h2"], params, cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_allclose(again.mfcc[0], fs.mfcc[0] + 1)
    np.testing.assert_array_equal(again.mfcc[1], fs.mfcc[1])

    # other parameters, other cache
    other = FeatureParams(n_mfcc=20)
    assert FeatureCache(tmp_path / "cache", other).get("h1") is None


def test_extract_features_in_parallel_matches_serial(tmp_path):
    paths = [_write(tmp_path, f"{i}.wav", _clip(1.0 + 0.1 * i, i)) for i in range(4)]
    serial = extract_features(paths, [0] * 4, ["crema"] * 4, progress=False)
    parallel = extract_features(paths, [0] * 4, ["crema"] * 4, workers=2, progress=False)
    np.testing.assert_allclose(parallel.logmel, serial.logmel)
    np.testing.assert_allclose(parallel.mfcc, serial.mfcc)


def test_feature_inputs_and_subset(tmp_path):
    paths = [_write(tmp_path, f"{i}.wav", _clip(1.0, i)) for i in range(3)]
    fs = extract_features(paths, [0, 1, 2], ["tess"] * 3, progress=False)
    assert fs.input("mfcc+chroma").shape == (3, 52)
    assert fs.input("mfcc+chroma+mel").shape == (3, 180)
    np.testing.assert_array_equal(fs.input("mfcc+chroma")[:, 40:], fs.chroma)
    with pytest.raises(KeyError):
        fs.input("mfcc+logmel")
    with pytest.raises(KeyError):
        fs.input("pitch")
    sub = fs.subset(np.array([2, 0]))
    assert list(sub.labels) == [2, 0]
    np.testing.assert_array_equal(sub.logmel[0], fs.logmel[2])


def test_scaler_fits_on_train_only(tmp_path):
    paths = [_write(tmp_path, f"{i}.wav", _clip(1.0 + 0.2 * i, i)) for i in range(5)]
    fs = extract_features(paths, list(range(5)), ["ravdess"] * 5, progress=False)
    train, val = fs.subset(np.arange(3)), fs.subset(np.arange(3, 5))
    scaler = FeatureScaler.fit(train, batch=2)  # partial_fit over batches equals one fit
    scaled = scaler.transform(train)
    assert scaled.scaled
    np.testing.assert_allclose(scaled.mfcc.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.mfcc.std(axis=0), 1, atol=1e-4)
    mean, std = train.mfcc.mean(axis=0), train.mfcc.std(axis=0)
    np.testing.assert_allclose(scaler.transform(val).mfcc, (val.mfcc - mean) / std, rtol=1e-4, atol=1e-4)
    assert scaler.transform(val).logmel.shape == val.logmel.shape


def test_scaler_and_feature_set_materializers_round_trip(tmp_path, artifact_uri):
    from materializers import FeatureScalerMaterializer, FeatureSetMaterializer

    paths = [_write(tmp_path, f"{i}.wav", _clip(1.0 + 0.2 * i, i)) for i in range(3)]
    fs = extract_features(paths, [0, 1, 2], ["tess", "crema", "savee"], progress=False)
    scaler = FeatureScaler.fit(fs)

    for sub in ("scaler", "features"):  # ZenML creates an artifact's folder before save()
        Path(artifact_uri, sub).mkdir()
    mat = FeatureScalerMaterializer(uri=artifact_uri + "/scaler")
    mat.save(scaler)
    loaded = mat.load(FeatureScaler)
    np.testing.assert_array_equal(loaded.transform(fs).logmel, scaler.transform(fs).logmel)
    np.testing.assert_array_equal(loaded.transform(fs).mfcc, scaler.transform(fs).mfcc)

    fmat = FeatureSetMaterializer(uri=artifact_uri + "/features")
    fmat.save(fs)
    assert sorted(p.name for p in Path(artifact_uri, "features").iterdir()) == sorted(
        [f"{n}.npy" for n in fs.ARRAYS] + ["meta.json"])
    back = fmat.load(type(fs))
    assert isinstance(back.logmel, np.memmap)
    for name, arr in fs.arrays().items():
        np.testing.assert_array_equal(np.asarray(getattr(back, name)), arr)
    assert back.params == fs.params and back.scaled == fs.scaled
