"""Correct and reproducible runs: library edits invalidate ZenML's cache and the feature cache;
``training.deterministic`` switches on TensorFlow's op determinism."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from speech_emotion import provenance
from speech_emotion.features import FeatureCache, FeatureParams
from tests.conftest import ROOT

PROJECT_FOLDERS = ("speech_emotion", "steps", "materializers", "pipelines")


def copy_project(dest: Path) -> Path:
    for folder in PROJECT_FOLDERS:
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def edit_function(path: Path, signature_start: str, statement: str) -> None:
    """Insert ``statement`` as the first line of the body of the function whose ``def`` line starts
    with ``signature_start`` (after its docstring, if any): a real edit of library code."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(signature_start))
    body = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(":")) + 1
    if lines[body].strip().startswith('"""'):
        body = next(i for i in range(body, len(lines)) if lines[i].rstrip().endswith('"""')
                    and (i > body or lines[i].strip().count('"""') == 2)) + 1
    lines.insert(body, f"    {statement}\n")
    path.write_text("".join(lines))


def test_code_fingerprint_covers_library_steps_materializers_and_versions(tmp_path):
    proj = copy_project(tmp_path / "proj")
    package = proj / "speech_emotion"
    files = {p.relative_to(proj).as_posix() for p in provenance.library_files(package)}
    assert {"speech_emotion/ensemble.py", "speech_emotion/models/cnn_lstm.py", "steps/train.py",
            "materializers/keras_model.py"} <= files
    assert not any(f.startswith("pipelines/") for f in files)
    versions = provenance.package_versions()
    assert set(versions) == {"numpy", "tensorflow", "keras", "librosa", "scikit-learn", "deap"}
    assert "absent" not in versions.values()

    before = provenance.code_fingerprint(package)
    assert provenance.code_fingerprint(package) == before  # stable
    edit_function(package / "evaluation.py", "def f1_macro(", "pass")
    after_library = provenance.code_fingerprint(package)
    edit_function(proj / "steps" / "compare.py", "def compare_models(", "pass")
    after_step = provenance.code_fingerprint(package)
    assert len({before, after_library, after_step}) == 3


def test_feature_cache_is_keyed_on_the_feature_code(tmp_path):
    proj = copy_project(tmp_path / "proj")
    package = proj / "speech_emotion"
    before = provenance.feature_code_fingerprint(package)
    edit_function(package / "ensemble.py", "def average_probabilities(", "pass")
    assert provenance.feature_code_fingerprint(package) == before  # not feature code
    edit_function(package / "features.py", "def clip_features(", "pass")
    assert provenance.feature_code_fingerprint(package) != before
    # the cache in use is keyed on this (imported) library's feature code
    cache = FeatureCache(tmp_path / "cache", FeatureParams())
    assert cache.root.name == f"{FeatureParams().key()}-{provenance.feature_code_fingerprint()[:12]}"


def test_training_pipeline_carries_the_library_cache_policy():
    from pipelines.training import training_pipeline

    policy = training_pipeline.configuration.cache_policy
    assert policy is not None and policy.cache_func.import_path == "speech_emotion.provenance.code_fingerprint"


PROBE = textwrap.dedent('''
    """Run ingest -> split on a tiny custom corpus with the training pipeline's cache policy."""
    import sys
    from pathlib import Path

    import speech_emotion

    here = Path(__file__).resolve().parent
    assert Path(speech_emotion.__file__).resolve().is_relative_to(here), speech_emotion.__file__

    from zenml import pipeline
    from zenml.client import Client

    from pipelines.training import training_pipeline
    from speech_emotion.config import IngestConfig, SplitConfig
    from speech_emotion.corpora.custom import CustomCorpus
    from steps import ingest_corpora, split_dataset

    @pipeline(enable_cache=True, cache_policy=training_pipeline.configuration.cache_policy)
    def probe(root: str):
        corpus = CustomCorpus(name="acted", root=root, pattern=r"^(?P<emotion>[a-z]+)/(?P<speaker>s\\d)_.+\\.wav$")
        utterances, _ = ingest_corpora(roots={}, options=IngestConfig(), fingerprint="fixed", custom=[corpus])
        split_dataset(utterances, SplitConfig(test_fraction=0.0))

    run_name = sys.argv[2]
    probe.with_options(run_name=run_name)(root=sys.argv[1])
    run = Client().get_pipeline_run(run_name)
    for name in ("ingest_corpora", "split_dataset"):
        print(f"STATUS {name} {run.steps[name].status.value}")
''')


def _probe(proj: Path, data: Path, run_name: str, stack_id: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(proj), "ZENML_ACTIVE_STACK_ID": stack_id}
    proc = subprocess.run([sys.executable, str(proj / "probe.py"), str(data), run_name], cwd=proj, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("STATUS "))


@pytest.mark.slow
def test_a_library_edit_makes_the_steps_run_again(tmp_path, zenml_home):
    from speech_emotion.cli import setup_stack
    from tests.test_custom_corpus import wav

    stack_id = setup_stack(root=None, activate=False)
    data = tmp_path / "data"
    for emotion in ("angry", "sad", "happy", "fear"):
        for k in range(6):
            wav(data / emotion / f"s{k % 3}_{emotion}{k}.wav")
    proj = copy_project(tmp_path / "proj")
    (proj / "probe.py").write_text(PROBE)

    first = _probe(proj, data, "probe_first", stack_id)
    assert first == {"ingest_corpora": "completed", "split_dataset": "completed"}
    again = _probe(proj, data, "probe_again", stack_id)
    assert again == {"ingest_corpora": "cached", "split_dataset": "cached"}  # the cache works...
    # ...and an edit to a library function (not to a step) invalidates it
    edit_function(proj / "speech_emotion" / "splits.py", "def split_utterances(", "utterances = utterances.copy()")
    edited = _probe(proj, data, "probe_edited", stack_id)
    assert edited == {"ingest_corpora": "completed", "split_dataset": "completed"}


@pytest.mark.slow
def test_deterministic_training_enables_op_determinism(tmp_path):
    script = textwrap.dedent('''
        import numpy as np
        from tensorflow.python.framework.config import is_op_determinism_enabled  # no public getter in TF 2.21

        from speech_emotion.config import ModelConfig, TrainingConfig
        from speech_emotion.training import train_model
        from tests.synthetic import tiny_features

        assert not is_op_determinism_enabled()
        train, val = tiny_features(28, seed=0), tiny_features(14, seed=1)
        config = ModelConfig(family="cnn2d_lstm", hparams={"conv_blocks": 1, "filters_first": 4, "lstm_units": 4})
        training = TrainingConfig(epochs=2, batch_size=8, seed=3, deterministic=True)
        a = train_model(train, val, config, training, progress=False)
        assert is_op_determinism_enabled()
        b = train_model(train, val, config, training, progress=False)
        for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
            assert np.array_equal(wa, wb)
        print("DETERMINISTIC OK")
    ''')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert "DETERMINISTIC OK" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_two_cpu_runs_without_caching_give_identical_splits_ga_weights_and_metrics(tmp_path, zenml_home):
    """The tiny profile, made smaller (one tiny network, the baseline, both voting ensembles; no tuning,
    stacking or ablation), run twice with caching off and ``training.deterministic``."""
    import pandas as pd
    import yaml
    from zenml.client import Client

    from speech_emotion.cli import setup_stack

    stack_id = setup_stack(root=None, activate=False)
    config = yaml.safe_load((ROOT / "configs" / "test.yaml").read_text())
    config["enable_cache"] = False
    config["model"]["name"] = "determinism_check"  # versions of its own, beside other tests' speech_emotion
    params = config["parameters"]
    params["corpora"]["demo"]["root"] = str(tmp_path / "demo")
    params["features"]["cache_dir"] = None  # every clip's features computed, in both runs
    params["families"] = {"cnn2d_lstm": {"kernel_size": 3, "conv_blocks": 1, "filters_first": 4, "filters_next": 4,
                                         "lstm_units": 4},
                          "functionals_svm": {"features": "egemaps", "C": 10.0, "gamma": "scale"}}
    params.update(tuning={"enabled": False}, search_spaces={}, stacking={"enabled": False},
                  ablation={"scaling": False})
    params["training"].update(deterministic=True, epochs=2)
    params["promotion"]["registered_model"] = "determinism_check"
    path = tmp_path / "determinism.yaml"
    zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
    for name in ("determinism_a", "determinism_b"):
        path.write_text(yaml.safe_dump({**config, "run_name": name}, sort_keys=False))
        proc = subprocess.run([zenml, "pipeline", "run", "pipelines.training.training_pipeline", "-c", str(path)],
                              cwd=ROOT, env={**os.environ, "ZENML_ACTIVE_STACK_ID": stack_id},
                              capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    a, b = (Client().get_pipeline_run(name) for name in ("determinism_a", "determinism_b"))
    assert all(s.status.value == "completed" for run in (a, b) for s in run.steps.values())  # nothing cached
    for output in ("train_utterances", "val_utterances", "test_utterances"):
        pa, pb = (run.steps["split_dataset"].outputs[output][0].load()["relpath"].tolist() for run in (a, b))
        assert pa == pb and pa
    wa, wb = (run.steps["ensemble_models"].outputs["ga_weights"][0].load() for run in (a, b))
    pd.testing.assert_frame_equal(wa, wb, check_exact=True)
    assert wa["weight"].notna().all()
    ca, cb = (run.steps["compare_models"].outputs["comparison"][0].load().drop(columns="inference_time_s")
              for run in (a, b))
    assert set(ca["model"]) == {"cnn2d_lstm", "functionals_svm", "average_voting", "ga_ensemble"}
    pd.testing.assert_frame_equal(ca, cb, check_exact=True)  # accuracy, loss and F1-macro to the last bit
