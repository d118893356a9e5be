"""`ser serve`: the real service on a free loopback port, posted demo clips, bad audio, an oversized
upload, a refused path and a missing auth key; it stays up and answers the next request."""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request

import pytest

from speech_emotion.corpora.common import EMOTIONS
from speech_emotion.features import FeatureParams, FeatureScaler
from speech_emotion.predictor import Predictor
from tests.servers import free_port, running
from tests.synthetic import demo_features, tiny_trained

PARAMS = FeatureParams(duration_s=5.0)
KEY = "test-key-123"


@pytest.fixture(scope="module")
def predictor_folder(demo_corpus, tmp_path_factory):
    utterances, raw = demo_features(demo_corpus, PARAMS, corpora=("tess",))
    scaler = FeatureScaler.fit(raw)
    model = tiny_trained(scaler.transform(raw), "cnn1d_lstm", {"conv_blocks": 1, "filters_first": 4, "lstm_units": 4})
    folder = tmp_path_factory.mktemp("service") / "predictor"
    Predictor(members=[model], scaler=scaler, feature_params=PARAMS).save(folder)
    return folder, utterances["path"].tolist()


@pytest.fixture(scope="module")
def service(predictor_folder):
    """`ser serve` with an auth key, paths allowed under one folder, and a 1 MB upload limit."""
    folder, clips = predictor_folder
    port = free_port()
    env = {**os.environ, "SER_ALLOWED_AUDIO_ROOT": os.path.dirname(clips[0]), "SER_MAX_AUDIO_MB": "1",
           "SER_AUTH_KEY": KEY}
    ser = os.path.join(os.path.dirname(sys.executable), "ser")
    url = f"http://127.0.0.1:{port}"
    with running([ser, "serve", "--model", str(folder), "--port", str(port)], f"{url}/health", env=env):
        yield url, clips


def _post(url: str, body: bytes, content_type: str = "audio/wav", key: str | None = KEY) -> tuple[int, dict]:
    headers = {"Content-Type": content_type}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{url}/predict", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _assert_labelled(status: int, answer: dict) -> None:
    assert status == 200, answer
    assert answer["emotion"] in EMOTIONS and answer["error"] is None
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert answer["model_version"].startswith("folder ")


def test_labels_a_posted_clip_as_bytes_and_as_base64(service):
    url, clips = service
    audio = open(clips[0], "rb").read()
    _assert_labelled(*_post(url, audio))
    _assert_labelled(*_post(url, json.dumps({"audio": base64.b64encode(audio).decode()}).encode(), "application/json"))


def test_bad_requests_get_clean_errors_and_the_service_stays_up(service):
    url, clips = service
    audio = open(clips[0], "rb").read()
    assert _post(url, audio, key=None)[0] == 401
    assert _post(url, audio, key="wrong")[0] == 401
    status, answer = _post(url, audio[: len(audio) // 3])
    assert status == 422 and answer["error"] == "truncated_audio"
    status, answer = _post(url, b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 3\n")
    assert status == 422 and answer["error"] == "git_lfs_pointer"
    assert _post(url, b"")[1]["error"] == "empty_audio"
    status, answer = _post(url, b"\0" * (2 * 2**20))
    assert status == 413 and answer["error"] == "too_large" and "SER_MAX_AUDIO_MB" in answer["error_detail"]
    status, answer = _post(url, json.dumps({"path": "/etc/passwd"}).encode(), "application/json")
    assert status == 403 and answer["error"] == "path_refused"
    status, answer = _post(url, b"{not json", "application/json")
    assert status == 400
    _assert_labelled(*_post(url, json.dumps({"path": clips[0]}).encode(), "application/json"))
    _assert_labelled(*_post(url, audio))  # still up


def test_the_page_is_served_without_a_key(service):
    url, _ = service
    with urllib.request.urlopen(f"{url}/", timeout=10) as r:
        page = r.read().decode()
    assert "Drop an audio file" in page and "predict" in page
