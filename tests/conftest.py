"""Test-wide set-up: a private ZenML store in a temporary folder, set before ZenML is imported.

Tests never touch the user's ``.zenml-home`` or ``~/.config/zenml``.
"""

from __future__ import annotations

import os
import tempfile

# once per session: `from tests.conftest import ROOT` runs this module a second time (as tests.conftest),
# and a second folder would silently switch the store under the tests that already use the first
_ZENML_HOME = os.environ.get("SER_TESTS_ZENML_HOME") or tempfile.mkdtemp(prefix="ser-tests-zenml-")
os.environ["SER_TESTS_ZENML_HOME"] = _ZENML_HOME
os.environ["ZENML_CONFIG_PATH"] = _ZENML_HOME
# no .zen there: tests never read or write the project's own repository config
os.environ["ZENML_REPOSITORY_PATH"] = _ZENML_HOME
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_ENABLE_RICH_TRACEBACK"] = "false"
os.environ["AUTO_OPEN_DASHBOARD"] = "false"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("ZENML_ACTIVE_STACK_ID", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def zenml_home() -> str:
    return _ZENML_HOME


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> dict[str, Path]:
    """A tiny synthetic corpus in the four real layouts, shared by the session."""
    from speech_emotion.demo_corpus import generate_demo_corpus

    return generate_demo_corpus(tmp_path_factory.mktemp("demo"), per_class=2, seed=0, progress=False)


@pytest.fixture
def artifact_uri(request) -> str:
    """A fresh folder inside the private store's artifact store, as a materializer's ``uri``."""
    import uuid

    from zenml.client import Client

    uri = Path(Client().active_stack.artifact_store.path) / "tests" / f"{request.node.name}-{uuid.uuid4().hex[:8]}"
    uri.mkdir(parents=True)
    return str(uri)


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on loopback for the session; its environment (endpoint, dummy credentials) is set in
    this process while it runs and restored after. Started only by the tests that ask for it."""
    from tests.servers import moto_s3

    with moto_s3() as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_server, request) -> str:
    """A fresh, empty bucket on the loopback S3 server; its URL (``s3://name``)."""
    import re
    import uuid

    import fsspec

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + uuid.uuid4().hex[:8]
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(name)
    return f"s3://{name}"
