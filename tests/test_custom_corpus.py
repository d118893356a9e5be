"""Custom corpora described in configuration (corpora.custom, `ser ingest --corpus-config`)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from pydantic import ValidationError

from speech_emotion.cli import main
from speech_emotion.config import AblationConfig, CorporaConfig, FeatureConfig, SplitConfig, TuningConfig
from speech_emotion.corpora.common import RejectReason
from speech_emotion.corpora.custom import CustomCorpus, load_custom_corpora, parse_name
from speech_emotion.corpora.ingest import CorpusNamingError, IngestResult, ingest_corpora

EMODB_PATTERN = r"^(?P<speaker>\d\d)[a-z]\d\d(?P<emotion>[A-Z])[a-z]?\.wav$"
EMODB_EMOTIONS = {"W": "angry", "E": "disgust", "A": "fear", "F": "happy", "T": "sadness", "N": "neutral", "L": None}
FOLDER_PATTERN = r"^(?P<emotion>[a-z]+)/.+\.wav$"


def wav(path: Path, seconds: float = 0.6, sr: int = 16000, silent: bool = False) -> Path:
    """A few hundred ms of a tone plus noise, different for every path (no accidental duplicates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(str(path).encode()))
    t = np.arange(int(sr * seconds)) / sr
    y = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 400) * t) + 0.01 * rng.standard_normal(t.size)
    sf.write(path, np.zeros_like(y) if silent else y.astype(np.float32), sr, subtype="PCM_16")
    return path


def emodb(tmp_path: Path) -> CustomCorpus:
    root = tmp_path / "emodb" / "wav"
    for name in ("03a01Wa.wav", "03a02Fb.wav", "08b01Tc.wav", "08b02Nd.wav", "10a05Ab.wav"):
        wav(root / name)
    wav(root / "03a04Lc.wav")  # boredom: mapped to null
    wav(root / "03a05Xa.wav")  # a code the map does not know
    wav(root / "notes" / "03a01Wa.wav")  # the pattern has no folder: not a match
    wav(root / "08a07Ea.wav", seconds=0.2)  # too short
    wav(root / "08a08Ec.wav", silent=True)
    (root / "03a09Fc.wav").write_bytes((root / "03a02Fb.wav").read_bytes())  # byte-identical copy
    (root / "README.txt").write_text("EmoDB\n")
    return CustomCorpus(name="emodb", root=str(root), pattern=EMODB_PATTERN, emotions=EMODB_EMOTIONS,
                        genders={"03": "male", "08": "female"})


def folders(tmp_path: Path) -> CustomCorpus:
    root = tmp_path / "acted"
    wav(root / "angry" / "clip1.wav")
    wav(root / "sad" / "clip2.wav")
    wav(root / "happy" / "take2" / "clip3.wav")
    wav(root / "calm" / "clip4.wav")  # not in the map
    wav(root / "clip5.wav")  # no emotion folder
    return CustomCorpus(name="acted", root=str(root), pattern=FOLDER_PATTERN,
                        emotions={"angry": "angry", "sad": "sadness", "happy": "happy"}, gender="female")


def rows(df: pd.DataFrame, root: str) -> dict[str, dict]:
    return {Path(r["path"]).relative_to(root).as_posix(): r for r in df.to_dict("records")}


def test_emodb_style_names(tmp_path):
    corpus = emodb(tmp_path)
    result = ingest_corpora({}, progress=False, custom=[corpus])
    assert isinstance(result, IngestResult)
    assert result.found == 12 == len(result.utterances) + len(result.rejected)
    got = {name: (r["corpus"], r["speaker"], r["gender"], r["emotion"], r["source_label"])
           for name, r in rows(result.utterances, corpus.root).items()}
    assert got == {
        "03a01Wa.wav": ("emodb", "emodb_03", "male", "angry", "W"),
        "03a02Fb.wav": ("emodb", "emodb_03", "male", "happy", "F"),
        "08b01Tc.wav": ("emodb", "emodb_08", "female", "sadness", "T"),
        "08b02Nd.wav": ("emodb", "emodb_08", "female", "neutral", "N"),
        "10a05Ab.wav": ("emodb", "emodb_10", "unknown", "fear", "A"),  # speaker 10 has no gender
    }
    rejected = rows(result.rejected, corpus.root)
    assert {name: r["reason"] for name, r in rejected.items()} == {
        "03a04Lc.wav": RejectReason.EXCLUDED_LABEL.value,
        "03a05Xa.wav": RejectReason.UNKNOWN_EMOTION.value,
        "notes/03a01Wa.wav": RejectReason.UNPARSEABLE_NAME.value,
        "08a07Ea.wav": RejectReason.TOO_SHORT.value,
        "08a08Ec.wav": RejectReason.SILENT_AUDIO.value,
        "03a09Fc.wav": RejectReason.DUPLICATE.value,
        "README.txt": RejectReason.NOT_AUDIO.value,
    }
    assert "'X'" in rejected["03a05Xa.wav"]["detail"] and "emotions map" in rejected["03a05Xa.wav"]["detail"]
    assert "'L' mapped to null" in rejected["03a04Lc.wav"]["detail"]
    assert "does not match the pattern" in rejected["notes/03a01Wa.wav"]["detail"]
    assert "03a02Fb.wav" in rejected["03a09Fc.wav"]["detail"]
    assert "emodb" in result.summary()


def test_folder_per_emotion(tmp_path):
    corpus = folders(tmp_path)
    result = ingest_corpora({}, progress=False, custom=[corpus])
    got = {name: (r["speaker"], r["gender"], r["emotion"]) for name, r in rows(result.utterances, corpus.root).items()}
    assert got == {
        "angry/clip1.wav": ("acted_unknown", "female", "angry"),
        "sad/clip2.wav": ("acted_unknown", "female", "sadness"),
        "happy/take2/clip3.wav": ("acted_unknown", "female", "happy"),
    }
    assert {n: r["reason"] for n, r in rows(result.rejected, corpus.root).items()} == {
        "calm/clip4.wav": "unknown_emotion", "clip5.wav": "unparseable_name"}


def test_gender_sources_and_text_group(tmp_path):
    corpus = CustomCorpus(name="c", root=str(tmp_path), pattern=r"(?P<speaker>s\d)_(?P<gender>[MFX])_(?P<text>\w+)_(?P<emotion>\w+)\.wav",
                          genders={"s2": "female"}, gender="male")
    parsed = parse_name(Path("s1_F_hello_happy.wav"), corpus)
    assert (parsed.speaker, parsed.gender, parsed.sentence, parsed.emotion) == ("c_s1", "female", "hello", "happy")
    assert parse_name(Path("s2_X_hi_fear.wav"), corpus).gender == "female"  # pattern says nothing usable: genders
    assert parse_name(Path("s3_X_hi_fear.wav"), corpus).gender == "male"  # then `gender` for all
    yaml_int_keys = CustomCorpus.model_validate(yaml.safe_load(
        "{name: e, root: /r, pattern: '(?P<speaker>\\d\\d)(?P<emotion>[A-Z])\\.wav', emotions: {W: angry}, genders: {03: male}}"))
    assert parse_name(Path("03W.wav"), yaml_int_keys).gender == "male"


@pytest.mark.parametrize(("change", "words"), [
    ({"pattern": r"(?P<speaker>\d+)\.wav"}, "needs a named group (?P<emotion>...)"),
    ({"pattern": r"(?P<emotion>\w+)_(?P<actor>\d+)\.wav"}, "['actor']"),
    ({"pattern": r"(?P<emotion>[a-z"}, "not a regular expression"),
    ({"emotions": {"W": "furious"}}, "furious"),
    ({"emotions": {"L": None}}, "maps no code to a class"),
    ({"name": "ravdess"}, "is a built-in corpus"),
    ({"name": "emo db"}, "'emo db'"),
    ({"genders": {"03": "robot"}}, "genders"),
])
def test_bad_descriptions_are_refused(change, words):
    entry = {"name": "emodb", "root": "/data", "pattern": EMODB_PATTERN, "emotions": EMODB_EMOTIONS, **change}
    with pytest.raises(ValidationError) as info:
        CustomCorpus.model_validate(entry)
    assert words in str(info.value)


def test_configuration_accepts_custom_only_and_custom_test_corpus(tmp_path):
    from pipelines.training import check_configuration, resolve_custom_corpora

    corpora = CorporaConfig(custom=[{"name": "emodb", "root": "emodb/wav", "pattern": EMODB_PATTERN,
                                     "emotions": EMODB_EMOTIONS}])
    assert corpora.names() == ["emodb"]
    with pytest.raises(ValidationError, match="no corpus configured"):
        CorporaConfig()
    with pytest.raises(ValidationError, match=r"\['emodb'\] are used more than once"):
        CorporaConfig(custom=[corpora.custom[0], corpora.custom[0]])
    ok = dict(families={"cnn2d_lstm": {}}, tuning=TuningConfig(enabled=False), search_spaces={},
              features=FeatureConfig(), ablation=AblationConfig())
    both = CorporaConfig(ravdess="r", custom=corpora.custom)
    check_configuration(**ok, corpora=both, split=SplitConfig(strategy="corpus", test_corpus="emodb"))
    with pytest.raises(ValueError, match=r"split.test_corpus 'tess' is not one of the configured corpora \['ravdess', 'emodb'\]"):
        check_configuration(**ok, corpora=both, split=SplitConfig(strategy="corpus", test_corpus="tess"))
    # with the demo corpus, the four built-in corpora are configured
    check_configuration(**ok, corpora=CorporaConfig(demo={}), split=SplitConfig(strategy="corpus", test_corpus="tess"))

    with pytest.raises(FileNotFoundError, match="emodb"):
        resolve_custom_corpora(corpora, base=tmp_path)
    (tmp_path / "emodb" / "wav").mkdir(parents=True)
    (resolved,) = resolve_custom_corpora(corpora, base=tmp_path)
    assert resolved.root == str(tmp_path / "emodb" / "wav")


def test_ser_ingest_corpus_config_with_a_builtin_corpus(tmp_path, capsys):
    corpus = emodb(tmp_path)
    wav(tmp_path / "tess" / "OAF_back_angry.wav", sr=24414)
    config = tmp_path / "corpora.yaml"
    entry = {**corpus.model_dump(), "root": "emodb/wav"}  # relative to the file's folder
    config.write_text(yaml.safe_dump({"custom": [entry, folders(tmp_path).model_dump()]}))
    out = tmp_path / "out"
    assert main(["ingest", "--corpus-config", str(config), "--tess", str(tmp_path / "tess"), "--out", str(out), "-q"]) == 0
    utterances = pd.read_csv(out / "utterances.csv", dtype=str)
    rejected = pd.read_csv(out / "rejected.csv", dtype=str)
    assert utterances.groupby("corpus").size().to_dict() == {"acted": 3, "emodb": 5, "tess": 1}
    assert len(utterances) + len(rejected) == 12 + 5 + 1
    assert "emodb_03" in set(utterances["speaker"])
    printed = capsys.readouterr().out
    assert "18 files found: 9 ingested" in printed and "emodb" in printed and "acted" in printed


def test_ser_ingest_bad_corpus_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("corpora:\n  custom: []\n")
    assert main(["ingest", "--corpus-config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert f"corpus configuration {bad}: expected a top-level 'custom:' list" in capsys.readouterr().err
    bad.write_text(yaml.safe_dump({"custom": [{"name": "x", "root": ".", "pattern": "(?P<speaker>.*)"}]}))
    assert main(["ingest", "--corpus-config", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}, custom[0]" in err and "(?P<emotion>...)" in err
    assert load_custom_corpora  # the loader the command uses is public


def test_training_pipeline_hands_custom_corpora_to_the_ingest_step(tmp_path):
    """Building the training pipeline's graph (no step runs) wires the resolved custom corpora into ingest."""
    from tests.graphs import holdout_graph as training_pipeline  # the training pipeline's holdout graph, static

    corpus = folders(tmp_path)
    training_pipeline.prepare(corpora=CorporaConfig(custom=[corpus]))
    params = training_pipeline.invocations["ingest_corpora"].parameters
    assert params["roots"] == {}
    assert [CustomCorpus.model_validate(c) if isinstance(c, dict) else c for c in params["custom"]] == [corpus]


def test_readme_examples_are_valid_configurations():
    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Any other corpus"):]
    blocks = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:3]]
    configs = [CorporaConfig.model_validate(yaml.safe_load(b)["parameters"]["corpora"]) for b in blocks]
    emodb_, acted = configs[0].custom[0], configs[1].custom[0]
    assert parse_name(Path("03a01Fa.wav"), emodb_).speaker == "emodb_03"
    assert parse_name(Path("03a01La.wav"), emodb_).excluded
    assert parse_name(Path("angry/clip1.wav"), acted).emotion == "angry"


def test_dataset_tables_and_summary_list_custom_corpora(tmp_path):
    from speech_emotion import reports

    result = ingest_corpora({}, progress=False, custom=[emodb(tmp_path), folders(tmp_path)])
    table = reports.duration_table({"train": result.utterances})
    assert list(table.index) == ["train", "acted", "emodb"]
    assert table.loc["emodb", "n_samples"] == 5
    fig = reports.origin_distribution_figure({"train": result.utterances})
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["acted", "emodb"]
    summary = result.summary().split("rejected (corpus x reason):")
    assert "acted" in summary[0] and "emodb" in summary[0] and "emodb" in summary[1]


def test_a_custom_folder_where_no_name_matches_is_refused(tmp_path, capsys):
    corpus = folders(tmp_path).model_copy(update={"pattern": r"^(?P<speaker>\d\d)(?P<emotion>[A-Z])\.wav$"})
    with pytest.raises(CorpusNamingError, match=f"no file under {corpus.root} matches the acted naming; "
                                                 "is this the right folder?"):
        ingest_corpora({}, progress=False, custom=[corpus])
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"custom": [corpus.model_dump()]}))
    assert main(["ingest", "--corpus-config", str(config), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "matches the acted naming; is this the right folder?" in capsys.readouterr().err
