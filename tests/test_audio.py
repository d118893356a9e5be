"""Tests for speech_emotion.audio: decoding variants, resampling, validation, failure modes."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.audio import (
    TARGET_SR,
    AudioError,
    AudioInfo,
    check_signal,
    decode_audio_bytes,
    is_git_lfs_pointer,
    load_audio,
    peak_dbfs,
    probe_audio,
    read_audio,
    resample,
    to_mono,
)
from speech_emotion.corpora.common import RejectReason

LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 12345\n"
)
JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"\x00" * 200


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wav_bytes(y: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, subtype=subtype, format="WAV")
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def dominant_freq(y: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spectrum)])


# --------------------------------------------------------------------------- #
# decoding
# --------------------------------------------------------------------------- #

SUBTYPE_TOLERANCE = {
    "PCM_U8": 1 / 64,
    "PCM_16": 1 / 16384,
    "PCM_24": 1e-6,
    "PCM_32": 1e-7,
    "FLOAT": 0.0,
    "DOUBLE": 1e-7,
}


@pytest.mark.parametrize("subtype", list(SUBTYPE_TOLERANCE))
def test_decode_every_pcm_and_float_subtype(tmp_path: Path, subtype: str) -> None:
    y = sine(440, 16000, 0.5)
    path = write(tmp_path / f"{subtype}.wav", wav_bytes(y, 16000, subtype))

    info = probe_audio(path)
    assert info == AudioInfo(sample_rate=16000, channels=1, frames=8000, duration_s=0.5, subtype=subtype)

    data, sr = read_audio(path)
    assert sr == 16000
    assert data.dtype == np.float32
    assert data.shape == (8000, 1)
    np.testing.assert_allclose(data[:, 0], y, atol=SUBTYPE_TOLERANCE[subtype])


def test_stereo_is_downmixed_to_the_channel_mean(tmp_path: Path) -> None:
    left = sine(300, 16000, 0.25, amp=0.6)
    right = sine(700, 16000, 0.25, amp=0.2)
    stereo = np.stack([left, right], axis=1)
    path = write(tmp_path / "stereo.wav", wav_bytes(stereo, 16000, "FLOAT"))

    assert probe_audio(path).channels == 2
    data, sr = read_audio(path)
    assert data.shape == (4000, 2)
    np.testing.assert_array_equal(data, stereo)
    mono = to_mono(data)
    assert mono.dtype == np.float32 and mono.shape == (4000,)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-7)
    # load_audio at the native rate: mono mean, no resampling
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-7)


def test_to_mono_shapes() -> None:
    y = np.arange(6, dtype=np.float64)
    out = to_mono(y)
    assert out.dtype == np.float32 and out.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(to_mono(np.array([[1.0], [3.0]])), np.array([1.0, 3.0], np.float32))
    np.testing.assert_array_equal(
        to_mono(np.array([[1.0, 3.0, 5.0], [0.0, -1.0, 1.0]], np.float32)), np.array([3.0, 0.0], np.float32)
    )
    with pytest.raises(ValueError):
        to_mono(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("sr", [44100, 48000, 24414, 22050])
def test_resample_length_and_frequency(sr: int) -> None:
    y = sine(1000, sr, 1.0)
    out = resample(y, sr)
    assert out.dtype == np.float32
    assert len(out) == 16000
    assert dominant_freq(out, TARGET_SR) == pytest.approx(1000, abs=1)
    # odd lengths: round(n * 16000 / sr)
    n = 12345
    assert len(resample(y[:n], sr, 16000)) == round(n * 16000 / sr)


def test_resample_same_rate_is_a_noop_and_keeps_channels() -> None:
    y = sine(440, 16000, 0.1)
    np.testing.assert_array_equal(resample(y, 16000, 16000), y)
    stereo = np.stack([sine(440, 48000, 0.5), sine(880, 48000, 0.5)], axis=1)
    assert resample(stereo, 48000).shape == (8000, 2)
    with pytest.raises(ValueError):
        resample(y, 0)


@pytest.mark.parametrize(("sr", "channels"), [(48000, 2), (44100, 1), (24414, 1), (16000, 1)])
def test_load_audio_is_mono_16k(tmp_path: Path, sr: int, channels: int) -> None:
    y = sine(500, sr, 0.75)
    if channels == 2:
        y = np.stack([y, y * 0.5], axis=1)
    path = write(tmp_path / "x.WAV", wav_bytes(y, sr, "PCM_24"))
    out = load_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert len(out) == round(int(round(sr * 0.75)) * 16000 / sr)
    assert dominant_freq(out, 16000) == pytest.approx(500, abs=2)
    assert len(load_audio(path, target_sr=8000)) == round(int(round(sr * 0.75)) * 8000 / sr)


# --------------------------------------------------------------------------- #
# failure modes
# --------------------------------------------------------------------------- #


def reason_of(fn, path) -> RejectReason:
    with pytest.raises(AudioError) as info:
        fn(path)
    return info.value.reason


@pytest.mark.parametrize("fn", [probe_audio, read_audio, load_audio])
def test_git_lfs_pointer(tmp_path: Path, fn) -> None:
    path = write(tmp_path / "1001_DFA_ANG_XX.wav", LFS_POINTER)
    assert is_git_lfs_pointer(path)
    assert reason_of(fn, path) is RejectReason.GIT_LFS_POINTER


def test_is_git_lfs_pointer_false_for_audio_and_big_files(tmp_path: Path) -> None:
    assert not is_git_lfs_pointer(write(tmp_path / "a.wav", wav_bytes(sine(440, 16000, 0.1), 16000)))
    assert not is_git_lfs_pointer(write(tmp_path / "big.txt", LFS_POINTER + b"x" * 5000))
    assert not is_git_lfs_pointer(tmp_path / "missing.wav")


@pytest.mark.parametrize("content", [b"just some text, renamed to .wav\n" * 3, JPEG_HEAD])
@pytest.mark.parametrize("fn", [probe_audio, read_audio])
def test_non_audio_file(tmp_path: Path, fn, content: bytes) -> None:
    path = write(tmp_path / "x.wav", content)
    assert reason_of(fn, path) is RejectReason.NOT_AUDIO


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "FLOAT", "DOUBLE"])
@pytest.mark.parametrize("fn", [probe_audio, read_audio])
def test_truncated_data_chunk(tmp_path: Path, fn, subtype: str) -> None:
    data = wav_bytes(sine(440, 16000, 0.5), 16000, subtype)
    path = write(tmp_path / "cut.wav", data[: len(data) // 2])
    with pytest.raises(AudioError) as info:
        fn(path)
    assert info.value.reason is RejectReason.TRUNCATED_AUDIO
    assert "8000 frames" in info.value.detail  # what the header declares


def test_truncated_by_a_single_frame_but_not_by_a_partial_pad(tmp_path: Path) -> None:
    data = wav_bytes(sine(440, 16000, 0.5), 16000, "PCM_16")
    assert reason_of(probe_audio, write(tmp_path / "a.wav", data[:-2])) is RejectReason.TRUNCATED_AUDIO
    # trailing bytes after the data chunk are fine
    assert probe_audio(write(tmp_path / "b.wav", data + b"\x00" * 7)).frames == 8000


@pytest.mark.parametrize("keep", [4, 11, 30, 40])
def test_header_cut_before_data_chunk(tmp_path: Path, keep: int) -> None:
    data = wav_bytes(sine(440, 16000, 0.5), 16000, "FLOAT")  # fmt, fact, PEAK, data
    path = write(tmp_path / "h.wav", data[:keep])
    assert reason_of(read_audio, path) is RejectReason.TRUNCATED_AUDIO


def test_unsupported_codec_is_unreadable(tmp_path: Path) -> None:
    data = bytearray(wav_bytes(sine(440, 16000, 0.1), 16000))
    data[20:22] = struct.pack("<H", 0x1234)  # format tag: no such codec
    assert reason_of(read_audio, write(tmp_path / "c.wav", bytes(data))) is RejectReason.UNREADABLE_AUDIO


def test_non_finite_samples_are_unreadable(tmp_path: Path) -> None:
    y = sine(440, 16000, 0.1)
    y[10] = np.nan
    assert reason_of(read_audio, write(tmp_path / "n.wav", wav_bytes(y, 16000, "FLOAT"))) is (
        RejectReason.UNREADABLE_AUDIO
    )


@pytest.mark.parametrize("fn", [probe_audio, read_audio])
def test_empty_files(tmp_path: Path, fn) -> None:
    assert reason_of(fn, write(tmp_path / "zero_bytes.wav", b"")) is RejectReason.EMPTY_AUDIO
    no_frames = wav_bytes(np.zeros(0, np.float32), 16000)
    assert reason_of(fn, write(tmp_path / "no_frames.wav", no_frames)) is RejectReason.EMPTY_AUDIO


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe_audio(tmp_path / "nope.wav")
    with pytest.raises(FileNotFoundError):
        read_audio(tmp_path / "nope.wav")


def test_audio_error_message_names_file_and_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.wav", b"hello")
    with pytest.raises(AudioError) as info:
        read_audio(path)
    err = info.value
    assert err.reason is RejectReason.NOT_AUDIO
    assert str(path) in str(err) and "not_audio" in str(err) and err.detail in str(err)
    assert str(path) not in err.detail  # detail is for the rejected table, next to the path
    with pytest.raises(AudioError) as probed:
        probe_audio(path)
    assert probed.value.detail == err.detail == (
        "not an audio file (starts with b'hello'; libsndfile: Format not recognised.)"
    )
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.reason, copy.detail, str(copy)) == (err.reason, err.detail, str(err))
    bare = AudioError(RejectReason.TOO_SHORT, "0.1 s")
    assert str(bare) == "too_short: 0.1 s" and bare.reason is RejectReason.TOO_SHORT


def test_decode_audio_bytes_matches_read_audio(tmp_path: Path) -> None:
    stereo = np.stack([sine(440, 44100, 0.2), sine(660, 44100, 0.2)], axis=1)
    data = wav_bytes(stereo, 44100, "PCM_24")
    y, info = decode_audio_bytes(data, "mem.wav")
    assert info == AudioInfo(44100, 2, 8820, 0.2, "PCM_24")
    y2, sr = read_audio(write(tmp_path / "f.wav", data))
    assert sr == 44100
    np.testing.assert_array_equal(y, y2)


# --------------------------------------------------------------------------- #
# check_signal
# --------------------------------------------------------------------------- #


def check(y: np.ndarray, sr: int = 16000) -> None:
    check_signal(y, sr, min_duration_s=0.5, silence_dbfs=-60.0)


def test_check_signal_accepts_speech_like_signal() -> None:
    check(sine(200, 16000, 0.5))  # exactly the minimum duration
    check(np.stack([sine(200, 16000, 1.0), np.zeros(16000, np.float32)], axis=1))  # one silent channel
    check(sine(200, 16000, 1.0, amp=10 ** (-59 / 20) * 1.0001))  # peak just above -59 dBFS


def test_check_signal_rejections_in_order() -> None:
    with pytest.raises(AudioError) as info:
        check(np.zeros(0, np.float32))
    assert info.value.reason is RejectReason.EMPTY_AUDIO
    with pytest.raises(AudioError) as info:
        check(np.zeros(100, np.float32))  # too short wins over silent
    assert info.value.reason is RejectReason.TOO_SHORT
    assert "0.006 s" in info.value.detail
    with pytest.raises(AudioError) as info:
        check(sine(200, 16000, 0.49))
    assert info.value.reason is RejectReason.TOO_SHORT
    with pytest.raises(AudioError) as info:
        check(np.zeros(16000, np.float32))
    assert info.value.reason is RejectReason.SILENT_AUDIO
    assert "-inf dBFS" in info.value.detail
    with pytest.raises(AudioError) as info:
        check(sine(200, 16000, 1.0, amp=1e-4))  # -80 dBFS peak
    assert info.value.reason is RejectReason.SILENT_AUDIO
    assert "-80.0 dBFS" in info.value.detail


def test_peak_dbfs() -> None:
    assert peak_dbfs(np.array([0.0, -1.0, 0.5])) == 0.0
    assert peak_dbfs(np.array([0.1])) == pytest.approx(-20.0)
    assert peak_dbfs(np.zeros(3)) == float("-inf")
    assert peak_dbfs(np.zeros(0)) == float("-inf")
