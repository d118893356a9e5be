"""Tests for the corpus parsers and speech_emotion.corpora.ingest."""

from __future__ import annotations

import io
import logging
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speech_emotion.corpora import (
    CORPORA,
    EMOTIONS,
    IngestOptions,
    NameParseError,
    ParsedName,
    Rejection,
    RejectReason,
    Utterance,
    crema,
    list_files,
    ravdess,
    savee,
    tess,
)
from speech_emotion.corpora.ingest import CorpusNamingError, IngestResult, ingest_corpora

LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 98348\n"
)
NATIVE_SR = {"tess": 24414, "savee": 44100, "ravdess": 48000, "crema": 16000}


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def tone(path: Path, sr: int = 16000, seconds: float = 0.6, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    """A short tone plus noise, different for every path (no accidental duplicates)."""
    rng = np.random.default_rng(zlib.crc32(str(path).encode()))
    n = int(round(sr * seconds))
    t = np.arange(n) / sr
    y = amp * np.sin(2 * np.pi * rng.uniform(150, 400) * t) + 0.01 * rng.standard_normal(n)
    y = y.astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def wav(path: Path, sr: int = 16000, seconds: float = 0.6, channels: int = 1, subtype: str = "PCM_16",
        signal: np.ndarray | None = None) -> Path:
    """Write a small wav file (parents created) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y = tone(path, sr, seconds, channels) if signal is None else signal
    sf.write(path, y, sr, subtype=subtype, format="WAV")
    return path


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncated_wav_bytes(sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(Path("t"), sr, 0.8), sr, subtype="PCM_16", format="WAV")
    data = buf.getvalue()
    return data[: len(data) // 2]


def ingest(roots: dict, **options) -> IngestResult:
    result = ingest_corpora(roots, IngestOptions(**options), progress=False)
    assert result.found == len(result.utterances) + len(result.rejected)
    assert list(result.utterances.columns) == Utterance.columns()
    assert list(result.rejected.columns) == Rejection.columns()
    assert result.utterances["path"].tolist() == sorted(result.utterances["path"])
    assert result.rejected["path"].tolist() == sorted(result.rejected["path"])
    return result


def by_name(df: pd.DataFrame) -> dict[str, dict]:
    """Rows keyed by path relative to nothing: the file name, which is unique in these trees."""
    out = {Path(r["path"]).name: r for r in df.to_dict("records")}
    assert len(out) == len(df), "file names must be unique in a test tree"
    return out


def reasons(result: IngestResult) -> dict[str, str]:
    return {name: r["reason"] for name, r in by_name(result.rejected).items()}


def parse_error(parser, path: str, **kw) -> NameParseError:
    with pytest.raises(NameParseError) as info:
        parser(Path(path), **kw)
    return info.value


# --------------------------------------------------------------------------- #
# TESS names
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("name", "emotion", "label"),
    [
        ("OAF_back_angry.wav", "angry", "angry"),
        ("OAF_back_disgust.wav", "disgust", "disgust"),
        ("OAF_back_fear.wav", "fear", "fear"),
        ("OAF_back_happy.wav", "happy", "happy"),
        ("OAF_back_neutral.wav", "neutral", "neutral"),
        ("OAF_back_sad.wav", "sadness", "sad"),
        ("YAF_wire_ps.wav", "surprise", "ps"),
        ("YAF_wire_pleasant_surprise.wav", "surprise", "pleasant_surprise"),
        ("YAF_wire_pleasant_surprised.wav", "surprise", "pleasant_surprised"),
        ("YAF_wire_Fear.WAV", "fear", "Fear"),
    ],
)
def test_tess_emotions(name: str, emotion: str, label: str) -> None:
    parsed = tess.parse_name(Path("TESS Toronto emotional speech set data/OAF_Sad") / name)
    assert parsed.emotion == emotion
    assert parsed.source_label == label
    assert parsed.corpus == "tess" and parsed.gender == "female"
    assert parsed.speaker == f"tess_{name[:3]}"
    assert parsed.sentence == name.split("_")[1]


def test_tess_label_comes_from_the_name_not_the_folder() -> None:
    parsed = tess.parse_name(Path("YAF_pleasant_surprised/YAF_dog_angry.wav"))
    assert parsed == ParsedName("tess", "tess_YAF", "female", "angry", "angry", "dog")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("OAF_back_bored.wav", RejectReason.UNKNOWN_EMOTION),
        ("OAF_back_surprised.wav", RejectReason.UNKNOWN_EMOTION),
        ("XAF_back_angry.wav", RejectReason.UNPARSEABLE_NAME),
        ("OAF_angry.wav", RejectReason.UNPARSEABLE_NAME),
        ("back angry.wav", RejectReason.UNPARSEABLE_NAME),
        ("OAF_back_angry (1).wav", RejectReason.UNPARSEABLE_NAME),
    ],
)
def test_tess_bad_names(name: str, reason: RejectReason) -> None:
    err = parse_error(tess.parse_name, name)
    assert err.reason is reason
    assert repr(name) in err.detail


# --------------------------------------------------------------------------- #
# SAVEE names
# --------------------------------------------------------------------------- #

SAVEE_PREFIXES = [("a", "angry"), ("d", "disgust"), ("f", "fear"), ("h", "happy"), ("n", "neutral"),
                  ("sa", "sadness"), ("su", "surprise")]


@pytest.mark.parametrize(("prefix", "emotion"), SAVEE_PREFIXES)
def test_savee_prefixes_both_layouts(prefix: str, emotion: str) -> None:
    original = savee.parse_name(Path(f"AudioData/JK/{prefix}07.wav"))
    kaggle = savee.parse_name(Path(f"ALL/JK_{prefix}07.wav"))
    expected = ParsedName("savee", "savee_JK", "male", emotion, prefix, f"{prefix}07")
    assert original == expected
    assert kaggle == expected


def test_savee_speaker_from_name_wins_and_case() -> None:
    assert savee.parse_name(Path("AudioData/DC/KL_su12.WAV")).speaker == "savee_KL"
    assert savee.parse_name(Path("audiodata/dc/SA03.wav")) == ParsedName(
        "savee", "savee_DC", "male", "sadness", "sa", "sa03"
    )


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("AudioData/DC/s01.wav", RejectReason.UNKNOWN_EMOTION),  # bare "s" is not sa/su
        ("ALL/DC_x01.wav", RejectReason.UNKNOWN_EMOTION),
        ("ALL/DC_sad01.wav", RejectReason.UNKNOWN_EMOTION),
        ("ALL/a01.wav", RejectReason.UNPARSEABLE_NAME),  # no speaker anywhere
        ("ALL/XY_a01.wav", RejectReason.UNPARSEABLE_NAME),
        ("AudioData/DC/a1.wav", RejectReason.UNPARSEABLE_NAME),
        ("AudioData/DC/a001.wav", RejectReason.UNPARSEABLE_NAME),
    ],
)
def test_savee_bad_names(path: str, reason: RejectReason) -> None:
    assert parse_error(savee.parse_name, path).reason is reason


# --------------------------------------------------------------------------- #
# RAVDESS names
# --------------------------------------------------------------------------- #

RAVDESS_CODES = [("01", "neutral"), ("03", "happy"), ("04", "sadness"), ("05", "angry"), ("06", "fear"),
                 ("07", "disgust"), ("08", "surprise")]


@pytest.mark.parametrize(("code", "emotion"), RAVDESS_CODES)
def test_ravdess_emotion_codes(code: str, emotion: str) -> None:
    parsed = ravdess.parse_name(Path(f"Actor_12/03-01-{code}-02-02-01-12.wav"))
    assert parsed == ParsedName("ravdess", "ravdess_12", "female", emotion, code, "02")


@pytest.mark.parametrize(("actor", "gender"), [("01", "male"), ("02", "female"), ("23", "male"), ("24", "female")])
def test_ravdess_actor_gender(actor: str, gender: str) -> None:
    parsed = ravdess.parse_name(Path(f"03-01-05-01-01-01-{actor}.wav"))
    assert (parsed.speaker, parsed.gender) == (f"ravdess_{actor}", gender)


def test_ravdess_song_and_calm_policy() -> None:
    song, calm, sung_calm = (Path("03-02-03-01-01-01-05.wav"), Path("03-01-02-01-01-01-05.wav"),
                             Path("03-02-02-01-01-01-05.wav"))
    default = ravdess.parse_name(song)
    assert default.emotion is None and default.excluded == "song, excluded by option ravdess_song=False"
    assert ravdess.parse_name(song, IngestOptions(ravdess_song=True)).emotion == "happy"

    dropped = ravdess.parse_name(calm)
    assert dropped.emotion is None and dropped.excluded == "calm, excluded by option ravdess_calm='drop'"
    merged = ravdess.parse_name(calm, IngestOptions(ravdess_calm="neutral"))
    assert (merged.emotion, merged.source_label, merged.excluded) == ("neutral", "02", None)

    assert ravdess.parse_name(sung_calm, IngestOptions(ravdess_calm="neutral")).excluded.startswith("song")
    both = IngestOptions(ravdess_song=True, ravdess_calm="neutral")
    assert ravdess.parse_name(sung_calm, both).emotion == "neutral"
    assert ravdess.parse_name(sung_calm, IngestOptions(ravdess_song=True)).excluded.startswith("calm")


@pytest.mark.parametrize(
    ("name", "reason", "words"),
    [
        ("01-01-05-01-01-01-01.wav", RejectReason.UNPARSEABLE_NAME, "full-AV video"),
        ("02-01-05-01-01-01-01.wav", RejectReason.UNPARSEABLE_NAME, "video-only"),
        ("04-01-05-01-01-01-01.wav", RejectReason.UNPARSEABLE_NAME, "modality 04"),
        ("03-03-05-01-01-01-01.wav", RejectReason.UNPARSEABLE_NAME, "vocal channel 03"),
        ("03-01-09-01-01-01-01.wav", RejectReason.UNKNOWN_EMOTION, "emotion code 09"),
        ("03-01-00-01-01-01-01.wav", RejectReason.UNKNOWN_EMOTION, "emotion code 00"),
        ("03-01-05-03-01-01-01.wav", RejectReason.UNPARSEABLE_NAME, "intensity 03"),
        ("03-01-05-01-03-01-01.wav", RejectReason.UNPARSEABLE_NAME, "statement 03"),
        ("03-01-05-01-01-03-01.wav", RejectReason.UNPARSEABLE_NAME, "repetition 03"),
        ("03-01-05-01-01-01-25.wav", RejectReason.UNPARSEABLE_NAME, "actor 25"),
        ("03-01-05-01-01-01.wav", RejectReason.UNPARSEABLE_NAME, "seven two-digit fields"),
        ("03_01_05_01_01_01_01.wav", RejectReason.UNPARSEABLE_NAME, "seven two-digit fields"),
    ],
)
def test_ravdess_bad_names(name: str, reason: RejectReason, words: str) -> None:
    err = parse_error(ravdess.parse_name, name)
    assert err.reason is reason
    assert words in err.detail


# --------------------------------------------------------------------------- #
# CREMA-D names
# --------------------------------------------------------------------------- #

CREMA_CODES = [("ANG", "angry"), ("DIS", "disgust"), ("FEA", "fear"), ("HAP", "happy"), ("NEU", "neutral"),
               ("SAD", "sadness")]


@pytest.mark.parametrize(("code", "emotion"), CREMA_CODES)
@pytest.mark.parametrize("level", ["LO", "MD", "HI", "XX"])
def test_crema_emotion_codes_and_levels(code: str, emotion: str, level: str) -> None:
    parsed = crema.parse_name(Path(f"AudioWAV/1091_WSI_{code}_{level}.wav"))
    assert parsed == ParsedName("crema", "crema_1091", "female", emotion, code, "WSI")


def test_crema_embedded_genders() -> None:
    assert len(crema.MALE_ACTORS) == 48
    assert len(set(crema.ACTORS) - crema.MALE_ACTORS) == 43
    assert crema.parse_name(Path("1001_DFA_ANG_XX.wav")).gender == "male"
    assert crema.parse_name(Path("1002_DFA_ANG_XX.wav")).gender == "female"
    assert crema.parse_name(Path("1090_DFA_ANG_XX.wav")).gender == "male"
    assert crema.parse_name(Path("1091_DFA_ANG_XX.wav")).gender == "female"
    assert crema.parse_name(Path("1002_DFA_ANG_XX.wav"), genders={1002: "male"}).gender == "male"
    assert crema.parse_name(Path("1001_DFA_ANG_XX.wav"), genders={1002: "male"}).gender == "male"


def test_crema_all_sentence_codes() -> None:
    codes = "IEO TIE IOM IWW TAI MTI IWL ITH DFA ITS TSI WSI".split()
    assert sorted(crema.SENTENCES) == sorted(codes)
    for code in codes:
        assert crema.parse_name(Path(f"1050_{code}_NEU_XX.wav")).sentence == code
    assert crema.parse_name(Path("1050_dfa_neu_xx.WAV")).source_label == "NEU"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("1001_DFA_SUR_XX.wav", RejectReason.UNKNOWN_EMOTION),
        ("1001_DFA_CAL_XX.wav", RejectReason.UNKNOWN_EMOTION),
        ("1000_DFA_ANG_XX.wav", RejectReason.UNPARSEABLE_NAME),
        ("1092_DFA_ANG_XX.wav", RejectReason.UNPARSEABLE_NAME),
        ("01001_DFA_ANG_XX.wav", RejectReason.UNPARSEABLE_NAME),
        ("1001_ABC_ANG_XX.wav", RejectReason.UNPARSEABLE_NAME),
        ("1001_DFA_ANG_ZZ.wav", RejectReason.UNPARSEABLE_NAME),
        ("1001_DFA_ANG.wav", RejectReason.UNPARSEABLE_NAME),
    ],
)
def test_crema_bad_names(name: str, reason: RejectReason) -> None:
    assert parse_error(crema.parse_name, name).reason is reason


def test_crema_demographics_csv(tmp_path: Path) -> None:
    csv_path = put(tmp_path / "VideoDemographics.csv",
                   b"ActorID,Age,Sex,Race,Ethnicity\n1001,51,Female,Caucasian,Not Hispanic\n"
                   b"1002,21,Male,Caucasian,Not Hispanic\nbad,1,Other,,\n")
    assert crema.read_demographics(csv_path) == {1001: "female", 1002: "male"}
    # found among the listed files, or next to a root that is AudioWAV itself
    assert crema.find_demographics(tmp_path, [csv_path]) == {1001: "female", 1002: "male"}
    (tmp_path / "AudioWAV").mkdir()
    assert crema.find_demographics(tmp_path / "AudioWAV", []) == {1001: "female", 1002: "male"}
    assert crema.find_demographics(tmp_path / "elsewhere", []) is None
    broken = put(tmp_path / "x" / "VideoDemographics.csv", b"who,what\n1,2\n")
    assert crema.find_demographics(tmp_path / "x", [broken]) is None


# --------------------------------------------------------------------------- #
# ingestion: layouts, labels and every rejection reason
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def corpora_tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small copy of each corpus in its real layouts, with one of every problem."""
    base = tmp_path_factory.mktemp("corpora")
    roots = {c: base / c for c in CORPORA}

    t = roots["tess"] / "TESS Toronto emotional speech set data"
    sr = NATIVE_SR["tess"]
    wav(t / "OAF_Fear" / "OAF_back_fear.wav", sr)
    wav(t / "OAF_angry" / "OAF_bite_happy.wav", sr)  # folder disagrees: name wins
    wav(t / "YAF_pleasant_surprised" / "YAF_wire_pleasant_surprised.wav", sr)
    wav(t / "YAF_pleasant_surprised" / "YAF_dog_ps.WAV", sr)
    wav(t / "YAF_sad" / "YAF_germ_bored.wav", sr)  # unknown emotion
    put(t / ".DS_Store", b"\x00\x00\x00\x01Bud1")
    put(roots["tess"] / "README.txt", b"TESS\n")

    s, sr = roots["savee"], NATIVE_SR["savee"]
    wav(s / "AudioData" / "DC" / "a01.wav", sr)
    wav(s / "AudioData" / "JE" / "sa02.wav", sr)
    wav(s / "AudioData" / "JK" / "su03.wav", sr)
    wav(s / "AudioData" / "JK" / "s04.wav", sr)  # neither sa nor su
    wav(s / "ALL" / "KL_n01.wav", sr)
    wav(s / "ALL" / "DC_h05.wav", sr, channels=2, subtype="PCM_24")
    wav(s / "ALL" / "f06.wav", sr)  # no speaker in name or folder
    put(s / "AudioData" / "Info.txt", b"SAVEE\n")

    r, sr = roots["ravdess"], NATIVE_SR["ravdess"]
    wav(r / "Actor_01" / "03-01-05-01-02-01-01.wav", sr)  # speech angry, male
    wav(r / "Actor_02" / "03-01-06-02-01-02-02.wav", sr)  # speech fearful, female
    wav(r / "Actor_02" / "03-01-02-01-01-01-02.wav", sr)  # calm: dropped
    wav(r / "Actor_02" / "03-02-03-01-01-01-02.wav", sr)  # song: excluded
    wav(r / "Actor_02" / "01-01-03-01-01-01-02.wav", sr)  # video modality
    wav(r / "Actor_03" / "03-01-09-01-01-01-03.wav", sr)  # unknown emotion code
    wav(r / "Actor_03" / "03-01-04-01-01-01-03.wav", sr, seconds=0.3)  # too short
    put(r / "Actor_03" / "03-01-03-01-01-01-03.wav", truncated_wav_bytes(sr))  # truncated

    c, sr = roots["crema"] / "AudioWAV", NATIVE_SR["crema"]
    wav(c / "1001_DFA_ANG_XX.wav", sr)
    wav(c / "1002_IEO_NEU_HI.wav", sr, subtype="PCM_U8")
    wav(c / "1003_TIE_DIS_LO.wav", sr, subtype="FLOAT")
    wav(c / "1076_MTI_SAD_XX.wav", sr, signal=np.zeros(sr, np.float32))  # no signal
    wav(c / "1004_IOM_SUR_XX.wav", sr)  # no surprise in CREMA-D
    wav(c / "1004_ABC_HAP_XX.wav", sr)  # unknown sentence code
    put(c / "1005_IOM_FEA_LO.wav", LFS_POINTER)
    put(c / "1006_IOM_FEA_MD.wav", b"this is not audio, just text renamed to .wav\n" * 4)
    wav(c / "1007_IOM_HAP_HI.wav", sr, signal=np.zeros(0, np.float32))  # header, no frames
    put(c / "1008_ITS_HAP_HI.wav", b"")  # zero bytes
    put(c / "1009_ITS_SAD_LO.wav", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\x00" * 16
        + b"data\x04\x00\x00\x00\x00\x00\x00\x00")  # format tag 0: undecodable
    return roots


@pytest.fixture(scope="module")
def default_result(corpora_tree: dict[str, Path]) -> IngestResult:
    return ingest(corpora_tree)


def test_ingest_counts_add_up(default_result: IngestResult, corpora_tree: dict[str, Path]) -> None:
    n_files = sum(len(list_files(root)) for root in corpora_tree.values())
    assert default_result.found == n_files == 7 + 8 + 8 + 11
    assert len(default_result.utterances) == 4 + 5 + 2 + 3
    assert len(default_result.rejected) == 3 + 3 + 6 + 8
    per_corpus = default_result.utterances.groupby("corpus").size().to_dict()
    assert per_corpus == {"tess": 4, "savee": 5, "ravdess": 2, "crema": 3}


def test_ingest_utterances(default_result: IngestResult) -> None:
    rows = by_name(default_result.utterances)
    got = {n: (r["corpus"], r["speaker"], r["gender"], r["emotion"], r["source_label"], r["sentence"])
           for n, r in rows.items()}
    assert got == {
        "OAF_back_fear.wav": ("tess", "tess_OAF", "female", "fear", "fear", "back"),
        "OAF_bite_happy.wav": ("tess", "tess_OAF", "female", "happy", "happy", "bite"),
        "YAF_wire_pleasant_surprised.wav": ("tess", "tess_YAF", "female", "surprise", "pleasant_surprised", "wire"),
        "YAF_dog_ps.WAV": ("tess", "tess_YAF", "female", "surprise", "ps", "dog"),
        "a01.wav": ("savee", "savee_DC", "male", "angry", "a", "a01"),
        "sa02.wav": ("savee", "savee_JE", "male", "sadness", "sa", "sa02"),
        "su03.wav": ("savee", "savee_JK", "male", "surprise", "su", "su03"),
        "KL_n01.wav": ("savee", "savee_KL", "male", "neutral", "n", "n01"),
        "DC_h05.wav": ("savee", "savee_DC", "male", "happy", "h", "h05"),
        "03-01-05-01-02-01-01.wav": ("ravdess", "ravdess_01", "male", "angry", "05", "02"),
        "03-01-06-02-01-02-02.wav": ("ravdess", "ravdess_02", "female", "fear", "06", "01"),
        "1001_DFA_ANG_XX.wav": ("crema", "crema_1001", "male", "angry", "ANG", "DFA"),
        "1002_IEO_NEU_HI.wav": ("crema", "crema_1002", "female", "neutral", "NEU", "IEO"),
        "1003_TIE_DIS_LO.wav": ("crema", "crema_1003", "female", "disgust", "DIS", "TIE"),
        # 1076_MTI_SAD_XX is silent
    }
    for name, r in rows.items():
        assert Path(r["path"]).is_absolute() and Path(r["path"]).is_file()
        assert r["sample_rate"] == NATIVE_SR[r["corpus"]]
        assert r["duration_s"] == pytest.approx(0.6, abs=1e-4)
        assert r["channels"] == (2 if name == "DC_h05.wav" else 1)
        assert len(r["content_hash"]) == 40
        assert r["emotion"] in EMOTIONS


def test_ingest_rejections(default_result: IngestResult) -> None:
    R = RejectReason
    assert reasons(default_result) == {
        "YAF_germ_bored.wav": R.UNKNOWN_EMOTION.value,
        ".DS_Store": R.NOT_AUDIO.value,
        "README.txt": R.NOT_AUDIO.value,
        "s04.wav": R.UNKNOWN_EMOTION.value,
        "f06.wav": R.UNPARSEABLE_NAME.value,
        "Info.txt": R.NOT_AUDIO.value,
        "03-01-02-01-01-01-02.wav": R.EXCLUDED_LABEL.value,
        "03-02-03-01-01-01-02.wav": R.EXCLUDED_LABEL.value,
        "01-01-03-01-01-01-02.wav": R.UNPARSEABLE_NAME.value,
        "03-01-09-01-01-01-03.wav": R.UNKNOWN_EMOTION.value,
        "03-01-04-01-01-01-03.wav": R.TOO_SHORT.value,
        "03-01-03-01-01-01-03.wav": R.TRUNCATED_AUDIO.value,
        "1076_MTI_SAD_XX.wav": R.SILENT_AUDIO.value,
        "1004_IOM_SUR_XX.wav": R.UNKNOWN_EMOTION.value,
        "1004_ABC_HAP_XX.wav": R.UNPARSEABLE_NAME.value,
        "1005_IOM_FEA_LO.wav": R.GIT_LFS_POINTER.value,
        "1006_IOM_FEA_MD.wav": R.NOT_AUDIO.value,
        "1007_IOM_HAP_HI.wav": R.EMPTY_AUDIO.value,
        "1008_ITS_HAP_HI.wav": R.EMPTY_AUDIO.value,
        "1009_ITS_SAD_LO.wav": R.UNREADABLE_AUDIO.value,
    }
    details = {n: r["detail"] for n, r in by_name(default_result.rejected).items()}
    assert details["README.txt"] == "not a .wav file"
    assert details["03-02-03-01-01-01-02.wav"] == "song, excluded by option ravdess_song=False"
    assert details["03-01-02-01-01-01-02.wav"] == "calm, excluded by option ravdess_calm='drop'"
    assert "full-AV video" in details["01-01-03-01-01-01-02.wav"]
    assert "'bored'" in details["YAF_germ_bored.wav"]
    assert "'s'" in details["s04.wav"]
    assert "0.300 s" in details["03-01-04-01-01-01-03.wav"]
    assert "38400 frames" in details["03-01-03-01-01-01-03.wav"]
    assert details["1006_IOM_FEA_MD.wav"].startswith("not an audio file (starts with b'this is ';")
    assert "Malformed 'fmt ' chunk" in details["1009_ITS_SAD_LO.wav"]
    assert "BytesIO" not in "".join(details.values())
    corpora = {n: r["corpus"] for n, r in by_name(default_result.rejected).items()}
    assert corpora["README.txt"] == "tess" and corpora["Info.txt"] == "savee"
    assert all(Path(p).is_absolute() for p in default_result.rejected["path"])


def test_every_reject_reason_is_exercised(default_result: IngestResult, tmp_path: Path) -> None:
    root = tmp_path / "ravdess"
    a = wav(root / "Actor_01" / "03-01-05-01-01-01-01.wav", 48000)
    put(root / "audio_speech_actors_01-24" / "Actor_01" / a.name, a.read_bytes())
    seen = set(default_result.rejected["reason"]) | set(ingest({"ravdess": root}).rejected["reason"])
    assert seen == {r.value for r in RejectReason}


def test_summary_tables(default_result: IngestResult) -> None:
    text = default_result.summary()
    assert text.splitlines()[0] == "found 34 files: 14 ingested, 20 rejected"
    assert "ingested (corpus x emotion):" in text and "rejected (corpus x reason):" in text
    for token in ("tess", "savee", "ravdess", "crema", "surprise", "not_audio", "git_lfs_pointer", "total"):
        assert token in text
    empty = IngestResult(pd.DataFrame(columns=Utterance.columns()), pd.DataFrame(columns=Rejection.columns()), 0)
    assert "(none)" in empty.summary()


def test_write_round_trips(default_result: IngestResult, tmp_path: Path) -> None:
    utt_path, rej_path = default_result.write(tmp_path / "out" / "nested")
    assert (utt_path.name, rej_path.name) == ("utterances.csv", "rejected.csv")
    utt = pd.read_csv(utt_path, keep_default_na=False)
    rej = pd.read_csv(rej_path, keep_default_na=False)
    assert list(utt.columns) == Utterance.columns() and list(rej.columns) == Rejection.columns()
    assert len(utt) == 14 and len(rej) == 20
    pd.testing.assert_frame_equal(utt, default_result.utterances, check_dtype=False)
    pd.testing.assert_frame_equal(rej, default_result.rejected, check_dtype=False)


def test_one_warning_per_rejection(corpora_tree: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="speech_emotion.corpora"):
        result = ingest({"crema": corpora_tree["crema"]})
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "speech_emotion.corpora"]
    assert len(warnings) == len(result.rejected) == 8
    for row in result.rejected.itertuples():
        assert any(row.path in w.getMessage() and row.reason in w.getMessage() for w in warnings)


# --------------------------------------------------------------------------- #
# ingestion: options
# --------------------------------------------------------------------------- #


def test_ravdess_options(corpora_tree: dict[str, Path]) -> None:
    result = ingest({"ravdess": corpora_tree["ravdess"]}, ravdess_song=True, ravdess_calm="neutral")
    rows = by_name(result.utterances)
    assert rows["03-02-03-01-01-01-02.wav"]["emotion"] == "happy"  # song kept
    assert rows["03-01-02-01-01-01-02.wav"]["emotion"] == "neutral"  # calm merged
    assert rows["03-01-02-01-01-01-02.wav"]["source_label"] == "02"
    assert RejectReason.EXCLUDED_LABEL.value not in set(result.rejected["reason"])
    assert result.found == 8 and len(result.utterances) == 4


def test_validation_thresholds_are_options(corpora_tree: dict[str, Path]) -> None:
    result = ingest({"ravdess": corpora_tree["ravdess"], "crema": corpora_tree["crema"]},
                    min_duration_s=0.25, silence_dbfs=-400.0)
    names = set(by_name(result.utterances))
    assert "03-01-04-01-01-01-03.wav" in names  # 0.3 s now long enough
    assert "1076_MTI_SAD_XX.wav" not in names  # all zeros: peak is -inf dBFS
    strict = ingest({"crema": corpora_tree["crema"]}, silence_dbfs=-5.0)
    assert reasons(strict)["1001_DFA_ANG_XX.wav"] == RejectReason.SILENT_AUDIO.value


def test_options_validate() -> None:
    with pytest.raises(ValueError):
        IngestOptions(ravdess_calm="keep")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- #
# ingestion: duplicates
# --------------------------------------------------------------------------- #


def test_kaggle_ravdess_doubled_layout(tmp_path: Path) -> None:
    root = tmp_path / "ravdess"
    names = ["03-01-05-01-01-01-01.wav", "03-01-03-02-02-02-01.wav"]
    for name in names:
        original = wav(root / "Actor_01" / name, 48000)
        put(root / "audio_speech_actors_01-24" / "Actor_01" / name, original.read_bytes())
    wav(root / "audio_speech_actors_01-24" / "Actor_02" / "03-01-04-01-01-01-02.wav", 48000)  # single copy
    result = ingest({"ravdess": root})
    assert result.found == 5
    kept = sorted(result.utterances["path"])
    assert kept == sorted(
        [str((root / "Actor_01" / n).resolve()) for n in names]
        + [str((root / "audio_speech_actors_01-24" / "Actor_02" / "03-01-04-01-01-01-02.wav").resolve())]
    )
    assert set(result.rejected["reason"]) == {RejectReason.DUPLICATE.value}
    for row in result.rejected.itertuples():
        assert "audio_speech_actors_01-24" in row.path
        twin = str((root / "Actor_01" / Path(row.path).name).resolve())
        assert twin in row.detail
    assert result.utterances["content_hash"].is_unique


def test_duplicates_across_corpora_keep_first_path(tmp_path: Path) -> None:
    a = wav(tmp_path / "crema" / "AudioWAV" / "1001_DFA_ANG_XX.wav", 16000)
    put(tmp_path / "tess" / "OAF_back_angry.wav", a.read_bytes())
    result = ingest({"tess": tmp_path / "tess", "crema": tmp_path / "crema"})
    assert by_name(result.utterances).keys() == {"1001_DFA_ANG_XX.wav"}  # ".../crema/..." < ".../tess/..."
    row = by_name(result.rejected)["OAF_back_angry.wav"]
    assert row["reason"] == RejectReason.DUPLICATE.value and row["corpus"] == "tess"
    assert str(a.resolve()) in row["detail"] and "(crema)" in row["detail"]


def test_duplicate_check_comes_after_validation(tmp_path: Path) -> None:
    root = tmp_path / "crema"
    silent = wav(root / "1001_DFA_SAD_XX.wav", 16000, signal=np.zeros(16000, np.float32))
    put(root / "1002_DFA_SAD_XX.wav", silent.read_bytes())
    result = ingest({"crema": root})
    assert set(result.rejected["reason"]) == {RejectReason.SILENT_AUDIO.value}


# --------------------------------------------------------------------------- #
# ingestion: roots
# --------------------------------------------------------------------------- #


def test_crema_demographics_are_preferred_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "crema"
    wav(root / "AudioWAV" / "1001_DFA_ANG_XX.wav")  # embedded table: male
    wav(root / "AudioWAV" / "1002_DFA_ANG_XX.wav")  # not in the csv: embedded, female
    put(root / "VideoDemographics.csv", b"ActorID,Age,Sex,Race,Ethnicity\n1001,51,Female,Caucasian,Not Hispanic\n")
    result = ingest({"crema": root})
    genders = {n: r["gender"] for n, r in by_name(result.utterances).items()}
    assert genders == {"1001_DFA_ANG_XX.wav": "female", "1002_DFA_ANG_XX.wav": "female"}
    (row,) = result.rejected.to_dict("records")
    assert row["reason"] == RejectReason.NOT_AUDIO.value
    assert row["detail"] == "not a .wav file (CREMA-D demographics, read for speaker genders)"
    assert result.found == 3
    # root pointed at AudioWAV itself: the csv next to it is still used, but not counted
    only_wavs = ingest({"crema": root / "AudioWAV"})
    assert only_wavs.found == 2 and set(only_wavs.utterances["gender"]) == {"female"}


def test_roots(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"savee.*nowhere"):
        ingest_corpora({"savee": tmp_path / "nowhere"}, progress=False)
    with pytest.raises(ValueError, match="emodb"):
        ingest_corpora({"emodb": tmp_path}, progress=False)
    result = ingest({"tess": None, "savee": None, "crema": None})
    assert result.found == 0 and result.utterances.empty and result.rejected.empty
    assert "(none)" in result.summary()


def test_a_folder_where_no_name_parses_is_refused(tmp_path: Path) -> None:
    """RAVDESS given as TESS used to reject every file one by one and train on without it."""
    ravdess_root = tmp_path / "RAVDESS"
    wav(ravdess_root / "Actor_01" / "03-01-05-01-02-01-01.wav", 48000)
    wav(ravdess_root / "Actor_02" / "03-01-06-01-02-01-02.wav", 48000)
    with pytest.raises(CorpusNamingError) as info:
        ingest_corpora({"tess": ravdess_root}, progress=False)
    message = str(info.value)
    assert message.startswith(f"no file under {ravdess_root} matches the tess naming; is this the right folder?")
    assert "2 .wav files; the first, Actor_01/03-01-05-01-02-01-01.wav: TESS name" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusNamingError, match=r"matches the savee naming.*\(the folder is empty\)"):
        ingest_corpora({"savee": tmp_path / "empty"}, progress=False)
    put(tmp_path / "docs" / "README.txt", b"x")
    with pytest.raises(CorpusNamingError, match=r"1 files, none of them a .wav file"):
        ingest_corpora({"crema": tmp_path / "docs"}, progress=False)
    # the same folder given as the right corpus is ingested
    assert len(ingest({"ravdess": ravdess_root}).utterances) == 2


def test_list_files_includes_hidden_and_nested(tmp_path: Path) -> None:
    put(tmp_path / ".hidden", b"x")
    put(tmp_path / "a" / "b" / "c.WAV", b"x")
    put(tmp_path / "z.txt", b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_files(tmp_path)] == [".hidden", "a/b/c.WAV", "z.txt"]
    assert tess.list_files is list_files


def test_progress_bar_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    wav(tmp_path / "tess" / "OAF_back_angry.wav", 24414)
    result = ingest_corpora({"tess": tmp_path / "tess"}, progress=True)
    assert len(result.utterances) == 1
    assert "ingest" in capsys.readouterr().err
