"""The synthetic demo corpus: real layouts, names, rates, determinism, learnability."""

from __future__ import annotations

import hashlib
import json
import re
import speech_emotion.demo_corpus as demo_corpus_module
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.corpora.common import CORPORA
from speech_emotion.demo_corpus import (
    CREMA_MALE_ACTORS,
    CREMA_SENTENCES,
    MARKER_NAME,
    NATIVE_SAMPLE_RATES,
    TESS_WORDS,
    _plan_crema,
    _plan_ravdess,
    generate_demo_corpus,
    synthesize,
)

PER_CLASS = 2
SEED = 0

TESS_FILE = re.compile(r"^(OAF|YAF)_([a-z]+)_(angry|disgust|fear|happy|neutral|ps|sad)\.wav$")
TESS_FOLDER = re.compile(
    r"^(OAF|YAF)_(angry|disgust|[Ff]ear|happy|neutral|Pleasant_surprise|pleasant_surprised|[Ss]ad)$"
)
SAVEE_FILE = re.compile(r"^(sa|su|a|d|f|h|n)(\d\d)\.wav$")
RAVDESS_FILE = re.compile(r"^03-01-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)\.wav$")
CREMA_FILE = re.compile(r"^(10\d\d)_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX)\.wav$")

TESS_LABELS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy",
               "neutral": "neutral", "ps": "surprise", "sad": "sadness"}
SAVEE_LABELS = {"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral",
                "sa": "sadness", "su": "surprise"}
RAVDESS_LABELS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sadness", "05": "angry",
                  "06": "fear", "07": "disgust", "08": "surprise"}
CREMA_LABELS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
                "SAD": "sadness"}


def _sha1s(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.wav"))
    }


def _label(corpus: str, path: Path) -> tuple[str, str]:
    """(emotion, speaker) of a demo file, parsed the way the real parsers must."""
    name = path.name
    if corpus == "tess":
        m = TESS_FILE.match(name)
        return TESS_LABELS[m.group(3)], m.group(1)
    if corpus == "savee":
        m = SAVEE_FILE.match(name)
        return SAVEE_LABELS[m.group(1)], path.parent.name
    if corpus == "ravdess":
        m = RAVDESS_FILE.match(name)
        return RAVDESS_LABELS[m.group(1)], m.group(5)
    m = CREMA_FILE.match(name)
    return CREMA_LABELS[m.group(3)], m.group(1)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("demo") / "corpus"
    roots = generate_demo_corpus(out, per_class=PER_CLASS, seed=SEED, progress=False)
    return out, roots


@pytest.fixture(scope="session")
def files(demo) -> dict[str, list[Path]]:
    _, roots = demo
    return {c: sorted(roots[c].rglob("*.wav")) for c in CORPORA}


@pytest.fixture(scope="session")
def acoustics(files) -> list[dict]:
    """Loudness and median F0 of every demo file (16 kHz, librosa.yin)."""
    import librosa

    rows = []
    for corpus, paths in files.items():
        for p in paths:
            x, sr = sf.read(p, dtype="float32")
            y = librosa.resample(x, orig_sr=sr, target_sr=16000)
            f0 = librosa.yin(y, fmin=60, fmax=500, sr=16000, frame_length=1024, hop_length=256)
            frame_rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0][: len(f0)]
            voiced = frame_rms > 0.25 * frame_rms.max()
            emotion, speaker = _label(corpus, p)
            rows.append({
                "corpus": corpus, "path": p, "emotion": emotion, "speaker": speaker,
                "rms": float(np.sqrt(np.mean(x**2))), "f0": float(np.median(f0[voiced])),
            })
    return rows


def test_returns_corpus_roots_and_marker(demo):
    out, roots = demo
    assert roots == {"tess": out / "TESS", "savee": out / "SAVEE", "ravdess": out / "RAVDESS",
                     "crema": out / "CREMA-D"}
    marker = json.loads((out / MARKER_NAME).read_text())
    assert marker["per_class"] == PER_CLASS and marker["seed"] == SEED
    assert marker["complete"] is True
    assert sorted(marker["corpora"]) == sorted(CORPORA)
    assert marker["files"] == sum(1 for _ in out.rglob("*.wav"))
    # every wav sits under one of the four roots
    assert {p.relative_to(out).parts[0] for p in out.rglob("*.wav")} == {"TESS", "SAVEE", "RAVDESS", "CREMA-D"}


def test_tess_layout(demo, files):
    _, roots = demo
    counts = Counter()
    for p in files["tess"]:
        rel = p.relative_to(roots["tess"])
        assert len(rel.parts) == 3 and rel.parts[0] == "TESS Toronto emotional speech set data", rel
        folder = TESS_FOLDER.match(rel.parts[1])
        m = TESS_FILE.match(rel.parts[2])
        assert folder and m, rel
        assert folder.group(1) == m.group(1)  # folder speaker = file speaker
        assert m.group(2) in TESS_WORDS
        assert folder.group(2).lower().startswith(m.group(3)[0])  # ps <-> Pleasant_surprise etc.
        counts[TESS_LABELS[m.group(3)]] += 1
    assert counts == dict.fromkeys(TESS_LABELS.values(), PER_CLASS)
    folders = {p.parent.name for p in files["tess"]}
    # the inconsistent capitalisation of the popular copies is reproduced
    assert {"OAF_Fear", "OAF_Pleasant_surprise", "YAF_pleasant_surprised", "OAF_Sad"} & folders
    assert {p.name.split("_")[0] for p in files["tess"]} == {"OAF", "YAF"}


def test_savee_layout(demo, files):
    _, roots = demo
    counts = Counter()
    numbers = defaultdict(list)
    for p in files["savee"]:
        rel = p.relative_to(roots["savee"])
        assert len(rel.parts) == 3 and rel.parts[0] == "AudioData", rel
        assert rel.parts[1] in {"DC", "JE", "JK", "KL"}
        m = SAVEE_FILE.match(rel.parts[2])
        assert m, rel
        counts[SAVEE_LABELS[m.group(1)]] += 1
        numbers[(rel.parts[1], m.group(1))].append(int(m.group(2)))
    expected = dict.fromkeys(SAVEE_LABELS.values(), PER_CLASS)
    expected["neutral"] = 2 * PER_CLASS  # neutral is doubled, as in SAVEE
    assert counts == expected
    for nums in numbers.values():  # numbered 01, 02, ... per speaker and emotion
        assert sorted(nums) == list(range(1, len(nums) + 1))
    assert {p.parent.name for p in files["savee"]} == {"DC", "JE", "JK", "KL"}


def test_ravdess_layout(demo, files):
    _, roots = demo
    counts = Counter()
    for p in files["ravdess"]:
        rel = p.relative_to(roots["ravdess"])
        assert len(rel.parts) == 2 and re.fullmatch(r"Actor_\d\d", rel.parts[0]), rel
        m = RAVDESS_FILE.match(rel.parts[1])
        assert m, rel
        emotion, intensity, _statement, _rep, actor = m.groups()
        assert rel.parts[0] == f"Actor_{actor}"
        if emotion == "01":
            assert intensity == "01"  # neutral has no strong intensity
        counts[RAVDESS_LABELS[emotion]] += 1
    assert counts == dict.fromkeys(RAVDESS_LABELS.values(), PER_CLASS)
    assert counts["calm"] == PER_CLASS  # the parser drops calm, but it is in the corpus
    assert {p.parent.name for p in files["ravdess"]} == {"Actor_01", "Actor_02", "Actor_03", "Actor_04"}


def test_crema_layout(demo, files):
    _, roots = demo
    counts = Counter()
    for p in files["crema"]:
        rel = p.relative_to(roots["crema"])
        assert len(rel.parts) == 2 and rel.parts[0] == "AudioWAV", rel
        m = CREMA_FILE.match(rel.parts[1])
        assert m, rel
        actor, sentence, emotion, level = m.groups()
        assert 1001 <= int(actor) <= 1091
        assert sentence in CREMA_SENTENCES
        if sentence == "IEO" and emotion != "NEU":
            assert level in {"LO", "MD", "HI"}
        else:
            assert level == "XX"
        counts[CREMA_LABELS[emotion]] += 1
    assert counts == dict.fromkeys(CREMA_LABELS.values(), PER_CLASS)
    assert "surprise" not in counts
    actors = {int(p.name[:4]) for p in files["crema"]}
    assert actors & CREMA_MALE_ACTORS and actors - CREMA_MALE_ACTORS  # both genders


def test_sample_rates_and_format(files):
    for corpus, paths in files.items():
        for p in paths:
            info = sf.info(p)
            assert info.samplerate == NATIVE_SAMPLE_RATES[corpus], p
            assert info.channels == 1 and info.subtype == "PCM_16" and info.format == "WAV", p
    assert NATIVE_SAMPLE_RATES == {"tess": 24414, "savee": 44100, "ravdess": 48000, "crema": 16000}


def test_audio_is_speech_like(files):
    for paths in files.values():
        for p in paths:
            x, sr = sf.read(p, dtype="float32")
            assert 0.5 <= len(x) / sr <= 8.0, p
            assert np.sqrt(np.mean(x**2)) > 0.005 and np.abs(x).max() > 0.05, p
            assert np.abs(x).max() < 1.0, p  # no clipping
            edge = int(0.05 * sr)  # leading and trailing silence, with a faint noise floor
            assert 0 < np.abs(x[:edge]).max() < 0.02 and 0 < np.abs(x[-edge:]).max() < 0.02, p


def test_speaker_genders():
    for spec in _plan_ravdess(PER_CLASS, SEED):
        actor = int(Path(spec["relpath"]).stem.split("-")[-1])
        assert ("+m" in spec["voice"]) == (actor % 2 == 1), spec["relpath"]
    for spec in _plan_crema(PER_CLASS, SEED):
        actor = int(Path(spec["relpath"]).name[:4])
        assert ("+m" in spec["voice"]) == (actor in CREMA_MALE_ACTORS), spec["relpath"]
    assert {1001, 1005, 1011, 1014, 1015} <= CREMA_MALE_ACTORS
    assert not {1002, 1003, 1004, 1006, 1007} & CREMA_MALE_ACTORS


def test_voices_sound_male_and_female(acoustics):
    def mean_f0(rows):
        return float(np.mean([r["f0"] for r in rows]))

    rav = [r for r in acoustics if r["corpus"] == "ravdess"]
    assert mean_f0([r for r in rav if int(r["speaker"]) % 2]) + 40 < mean_f0(
        [r for r in rav if not int(r["speaker"]) % 2])
    crema = [r for r in acoustics if r["corpus"] == "crema"]
    assert mean_f0([r for r in crema if int(r["speaker"]) in CREMA_MALE_ACTORS]) + 40 < mean_f0(
        [r for r in crema if int(r["speaker"]) not in CREMA_MALE_ACTORS])
    savee = [r for r in acoustics if r["corpus"] == "savee"]  # all male
    tess = [r for r in acoustics if r["corpus"] == "tess"]  # all female
    assert mean_f0(savee) + 40 < mean_f0(tess)


def test_emotions_differ_measurably(acoustics):
    by = defaultdict(list)
    for r in acoustics:
        by[r["emotion"]].append(r)

    def mean(emotion, key):
        return float(np.mean([r[key] for r in by[emotion]]))

    assert mean("angry", "rms") > 1.5 * mean("sadness", "rms")
    assert mean("angry", "rms") > mean("neutral", "rms")
    for high in ("fear", "happy", "surprise"):
        assert mean(high, "f0") > 1.15 * mean("sadness", "f0"), high
    # ... but not trivially separable: loudness distributions of neighbouring classes overlap
    happy = [r["rms"] for r in by["happy"]]
    angry = [r["rms"] for r in by["angry"]]
    assert min(angry) < max(happy)


def test_deterministic(demo, tmp_path):
    out, roots = demo
    again = generate_demo_corpus(tmp_path / "same", per_class=PER_CLASS, seed=SEED, progress=False)
    for corpus in CORPORA:
        assert _sha1s(again[corpus]) == _sha1s(roots[corpus]), corpus
    # a corpus alone is the same as within the full set
    alone = generate_demo_corpus(tmp_path / "alone", per_class=PER_CLASS, seed=SEED, corpora=["crema"],
                                 progress=False)
    assert set(alone) == {"crema"}
    assert _sha1s(alone["crema"]) == _sha1s(roots["crema"])
    assert not (tmp_path / "alone" / "TESS").exists()


def test_different_seed_differs(demo, tmp_path):
    _, roots = demo
    other = generate_demo_corpus(tmp_path / "other", per_class=PER_CLASS, seed=SEED + 1,
                                 corpora=["savee", "ravdess"], progress=False)
    for corpus in ("savee", "ravdess"):
        a, b = _sha1s(roots[corpus]), _sha1s(other[corpus])
        common = set(a) & set(b)
        assert common, corpus  # SAVEE/RAVDESS names repeat across seeds ...
        assert all(a[k] != b[k] for k in common), corpus  # ... their audio does not


def test_idempotent(demo, monkeypatch):
    out, roots = demo
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    def no_synthesis(*args, **kwargs):
        raise AssertionError("an intact demo corpus must not be synthesised again")

    monkeypatch.setattr(demo_corpus_module, "_run_jobs", no_synthesis)
    again = generate_demo_corpus(out, per_class=PER_CLASS, seed=SEED, progress=False)
    assert again == roots
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_regenerates_with_other_parameters(tmp_path):
    out = tmp_path / "c"
    generate_demo_corpus(out, per_class=2, seed=0, corpora=["tess"], progress=False)
    generate_demo_corpus(out, per_class=1, seed=0, corpora=["tess"], progress=False)
    assert len(list(out.rglob("*.wav"))) == 7  # no stale files from the first run
    assert json.loads((out / MARKER_NAME).read_text())["per_class"] == 1
    # a deleted file is noticed and the corpus rebuilt
    next(out.rglob("*.wav")).unlink()
    generate_demo_corpus(out, per_class=1, seed=0, corpora=["tess"], progress=False)
    assert len(list(out.rglob("*.wav"))) == 7


def test_regeneration_deletes_only_the_files_it_wrote(tmp_path):
    out = tmp_path / "c"
    roots = generate_demo_corpus(out, per_class=1, seed=0, corpora=["tess"], progress=False)
    mine = roots["tess"] / "user_added" / "OAF_extra_angry.wav"
    mine.parent.mkdir()
    mine.write_bytes(b"a user's own recording")
    # a user's file beside the demo's is part of the corpus, not a reason to regenerate
    marker = (out / MARKER_NAME).stat().st_mtime_ns
    generate_demo_corpus(out, per_class=1, seed=0, corpora=["tess"], progress=False)
    assert (out / MARKER_NAME).stat().st_mtime_ns == marker
    generate_demo_corpus(out, per_class=2, seed=0, corpora=["tess"], progress=False)
    assert mine.read_bytes() == b"a user's own recording"
    assert len(list(out.rglob("*.wav"))) == 14 + 1


def _generate_in_a_process(out: str, queue) -> None:
    try:
        roots = generate_demo_corpus(out, per_class=1, seed=0, corpora=["savee"], progress=False)
        queue.put(sorted(p.name for p in roots["savee"].rglob("*.wav")))
    except Exception as exc:  # reported to the test
        queue.put(repr(exc))


def test_two_processes_generating_at_once_both_get_the_corpus(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_generate_in_a_process, args=(str(tmp_path / "c"), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert isinstance(results[0], list) and results[0] == results[1] and len(results[0]) == 8, results


def test_refuses_to_overwrite_a_real_corpus(tmp_path):
    real = tmp_path / "data" / "RAVDESS" / "Actor_01"
    real.mkdir(parents=True)
    (real / "03-01-05-01-02-01-01.wav").write_bytes(b"RIFF")
    with pytest.raises(FileExistsError):
        generate_demo_corpus(tmp_path / "data", per_class=1, progress=False)
    assert (real / "03-01-05-01-02-01-01.wav").read_bytes() == b"RIFF"


@pytest.mark.parametrize("kwargs", [{"corpora": ["timit"]}, {"per_class": 0}, {"per_class": 1000}])
def test_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_demo_corpus(tmp_path / "bad", progress=False, **kwargs)


def test_synthesize():
    audio, sr = synthesize("Kids are talking by the door.", voice="en-us+f3", pitch=60, pitch_range=70,
                           rate=170, volume=100)
    assert sr == 22050 and audio.dtype == np.float32 and audio.ndim == 1
    assert 0.8 < len(audio) / sr < 4.0 and np.abs(audio).max() > 0.1
    loud, _ = synthesize("Kids are talking by the door.", voice="en-us+m3", pitch=50, pitch_range=50,
                         rate=170, volume=160)
    soft, _ = synthesize("Kids are talking by the door.", voice="en-us+m3", pitch=50, pitch_range=50,
                         rate=170, volume=60)
    assert np.sqrt(np.mean(loud**2)) > 1.5 * np.sqrt(np.mean(soft**2))
    fast, _ = synthesize("Kids are talking by the door.", voice="en-us+m3", pitch=50, pitch_range=50,
                         rate=260, volume=100)
    assert len(fast) < 0.85 * len(loud)
    with pytest.raises(ValueError):
        synthesize("hello", voice="no-such-voice+x9", pitch=50, pitch_range=50, rate=170, volume=100)


def test_worker_failure_is_reported_and_recovered(tmp_path, monkeypatch):
    from speech_emotion import demo_corpus

    real_plan = demo_corpus._PLANNERS["crema"]

    def broken_plan(per_class, seed):
        return [{**spec, "voice": "no-such-voice+x9"} for spec in real_plan(per_class, seed)]

    out = tmp_path / "broken"
    monkeypatch.setitem(demo_corpus._PLANNERS, "crema", broken_plan)
    with pytest.raises(RuntimeError, match="no-such-voice"):
        generate_demo_corpus(out, per_class=1, corpora=["crema"], progress=False)
    assert json.loads((out / MARKER_NAME).read_text())["complete"] is False
    monkeypatch.setitem(demo_corpus._PLANNERS, "crema", real_plan)
    roots = generate_demo_corpus(out, per_class=1, corpora=["crema"], progress=False)  # takes over
    assert len(list(roots["crema"].rglob("*.wav"))) == 6
