"""Corpora, fingerprints, the feature cache and prediction on object storage: a real S3 API on loopback (moto).

The same demo corpus is read from a local folder and from ``s3://``: everything but the ``path`` column must
agree, so ids and fingerprints do not depend on where a corpus lies.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import fsspec
import numpy as np
import pytest

from speech_emotion import storage
from speech_emotion.corpora.fingerprint import data_fingerprint, files_fingerprint
from speech_emotion.corpora.ingest import CorpusNamingError, ingest_corpora


def _upload(local: Path, url: str) -> None:
    fs = fsspec.filesystem("s3")
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        fs.pipe_file(f"{url}/{path.relative_to(local).as_posix()}".removeprefix("s3://"), path.read_bytes())


@pytest.fixture
def s3_corpus(demo_corpus, s3_bucket) -> dict[str, str]:
    """The session's demo corpus uploaded under ``s3://<bucket>/corpora/<CORPUS>``, with one file that is no
    audio added to TESS (it must be rejected with its reason)."""
    roots = {}
    for corpus, root in demo_corpus.items():
        url = f"{s3_bucket}/corpora/{Path(root).name}"
        _upload(Path(root), url)
        roots[corpus] = url
    fsspec.filesystem("s3").pipe_file(roots["tess"].removeprefix("s3://") + "/OAF_word_sad.wav", b"not audio at all")
    return roots


def test_urls_stay_strings():
    assert storage.is_url("s3://b/k") and storage.is_url("gs://b") and not storage.is_url("/data/TESS")
    assert not storage.is_url(Path("s3://b/k"))  # a Path has already eaten the slash: it is a local path
    assert storage.join("s3://b/corpora/", "TESS", "a.wav") == "s3://b/corpora/TESS/a.wav"
    assert storage.parent("s3://b/corpora/TESS") == "s3://b/corpora"
    assert storage.resolve("s3://b/k", "/project") == "s3://b/k"
    assert storage.resolve("data/TESS", "/project") == "/project/data/TESS"
    assert storage.name_path("s3://b/AudioData/DC/a01.wav") == PurePosixPath("b/AudioData/DC/a01.wav")


def test_ingest_from_s3_matches_local(demo_corpus, s3_corpus):
    local = ingest_corpora(demo_corpus, progress=False)
    remote = ingest_corpora(s3_corpus, progress=False)
    assert remote.found == len(remote.utterances) + len(remote.rejected) == local.found + 1
    assert len(remote.utterances) == len(local.utterances) > 0
    assert remote.utterances["path"].str.startswith("s3://").all()
    for corpus, url in s3_corpus.items():  # the URL of each file is its root joined with its relpath
        rows = remote.utterances[remote.utterances["corpus"] == corpus]
        assert (rows["path"] == url + "/" + rows["relpath"]).all()
    same = ["corpus", "relpath", "speaker", "gender", "emotion", "sentence", "content_hash", "sample_rate"]
    by_id = ["corpus", "relpath"]
    assert (remote.utterances[same].sort_values(by_id).reset_index(drop=True)
            .equals(local.utterances[same].sort_values(by_id).reset_index(drop=True)))
    assert data_fingerprint(remote.utterances) == data_fingerprint(local.utterances)
    bad = remote.rejected[remote.rejected["path"].str.endswith("/OAF_word_sad.wav")]
    assert list(bad["reason"]) == ["not_audio"]
    assert set(remote.rejected["reason"]) - {"not_audio"} == set(local.rejected["reason"]) - {"not_audio"}


def test_wrong_or_missing_s3_root_is_refused_with_its_url(s3_corpus, s3_bucket):
    with pytest.raises(FileNotFoundError, match=f"tess root does not exist.*{s3_bucket}/nothing"):
        ingest_corpora({"tess": f"{s3_bucket}/nothing"}, progress=False)
    with pytest.raises(CorpusNamingError, match=f"no file under {s3_corpus['ravdess']} matches the tess naming"):
        ingest_corpora({"tess": s3_corpus["ravdess"]}, progress=False)


def test_files_fingerprint_of_s3_is_the_local_one_and_sees_new_objects(demo_corpus, s3_corpus, tmp_path):
    fs = fsspec.filesystem("s3")
    fs.rm_file(s3_corpus["tess"].removeprefix("s3://") + "/OAF_word_sad.wav")  # the same files as the local copy
    cache = tmp_path / "hashes"
    local = files_fingerprint(demo_corpus, cache_dir=cache)
    assert files_fingerprint(s3_corpus, cache_dir=cache) == local
    assert files_fingerprint(s3_corpus, cache_dir=cache) == local  # from the hash cache (size + ETag)
    # a new object is seen at once (no listing served from fsspec's cache), and so is an edited one
    new = s3_corpus["savee"].removeprefix("s3://") + "/extra.txt"
    fs.pipe_file(new, b"one")
    added = files_fingerprint(s3_corpus, cache_dir=cache)
    assert added != local
    fs.pipe_file(new, b"two")
    assert files_fingerprint(s3_corpus, cache_dir=cache) not in (local, added)


def test_feature_cache_on_s3_serves_what_was_extracted(demo_corpus, s3_corpus, s3_bucket):
    from speech_emotion.features import FeatureParams, extract_features

    result = ingest_corpora({"tess": s3_corpus["tess"]}, progress=False)
    utt = result.utterances.head(3)
    params = FeatureParams(duration_s=1.0)
    args = dict(labels=[0] * 3, corpus=["tess"] * 3, content_hashes=utt["content_hash"].tolist(), params=params,
                cache_dir=f"{s3_bucket}/cache/features", progress=False)
    first = extract_features(utt["path"].tolist(), **args)
    entries = fsspec.filesystem("s3").find(f"{s3_bucket}/cache/features".removeprefix("s3://"))
    assert len(entries) == 3 and all(e.endswith(".npz") for e in entries)
    # the same clips under paths that do not exist: only the cache can answer
    again = extract_features([f"{s3_bucket}/gone/{i}.wav" for i in range(3)], **args)
    for kind in ("mfcc", "chroma", "mel", "logmel"):
        np.testing.assert_array_equal(getattr(again, kind), getattr(first, kind))
    assert np.abs(first.logmel).sum() > 0


def test_predictor_finds_and_reads_s3_audio(s3_corpus):
    from speech_emotion.predictor import find_audio_files

    found = find_audio_files([s3_corpus["savee"]])
    assert found and all(p.startswith(s3_corpus["savee"] + "/") and p.endswith(".wav") for p in found)
    from speech_emotion.audio import read_audio

    y, sr = read_audio(found[0])
    assert y.shape[0] > 0 and sr > 0


def test_services_never_follow_urls(tmp_path):
    from speech_emotion.pyfunc import path_refusal

    assert "URLs are refused" in path_refusal("s3://bucket/clip.wav", tmp_path)
    assert path_refusal(str(tmp_path / "clip.wav"), tmp_path) is None
