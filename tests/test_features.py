"""Features against librosa called directly, scaling, the cache and the FeatureSet materializer."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

librosa = pytest.importorskip("librosa")

from speech_emotion.features import (
    FeatureCache,
    FeatureParams,
    FeatureScaler,
    clip_features,
    estimate_tuning,
    extract_features,
)

SR = 16000


def _clip(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 180 + 40 * np.sin(2 * np.pi * 1.5 * t)
    y = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SR) + 0.02 * rng.standard_normal(t.size)
    return y.astype(np.float32)


# clips shorter than one FFT window, shorter than, as long as and longer than the padded length;
# the 8 s of the seed and an auto duration's 4.29 s
@pytest.mark.parametrize("seconds,duration_s", [(0.05, 8.0), (1.3, 8.0), (2.0, 8.0), (8.0, 8.0), (9.5, 8.0),
                                                (2.0, 4.29), (4.29, 4.29), (6.0, 4.29)])
def test_clip_features_equal_librosa_direct(seconds, duration_s):
    params = FeatureParams(duration_s=duration_s)
    y = _clip(seconds)
    f = clip_features(y, params)

    padded = librosa.util.fix_length(y, size=params.n_samples)
    mel = librosa.feature.melspectrogram(y=padded, sr=SR, n_fft=2048, hop_length=512, n_mels=128)
    expected_logmel = librosa.power_to_db(mel, ref=np.max)
    assert f.logmel.shape == (128, params.n_frames)
    np.testing.assert_allclose(f.logmel, expected_logmel, atol=1e-3)

    clip = y[: params.n_samples]
    np.testing.assert_allclose(f.mfcc, librosa.feature.mfcc(y=clip, sr=SR, n_mfcc=40).mean(axis=1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(f.chroma, librosa.feature.chroma_stft(y=clip, sr=SR).mean(axis=1), rtol=1e-4, atol=1e-4)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(y=clip, sr=SR))
    np.testing.assert_allclose(f.mel, mel_db.mean(axis=1), rtol=1e-4, atol=1e-3)
    assert f.mfcc.shape == (40,) and f.chroma.shape == (12,) and f.mel.shape == (128,)


def _tuning_signals(rng):
    """Tones off the equal-tempered grid, harmonic glides, noise, a silent clip and one shorter than a window."""
    for i in range(24):
        sr = (16000, 22050, 44100)[i % 3]
        t = np.arange(int(rng.uniform(0.05 if i == 0 else 0.3, 4.0) * sr)) / sr
        kind = i % 4
        if kind == 0:
            y = np.sin(2 * np.pi * 220 * 2 ** (rng.uniform(-0.5, 0.5) / 12) * t)
        elif kind == 1:
            phase = 2 * np.pi * np.cumsum(130 + 60 * np.sin(2 * np.pi * 0.8 * t)) / sr
            y = sum(np.sin(k * phase) / k for k in range(1, 10))
        elif kind == 2:
            y = rng.standard_normal(t.size)
        else:
            y = np.zeros(t.size) if i == 3 else np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
        yield sr, (0.3 * y).astype(np.float32)


def test_estimate_tuning_is_librosas_exactly():
    rng = np.random.default_rng(0)
    tunings = []
    for sr, y in _tuning_signals(rng):
        power = np.abs(librosa.stft(y, n_fft=2048, hop_length=512)) ** 2
        with warnings.catch_warnings():  # librosa warns on the silent clip ("empty frequency set"); so do we
            warnings.simplefilter("ignore", UserWarning)
            expected = librosa.estimate_tuning(S=power, sr=sr, bins_per_octave=12)
            got = estimate_tuning(power, sr, 2048, 12)
        assert got == expected, (sr, len(y))
        tunings.append(got)
    assert len(set(tunings)) > 5  # the signals' tunings differ, so equality says something


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


def test_a_few_clips_are_extracted_in_process_whatever_the_workers(tmp_path, caplog):
    # starting a spawned worker costs what one process extracts of hundreds of clips
    paths = [_write(tmp_path, f"{i}.wav", _clip(1.0, i)) for i in range(3)]
    with caplog.at_level(logging.INFO, logger="speech_emotion.features"):
        extract_features(paths, [0] * 3, ["crema"] * 3, workers=2, min_clips_per_worker=2, progress=False)
        extract_features(paths, [0] * 3, ["crema"] * 3, workers=2, min_clips_per_worker=1, progress=False)
    used = [r.getMessage().split("(")[-1] for r in caplog.records if "extracted" in r.getMessage()]
    assert [u.split(",")[1].strip() for u in used] == ["1 workers)", "2 workers)"]
    capped = [r.getMessage() for r in caplog.records if "instead of" in r.getMessage()]
    assert capped == ["features: 1 process(es) instead of the 2 workers asked for: 3 clips to extract, "
                      "a worker is started per 2"]


def test_extract_features_in_parallel_matches_serial(tmp_path):
    paths = [_write(tmp_path, f"{i}.wav", _clip(1.0 + 0.1 * i, i)) for i in range(6)]
    serial = extract_features(paths, [0] * 6, ["crema"] * 6, progress=False)
    parallel = extract_features(paths, [0] * 6, ["crema"] * 6, workers=2, min_clips_per_worker=1, progress=False)
    # into memory maps, which the workers write themselves, with one clip already in the cache
    hashes = [f"h{i}" for i in range(6)]
    cache = tmp_path / "cache"
    extract_features(paths[2:3], [0], ["crema"], hashes[2:3], cache_dir=cache, progress=False)
    folder = tmp_path / "streamed"
    folder.mkdir()
    streamed = extract_features(paths, [0] * 6, ["crema"] * 6, hashes, cache_dir=cache, workers=2,
                                min_clips_per_worker=1, progress=False, folder=folder)
    # identical, not merely close: every process computes features on one BLAS thread
    for name in ("mfcc", "chroma", "mel", "logmel", "n_frames"):
        np.testing.assert_array_equal(getattr(parallel, name), getattr(serial, name), err_msg=name)
        np.testing.assert_array_equal(np.asarray(getattr(streamed, name)), getattr(serial, name), err_msg=name)
    assert isinstance(streamed.logmel, np.memmap) and Path(streamed.logmel.filename).parent == folder
    # the workers wrote the cache: every clip is served from it now
    cached = FeatureCache(cache, FeatureParams()).get_many(hashes)
    for i, hit in enumerate(cached):
        np.testing.assert_array_equal(hit.logmel, serial.logmel[i])


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
    assert back.n_frames.tolist() == fs.n_frames.tolist() == [32, 38, 44]
    # an artifact written before n_frames was kept is refused by name, not guessed
    Path(artifact_uri, "features", "n_frames.npy").unlink()
    with pytest.raises(ValueError, match="has no n_frames"):
        fmat.load(type(fs))


# --------------------------------------------------------------------------- streaming into memory maps (issue 10)


def _streamed_and_in_memory(tmp_path):
    paths = [_write(tmp_path, f"s{i}.wav", _clip(0.8 + 0.7 * i, i)) for i in range(5)]
    args = (paths, [0, 1, 2, 3, 4], ["tess", "crema", "savee", "tess", "ravdess"])
    params = FeatureParams(duration_s=3.0)
    folder = tmp_path / "streamed"
    folder.mkdir()
    return (extract_features(*args, params=params, progress=False, folder=folder),
            extract_features(*args, params=params, progress=False), folder)


def test_streamed_features_and_scaling_equal_the_in_memory_ones(tmp_path):
    streamed, in_memory, folder = _streamed_and_in_memory(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.npy" for n in in_memory.ARRAYS)
    for name in in_memory.ARRAYS:  # every array, ids and labels included, is a memory map in the folder
        arr = getattr(streamed, name)
        assert isinstance(arr, np.memmap) and Path(arr.filename).parent == folder, name
        np.testing.assert_array_equal(np.asarray(arr), getattr(in_memory, name), err_msg=name)

    scaler = FeatureScaler.fit(streamed, logmel_scaling="band", zero_padding=True, batch=2)
    assert np.array_equal(scaler.to_npz(), FeatureScaler.fit(in_memory, logmel_scaling="band", zero_padding=True,
                                                              batch=2).to_npz())
    (tmp_path / "scaled").mkdir()
    scaled = scaler.transform(streamed, batch=2, folder=tmp_path / "scaled")  # chunks smaller than the set
    reference = scaler.transform(in_memory)
    assert Path(scaled.logmel.filename).parent == tmp_path / "scaled"
    for name in in_memory.ARRAYS:
        np.testing.assert_array_equal(np.asarray(getattr(scaled, name)), getattr(reference, name), err_msg=name)
    assert np.all(np.asarray(scaled.logmel)[0, :, in_memory.n_frames[0]:] == 0)  # the padding zeroed per chunk


def test_streamed_subset_and_concatenate_equal_the_in_memory_ones(tmp_path, monkeypatch):
    import speech_emotion.features as features

    streamed, in_memory, _ = _streamed_and_in_memory(tmp_path)
    monkeypatch.setattr(features, "ROW_CHUNK", 2)  # several chunks per copy
    index = np.array([4, 0, 3])
    (tmp_path / "sub").mkdir()
    sub = streamed.subset(index, folder=tmp_path / "sub")
    (tmp_path / "cat").mkdir()
    cat = features.FeatureSet.concatenate([sub, in_memory], folder=tmp_path / "cat")
    for name in in_memory.ARRAYS:
        expected = getattr(in_memory, name)
        np.testing.assert_array_equal(np.asarray(getattr(sub, name)), expected[index], err_msg=name)
        np.testing.assert_array_equal(np.asarray(getattr(cat, name)), np.concatenate([expected[index], expected]))
        assert Path(getattr(cat, name).filename).parent == tmp_path / "cat"


def test_a_streamed_feature_set_is_finished_in_place_and_loads_read_only(tmp_path, artifact_uri):
    from materializers import FeatureSetMaterializer
    from materializers.feature_set import _SPOOLS

    uri = Path(artifact_uri, "features")
    uri.mkdir()  # ZenML creates it before the step; output_folder hands it to the step:
    _SPOOLS[str(uri)] = str(uri)
    paths = [_write(tmp_path, f"{i}.wav", _clip(1.0 + 0.2 * i, i)) for i in range(3)]
    fs = extract_features(paths, [0, 1, 2], ["tess"] * 3, progress=False, folder=uri)
    before = {p.name: p.stat().st_ino for p in uri.glob("*.npy")}
    mat = FeatureSetMaterializer(uri=str(uri))
    mat.save(fs)
    # the step's own files became the artifact (same inodes: nothing was copied), meta.json last
    assert {p.name: p.stat().st_ino for p in uri.glob("*.npy")} == before
    assert sorted(p.name for p in uri.iterdir()) == sorted([f"{n}.npy" for n in fs.ARRAYS] + ["meta.json"])
    back = mat.load(type(fs))
    for name in fs.ARRAYS:
        arr = getattr(back, name)
        assert isinstance(arr, np.memmap) and not arr.flags.writeable, name
        np.testing.assert_array_equal(np.asarray(arr), np.asarray(getattr(fs, name)))
    with pytest.raises(ValueError, match="read-only"):
        back.logmel[0, 0, 0] = 1.0

    # a later step that passes the loaded set through, or a view of part of it, gets a copy: the
    # finished artifact's folder is neither finished again nor removed
    for name, passed in (("passed", back), ("part", back.subset(np.arange(2))), ("view", _view(back, 2))):
        other = Path(artifact_uri, name)
        other.mkdir()
        _SPOOLS[str(other)] = str(other)
        FeatureSetMaterializer(uri=str(other)).save(passed)
        copy = FeatureSetMaterializer(uri=str(other)).load(type(fs))
        np.testing.assert_array_equal(np.asarray(copy.logmel), np.asarray(passed.logmel))
        assert {p.name: p.stat().st_ino for p in uri.glob("*.npy")} == before and (uri / "meta.json").exists()
    assert not _SPOOLS


def _view(fs, k):
    return type(fs)(**{name: arr[:k] for name, arr in fs.arrays().items()}, params=fs.params, scaled=fs.scaled)


def test_an_interrupted_feature_set_write_is_not_taken_as_finished(tmp_path, artifact_uri):
    from materializers import FeatureSetMaterializer
    from materializers.feature_set import _SPOOLS

    uri = Path(artifact_uri, "features")
    uri.mkdir()
    _SPOOLS[str(uri)] = str(uri)
    paths = [_write(tmp_path, f"{i}.wav", _clip(1.0, i)) for i in range(3)]
    fs = extract_features(paths, [0, 1, 2], ["tess"] * 3, progress=False, folder=uri)
    mat = FeatureSetMaterializer(uri=str(uri))
    # the step died before save(): every array is there, meta.json is not
    with pytest.raises(ValueError, match="incomplete: it has no meta.json"):
        mat.load(type(fs))
    mat.save(fs)
    assert len(mat.load(type(fs))) == 3
    # an array that lost rows after meta.json was written (a torn copy) is refused by name
    np.save(uri / "labels.npy", np.asarray(fs.labels)[:2])
    with pytest.raises(ValueError, match="labels do not hold the 3 rows"):
        mat.load(type(fs))


# --------------------------------------------------------------------------- n_frames and log-mel scaling


def test_n_frames_counts_the_clips_own_frames_and_is_cached(tmp_path):
    params = FeatureParams()
    assert clip_features(_clip(2.0), params).n_frames == 1 + 32000 // 512  # 63: the rest is padding
    assert clip_features(_clip(9.5), params).n_frames == params.n_frames  # cut to 8 s: no padding
    paths = [_write(tmp_path, "a.wav", _clip(1.0, 1)), _write(tmp_path, "b.wav", _clip(3.0, 2))]
    fs = extract_features(paths, [0, 1], ["tess"] * 2, ["h1", "h2"], params, cache_dir=tmp_path / "c", progress=False)
    assert fs.n_frames.tolist() == [32, 94]
    assert fs.subset(np.array([1])).n_frames.tolist() == [94]
    assert FeatureCache(tmp_path / "c", params).get("h2").n_frames == 94


def test_a_cache_entry_without_n_frames_is_extracted_again(tmp_path):
    params = FeatureParams()
    paths = [_write(tmp_path, "a.wav", _clip(1.0, 1))]
    cache = FeatureCache(tmp_path / "c", params)
    feats = clip_features(_clip(1.0, 1), params)
    # an entry as the code before n_frames wrote it, with a poisoned MFCC: it must not be served
    path = cache._path("h1")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, mfcc=feats.mfcc + 100, chroma=feats.chroma, mel=feats.mel, logmel=feats.logmel)
    assert cache.get("h1") is None
    fs = extract_features(paths, [0], ["tess"], ["h1"], params, cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_allclose(fs.mfcc[0], feats.mfcc, atol=0.05)  # the WAV is 16-bit; the poison is +100
    assert fs.n_frames.tolist() == [32] and cache.get("h1").n_frames == 32


def _padded_set(n_frames: list[int], bands: int = 4, frames: int = 10, seed: int = 0, spread: float = 4.0):
    """Log-mel sets whose padding frames hold -80 dB, as extraction gives them."""
    from speech_emotion.features import FeatureSet

    rng = np.random.default_rng(seed)
    n = len(n_frames)
    logmel = np.full((n, bands, frames), -80.0, np.float32)
    for i, k in enumerate(n_frames):
        logmel[i, :, :k] = rng.normal(-30 + 5 * np.arange(bands)[:, None], spread, (bands, k))
    return FeatureSet(
        utterance_ids=np.array([f"u{i}" for i in range(n)]), labels=np.zeros(n, int), corpus=np.array(["tess"] * n),
        mfcc=rng.standard_normal((n, 3)).astype(np.float32), chroma=rng.standard_normal((n, 2)).astype(np.float32),
        mel=rng.standard_normal((n, bands)).astype(np.float32), logmel=logmel, n_frames=np.array(n_frames),
    )


def test_band_scaling_is_fitted_on_the_clips_frames_only():
    fs = _padded_set([3, 5, 10, 7])
    scaler = FeatureScaler.fit(fs, batch=3, logmel_scaling="band")
    valid = np.concatenate([fs.logmel[i, :, :k] for i, k in enumerate(fs.n_frames)], axis=1)  # (bands, frames)
    np.testing.assert_allclose(scaler.scalers["logmel"].mean_, valid.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(scaler.scalers["logmel"].scale_, valid.std(axis=1), rtol=1e-6)  # above the floor
    out = scaler.transform(fs)
    scaled_valid = np.concatenate([out.logmel[i, :, :k] for i, k in enumerate(fs.n_frames)], axis=1)
    np.testing.assert_allclose(scaled_valid.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(scaled_valid.std(axis=1), 1, atol=1e-5)
    # padding is scaled with its band's statistics: one constant per band, far below the speech
    pad = out.logmel[0, :, 3:]
    np.testing.assert_allclose(pad, ((-80 - valid.mean(axis=1)) / valid.std(axis=1))[:, None].repeat(7, 1), rtol=1e-5)
    assert out.n_frames.tolist() == [3, 5, 10, 7]
    # 1-D kinds are scaled as before
    np.testing.assert_allclose(out.mfcc, (fs.mfcc - fs.mfcc.mean(0)) / fs.mfcc.std(0), rtol=1e-4, atol=1e-5)


def test_element_scaling_floors_tiny_deviations_and_leaves_the_rest():
    from sklearn.preprocessing import StandardScaler

    # 200 clips of 8 frames, one clip of 10: frames 8-9 are padding (-80) for all but one clip
    fs = _padded_set([8] * 200 + [10], seed=1, spread=20.0)  # speech varies by about 20 dB per element
    plain = StandardScaler().fit(fs.logmel.reshape(len(fs), -1))
    z_plain = np.abs(plain.transform(fs.logmel.reshape(len(fs), -1))).max()
    assert z_plain > 14  # sqrt(200): the lone long clip's frames explode without a floor

    scaler = FeatureScaler.fit(fs, logmel_scaling="element")  # the default floor, 0.5
    stats = scaler.scalers["logmel"]
    pooled = np.sqrt(np.mean(plain.var_) + np.var(plain.mean_))
    floor = 0.5 * pooled
    np.testing.assert_allclose(stats.scale_, np.maximum(np.sqrt(plain.var_), floor), rtol=1e-6)
    wide = np.sqrt(plain.var_) > floor
    assert wide.sum() == 32  # the frames every clip holds keep their own deviation
    np.testing.assert_allclose(stats.scale_[wide], plain.scale_[wide], rtol=1e-6)
    out = scaler.transform(fs).logmel.reshape(len(fs), -1)
    assert np.abs(out).max() < z_plain
    assert np.abs(out).max() <= np.abs(fs.logmel.reshape(len(fs), -1) - plain.mean_).max() / floor + 1e-4
    # no floor: the seed's scaler exactly
    seed = FeatureScaler.fit(fs, std_floor=0.0)
    np.testing.assert_allclose(seed.transform(fs).logmel.reshape(len(fs), -1), plain.transform(
        fs.logmel.reshape(len(fs), -1)), rtol=1e-4, atol=1e-4)


def test_scaler_npz_keeps_the_logmel_scaling_and_reads_old_files():
    import io

    fs = _padded_set([3, 5, 10, 7])
    band = FeatureScaler.fit(fs, logmel_scaling="band")
    loaded = FeatureScaler.from_npz(band.to_npz())
    assert loaded.logmel_scaling == "band" and set(loaded.scalers) == {"mfcc", "chroma", "mel", "logmel"}
    np.testing.assert_array_equal(loaded.transform(fs).logmel, band.transform(fs).logmel)
    # a scaler saved before the option existed has no meta entry: it is the seed's element scaling
    element = FeatureScaler.fit(fs)
    data = dict(np.load(io.BytesIO(element.to_npz())))
    data.pop("meta.logmel_scaling")
    buf = io.BytesIO()
    np.savez(buf, **data)
    old = FeatureScaler.from_npz(buf.getvalue())
    assert old.logmel_scaling == "element"
    np.testing.assert_array_equal(old.transform(fs).logmel, element.transform(fs).logmel)
    with pytest.raises(ValueError, match="logmel_scaling"):
        FeatureScaler(logmel_scaling="global")


@pytest.mark.parametrize("scaling", ["element", "band"])
def test_mask_padding_zeroes_the_scaled_padding_frames_only_and_is_saved(scaling):
    import io

    fs = _padded_set([3, 5, 10, 7])
    plain = FeatureScaler.fit(fs, logmel_scaling=scaling).transform(fs).logmel
    scaler = FeatureScaler.fit(fs, logmel_scaling=scaling, zero_padding=True)
    masked = scaler.transform(fs).logmel
    for i, n in enumerate(fs.n_frames):
        np.testing.assert_array_equal(masked[i, :, :n], plain[i, :, :n])  # the clip's frames as before
        assert not masked[i, :, n:].any() and masked[i, :, :n].any(axis=0).all()  # padding exactly 0, no clip frame
    loaded = FeatureScaler.from_npz(scaler.to_npz())
    assert loaded.zero_padding
    np.testing.assert_array_equal(loaded.transform(fs).logmel, masked)
    data = dict(np.load(io.BytesIO(scaler.to_npz())))
    data.pop("meta.zero_padding")  # saved before the option existed: padding left as scaled
    buf = io.BytesIO()
    np.savez(buf, **data)
    assert not FeatureScaler.from_npz(buf.getvalue()).zero_padding


def test_auto_duration_is_the_percentile_of_the_training_clips_capped_and_a_whole_number_of_hops():
    from speech_emotion.features import auto_duration

    durations = [1.0, 2.0, 2.5, 3.0, 12.0]
    assert auto_duration(durations, 100, 8.0) == 8.0  # capped: 250 hops of 512 samples at 16 kHz
    assert auto_duration(durations, 50, 8.0) == 79 * 512 / 16000  # 2.5 s is 78.1 hops: rounded up to 79
    assert auto_duration(durations, 100, 8.0, sample_rate=8000, hop_length=256) == 8.0
    assert auto_duration([1.6, float("nan"), 0.0], 100, 8.0) == 1.6  # 50 hops exactly; unknown durations ignored
    with pytest.raises(ValueError, match="training split has none"):
        auto_duration([], 100, 8.0)


def test_feature_config_auto_resolves_from_the_training_durations_and_the_step_does_too():
    from pydantic import ValidationError

    from speech_emotion.config import FeatureConfig
    from steps.features import resolve_feature_params

    config = FeatureConfig(duration_s="auto", duration_percentile=90, max_duration_s=4.0)
    train = pd.DataFrame({"duration_s": np.linspace(1.0, 3.0, 21)})  # its 90th percentile: 2.8 s
    params = config.params(train["duration_s"])
    assert params.duration_s == 88 * 512 / 16000 and params.n_frames == 1 + params.n_samples // 512
    assert resolve_feature_params.entrypoint(train, config) == params
    assert params.model_dump(exclude={"duration_s"}) == FeatureConfig().params().model_dump(exclude={"duration_s"})
    with pytest.raises(ValueError, match="durations are needed"):
        config.params()
    with pytest.raises(ValidationError):
        FeatureConfig(duration_s="long")
    assert FeatureConfig().params().duration_s == 8.0  # the seed's length stays the default


def test_subset_takes_a_boolean_mask_or_positions(tmp_path):
    paths = [_write(tmp_path, f"{i}.wav", _clip(1.0, i)) for i in range(3)]
    fs = extract_features(paths, [0, 1, 2], ["tess"] * 3, params=FeatureParams(duration_s=1.5), progress=False)
    assert fs.subset(np.array([True, False, True])).labels.tolist() == fs.subset(np.array([0, 2])).labels.tolist() == [0, 2]
