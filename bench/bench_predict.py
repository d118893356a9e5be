"""Prediction cost: the predictor (and `ser predict`) against the bare Keras model called per clip.

    make demo   # once: the models come from the latest training run in the project's store
    .venv/bin/python bench/bench_predict.py [--run RUN_NAME] [--clips 200] [--repeat 3]

Measured in one run, on the same demo clips:

- warm latency for one clip: ``Predictor.predict_paths([clip])`` with the run's best single model
  and with its GA ensemble, against the baseline: the bare ``.keras`` model, the clip's features
  (the same ``clip_features`` code), the fitted scaler, ``model.predict`` on that one clip;
- throughput on a folder of ``--clips`` clips: ``predict_paths`` over the folder (windows batched
  through the models) against the baseline's ``model.predict`` per clip;
- process start-up: ``ser predict CLIP --model FOLDER --json`` and ``ser predict CLIP`` (production,
  looked up in the ZenML store) as new processes, against a new process that imports Keras, loads
  the bare model and predicts the clip.

Prints a table; record it in BENCHMARKS.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_run(run_name: str | None):
    """The run's predictor (its deployed model), the GA ensemble's members and weights, and the run."""
    from zenml.client import Client

    client = Client()
    if run_name:
        run = client.get_pipeline_run(run_name)
    else:
        runs = client.list_pipeline_runs(pipeline_name="training_pipeline", status="completed",
                                         sort_by="desc:created", size=1).items
        if not runs:
            raise SystemExit("no completed training run in the project's store: run `make demo` first")
        run = runs[0]
    steps = run.steps
    deployed = steps["build_predictor"].outputs["predictor"][0].load()
    weights = steps["ensemble_models"].outputs["ga_weights"][0].load() if "ensemble_models" in steps else None

    def member(name: str):
        step = steps["train_functionals_svm_model" if name == "functionals_svm" else f"train_{name}"]
        return step.outputs[f"{name}_model"][0].load()

    members = [member(name) for name in weights["model"]] if weights is not None else []
    return run, deployed, members, weights


def predictors(deployed, members, weights):
    """The best single network (by validation F1-macro) and the GA ensemble, with the run's scaler."""
    from speech_emotion.models.trained import TrainedModel
    from speech_emotion.predictor import Predictor

    nets = [m for m in members if isinstance(m, TrainedModel)] or [m for m in deployed.members]
    best_name = min(nets, key=lambda m: min(m.history.get("val_loss", [float("inf")]))).name
    best = next(m for m in nets if m.name == best_name)
    single = Predictor(members=[best], scaler=deployed.scaler, feature_params=deployed.feature_params)
    ga = None
    if weights is not None and weights["weight"].notna().all():
        ga = Predictor(members=members, scaler=deployed.scaler, feature_params=deployed.feature_params,
                       kind="ga_ensemble", weights=[float(w) for w in weights["weight"]])
    return single, ga


class BareKeras:
    """The baseline: the bare Keras model, the same features and scaler, ``model.predict`` per clip."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.model = predictor.members[0]

    def predict(self, path: str) -> np.ndarray:
        from speech_emotion.audio import load_audio
        from speech_emotion.features import clip_features, feature_set_from_clips

        params = self.predictor.feature_params
        feats = feature_set_from_clips([clip_features(load_audio(path, params.sample_rate), params)], params)
        x = self.model.inputs(self.predictor.scaler.transform(feats))
        return self.model.model.predict(x, verbose=0)[0]


def per_clip_ms(fn, paths: list[str]) -> float:
    times = []
    for p in paths:
        start = time.perf_counter()
        fn(p)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def folder_s(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def process_s(cmd: list[str], repeat: int) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


BASELINE_PROCESS = """
import sys, keras
from speech_emotion.models import register_custom_objects
from speech_emotion.features import FeatureParams, FeatureScaler, clip_features, feature_set_from_clips
from speech_emotion.audio import load_audio
from speech_emotion.models.trained import load_trained
folder, clip = sys.argv[1], sys.argv[2]
import json
m = load_trained(folder, "member_0")
params = FeatureParams(**json.load(open(folder + "/manifest.json"))["feature_params"])
scaler = FeatureScaler.from_npz(open(folder + "/scaler.npz", "rb").read())
feats = feature_set_from_clips([clip_features(load_audio(clip, params.sample_rate), params)], params)
print(m.model.predict(m.inputs(scaler.transform(feats)), verbose=0)[0].argmax())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None, help="training run name (default: the latest completed)")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--latency-clips", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    run, deployed, members, weights = load_run(args.run)
    single, ga = predictors(deployed, members, weights)
    clips = sorted(str(p) for p in (ROOT / "data" / "demo").rglob("*.wav"))
    if len(clips) < args.clips:
        raise SystemExit(f"only {len(clips)} demo clips under data/demo; pass --clips {len(clips)}")
    rng = np.random.default_rng(0)
    folder_clips = list(rng.choice(clips, args.clips, replace=False))
    latency_clips = folder_clips[: args.latency_clips]
    bare = BareKeras(single)
    # warm-up: graph tracing, numba JIT of librosa, filterbanks
    for fn in (single.predict_paths, *([ga.predict_paths] if ga else [])):
        fn(latency_clips[:2])
    bare.predict(latency_clips[0])
    np.testing.assert_allclose(single.predict_paths(latency_clips[:1])[list(single.classes)].to_numpy(float)[0],
                               bare.predict(latency_clips[0]), atol=1e-5)

    rows = []
    for _ in range(args.repeat):  # interleaved, so machine noise hits both alike
        rows.append({
            "latency_bare": per_clip_ms(bare.predict, latency_clips),
            "latency_single": per_clip_ms(lambda p: single.predict_paths([p]), latency_clips),
            "latency_ga": per_clip_ms(lambda p: ga.predict_paths([p]), latency_clips) if ga else float("nan"),
            "folder_bare": folder_s(lambda: [bare.predict(p) for p in folder_clips]),
            "folder_single": folder_s(lambda: single.predict_paths(folder_clips)),
            "folder_ga": folder_s(lambda: ga.predict_paths(folder_clips)) if ga else float("nan"),
        })
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}

    with tempfile.TemporaryDirectory() as tmp:
        folder = single.save(Path(tmp) / "predictor")
        ser = str(Path(sys.executable).parent / "ser")
        clip = latency_clips[0]
        start_bare = process_s([sys.executable, "-c", BASELINE_PROCESS, str(folder), clip], args.repeat)
        start_folder = process_s([ser, "predict", clip, "--model", str(folder), "--json", "-q"], args.repeat)
        start_store = process_s([ser, "predict", clip, "--json", "-q"], args.repeat)
        shutil.rmtree(folder)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"run: {run.name}; best single network (validation loss): {single.name}; "
          f"GA ensemble of {len(members)} members ({', '.join(m.name for m in members)})")
    print(f"latency over {len(latency_clips)} clips, folder of {len(folder_clips)} clips, median of {args.repeat}")
    print("| measure | bare Keras per clip | predictor, best single | predictor, GA ensemble | ratio (single) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| warm latency, one clip (ms) | {med['latency_bare']:.1f} | {med['latency_single']:.1f} | "
          f"{med['latency_ga']:.1f} | {med['latency_bare'] / med['latency_single']:.2f}x |")
    print(f"| folder throughput (clips/s) | {len(folder_clips) / med['folder_bare']:.1f} | "
          f"{len(folder_clips) / med['folder_single']:.1f} | {len(folder_clips) / med['folder_ga']:.1f} | "
          f"{med['folder_bare'] / med['folder_single']:.2f}x |")
    print(f"| process start-up + one clip (s) | {start_bare:.2f} | {start_folder:.2f} (--model FOLDER), "
          f"{start_store:.2f} (production from the store) | | {start_bare / start_folder:.2f}x |")


if __name__ == "__main__":
    main()
