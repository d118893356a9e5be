"""The `ser` command: demo-corpus, ingest, help."""

from __future__ import annotations

import pandas as pd
import pytest

from speech_emotion.cli import build_parser, main


def test_ingest_writes_both_tables_and_accounts_for_every_file(demo_corpus, tmp_path, capsys):
    # a messy addition: a non-audio file and a Git LFS pointer stub in the CREMA-D folder
    crema_wavs = demo_corpus["crema"] / "AudioWAV"
    (crema_wavs / "notes.txt").write_text("not audio")
    (crema_wavs / "1076_MTI_SAD_XX.wav").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    try:
        argv = ["ingest", "--out", str(tmp_path / "out"), "-q"]
        for corpus, root in demo_corpus.items():
            argv += [f"--{corpus}", str(root)]
        assert main(argv) == 0
        out = capsys.readouterr().out
        utterances = pd.read_csv(tmp_path / "out" / "utterances.csv")
        rejected = pd.read_csv(tmp_path / "out" / "rejected.csv")
        n_files = sum(1 for root in demo_corpus.values() for p in root.rglob("*") if p.is_file())
        assert len(utterances) + len(rejected) == n_files
        assert f"{n_files} files found: {len(utterances)} ingested" in out
        reasons = dict(zip(rejected["path"].map(lambda p: p.rsplit("/", 1)[-1]), rejected["reason"]))
        assert reasons["notes.txt"] == "not_audio"
        assert reasons["1076_MTI_SAD_XX.wav"] == "git_lfs_pointer"
        assert set(rejected[rejected["corpus"] == "ravdess"]["reason"]) == {"excluded_label"}  # calm
        assert set(utterances["corpus"]) == {"tess", "savee", "ravdess", "crema"}
    finally:
        (crema_wavs / "notes.txt").unlink()
        (crema_wavs / "1076_MTI_SAD_XX.wav").unlink()


def test_ingest_without_corpora_or_with_missing_folder_fails_clearly(tmp_path, capsys):
    assert main(["ingest", "--out", str(tmp_path)]) == 2
    assert "give at least one of" in capsys.readouterr().err
    assert main(["ingest", "--tess", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err


def test_demo_corpus_command(tmp_path, capsys):
    assert main(["demo-corpus", str(tmp_path / "d"), "--per-class", "1", "--seed", "3", "-q"]) == 0
    out = capsys.readouterr().out
    for corpus, folder in (("tess", "TESS"), ("savee", "SAVEE"), ("ravdess", "RAVDESS"), ("crema", "CREMA-D")):
        assert f"{corpus}" in out and (tmp_path / "d" / folder).is_dir()


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for command in ("setup", "demo-corpus", "ingest", "mlflow-ui"):
        assert command in out
