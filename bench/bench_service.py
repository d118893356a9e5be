"""The HTTP service under load: `ser serve` against `mlflow models serve`, same model, same clips, same run.

    .venv/bin/python bench/bench_service.py                       # 400 requests, 16 clients, both servers
    .venv/bin/python bench/bench_service.py --requests 20 --clients 2 --no-timings   # the CI check

Both servers are started on free loopback ports with ``SER_MAX_AUDIO_MB=1``; each is sent ``--requests``
requests from ``--clients`` concurrent clients, in ``--rounds`` chunks that go to each server in turn
(the order alternating), so a change in a shared machine's load touches both alike. Nine in ten are real demo clips (all four corpora,
native rates); one in ten is bad, in turn: a truncated WAV, a Git LFS pointer stub, an empty body,
and an upload over ``SER_MAX_AUDIO_MB``. It checks that

- every good request gets the label (and probabilities, within 1e-4) that the same predictor gives
  in this process (``Predictor.predict_paths``);
- every bad one gets a clean error: ``ser serve`` a 4xx status with an error code and a message;
  MLflow, whose protocol answers a row per input, either that or a 200 row carrying the error;
- the server is still up at the end (``/health`` or ``/ping``);
- its resident memory (psutil, summed over the server's process tree) does not grow from the middle
  of the run to its end by more than ``--max-growth-mb``: the first half warms the allocator up,
  a leak keeps growing in the second.

It prints p50 / p95 latency, requests/s and peak resident memory for both servers (not with
``--no-timings``), and exits non-zero when a check fails.

The model: ``--model train`` (default) trains a small CNN2D-LSTM (the test profile's size, one epoch)
on the clips, so the figures measure the serving cost of a real network and not its accuracy;
``--model FOLDER`` serves a saved predictor folder, ``--model production`` the project's production
version. ``ser serve`` is given the predictor folder; MLflow the same folder saved as the project's
pyfunc model (:mod:`speech_emotion.pyfunc`), served with ``--env-manager local``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import free_port, running  # noqa: E402

BIN = Path(sys.executable).parent
LIMIT_MB = 1.0
BAD_KINDS = ("truncated", "lfs_pointer", "empty", "oversized")
#: what ser serve must answer for each bad kind: (status, error code)
SER_BAD = {"truncated": (422, "truncated_audio"), "lfs_pointer": (422, "git_lfs_pointer"),
           "empty": (400, "empty_audio"), "oversized": (413, "too_large")}
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a21\nsize 52311\n"


# --------------------------------------------------------------------------- inputs


def find_clips(folder: Path | None, n: int, work: Path) -> tuple[list[str], list[str]]:
    """``n`` demo clips spread over the four corpora (the project's demo corpus, else a fresh small one),
    and their emotions."""
    from speech_emotion.corpora.ingest import ingest_corpora
    from speech_emotion.demo_corpus import CORPUS_DIRS, generate_demo_corpus

    folder = folder or ROOT / "data" / "demo"
    roots = {c: folder / d for c, d in CORPUS_DIRS.items() if (folder / d).is_dir()}
    if not roots:
        roots = generate_demo_corpus(work / "demo", per_class=2, seed=0, progress=False)
    table = ingest_corpora({c: str(r) for c, r in roots.items()}, progress=False).utterances
    table = table.sort_values("path")
    table = table.assign(rank=table.groupby("corpus").cumcount()).sort_values(["rank", "corpus"]).head(n)
    return table["path"].tolist(), table["emotion"].tolist()  # the corpora interleaved


def build_model(spec: str, clips: list[str], emotions: list[str], window_s: float, work: Path) -> Path:
    """A predictor folder to serve (see the module docstring)."""
    from speech_emotion.predictor import Predictor

    if spec == "train":
        from speech_emotion.config import ModelConfig, TrainingConfig
        from speech_emotion.corpora.common import EMOTION_TO_INDEX
        from speech_emotion.features import FeatureParams, FeatureScaler, extract_features
        from speech_emotion.training import train_model

        params = FeatureParams(duration_s=window_s)
        labels = [EMOTION_TO_INDEX[e] for e in emotions]
        raw = extract_features(clips, labels, ["demo"] * len(clips), params=params, progress=False)
        scaler = FeatureScaler.fit(raw)
        scaled = scaler.transform(raw)
        hparams = {"kernel_size": 3, "conv_blocks": 2, "filters_first": 4, "filters_next": 8, "lstm_units": 8}
        model = train_model(scaled, scaled, ModelConfig(family="cnn2d_lstm", hparams=hparams),
                            TrainingConfig(epochs=1, batch_size=16, early_stopping_patience=1), progress=False)
        predictor = Predictor(members=[model], scaler=scaler, feature_params=params)
    elif Path(spec).is_dir():
        return Path(spec)
    else:
        from speech_emotion.cli import use_project_store
        from speech_emotion.versions import resolve_predictor

        use_project_store()
        predictor, _ = resolve_predictor(None if spec == "production" else spec)
    return predictor.save(work / "predictor")


def mlflow_model(predictor_folder: Path, work: Path) -> Path:
    """The same predictor as the project's pyfunc model, saved as a local MLflow model folder."""
    import mlflow

    from speech_emotion.predictor import Predictor
    from speech_emotion.pyfunc import ARTIFACT, EmotionModel, _requirements, signature

    out = work / "mlflow_model"
    mlflow.pyfunc.save_model(str(out), python_model=EmotionModel(), artifacts={ARTIFACT: str(predictor_folder)},
                             signature=signature(Predictor.load(predictor_folder).classes),
                             pip_requirements=_requirements())
    return out


@dataclass
class Request:
    kind: str  # "good" or one of BAD_KINDS
    body: bytes
    clip: int = -1  # index into the clips for a good one


def plan(n: int, clips: list[bytes]) -> list[Request]:
    """``n`` requests: every tenth bad (the kinds in turn), the rest the clips in turn."""
    limit = int(LIMIT_MB * 2**20)
    first = clips[0]
    bad = {"truncated": first[: len(first) // 3], "lfs_pointer": LFS_POINTER, "empty": b"",
           "oversized": first + b"\0" * (limit + 2**19 - len(first))}
    out, good, wrong = [], 0, 0
    for i in range(n):
        if i % 10 == 9:
            kind = BAD_KINDS[wrong % len(BAD_KINDS)]
            out.append(Request(kind, bad[kind]))
            wrong += 1
        else:
            out.append(Request("good", clips[good % len(clips)], good % len(clips)))
            good += 1
    return out


# --------------------------------------------------------------------------- servers


class SerServe:
    name = "ser serve"

    def __init__(self, extra: str = ""):
        self.extra = extra.split()

    def command(self, folder: Path, port: int) -> list[str]:
        return [str(BIN / "ser"), "serve", "--model", str(folder), "--port", str(port), *self.extra]

    def health(self, url: str) -> str:
        return f"{url}/health"

    def send(self, url: str, request: Request) -> tuple[int, dict]:
        return _post(f"{url}/predict", request.body, "audio/wav")

    def row(self, answer: dict) -> dict:
        return answer

    def clean_error(self, request: Request, status: int, answer: dict) -> str | None:
        want_status, want_error = SER_BAD[request.kind]
        if status != want_status or answer.get("error") != want_error or not answer.get("error_detail"):
            return f"{request.kind}: wanted {want_status} {want_error} with a message, got {status} {answer}"
        return None


class MlflowServe:
    name = "mlflow models serve"

    def command(self, folder: Path, port: int) -> list[str]:
        return [str(BIN / "mlflow"), "models", "serve", "-m", str(folder), "--env-manager", "local",
                "-h", "127.0.0.1", "-p", str(port), "-w", "1"]

    def health(self, url: str) -> str:
        return f"{url}/ping"

    def send(self, url: str, request: Request) -> tuple[int, dict]:
        body = json.dumps({"dataframe_split": {"columns": ["audio"],
                                               "data": [[base64.b64encode(request.body).decode()]]}})
        return _post(f"{url}/invocations", body.encode(), "application/json")

    def row(self, answer: dict) -> dict:
        return answer["predictions"][0]

    def clean_error(self, request: Request, status: int, answer: dict) -> str | None:
        if 400 <= status < 500 and (answer.get("message") or answer.get("error_detail")):
            return None
        row = answer.get("predictions", [{}])[0] if status == 200 else {}
        if status == 200 and row.get("error") and row.get("error_detail"):
            return None
        return f"{request.kind}: wanted a 4xx or an error row, got {status} {str(answer)[:300]}"


def _post(url: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=300) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, {"raw": raw.decode(errors="replace")[:300]}


class MemorySampler(threading.Thread):
    """Resident memory of a process and its descendants, every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0
        self._done = threading.Event()

    def rss(self) -> int:
        import psutil

        total = 0
        for p in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.rss())
            self._done.wait(0.05)

    def stop(self) -> None:
        self._done.set()
        self.join()


@dataclass
class Result:
    server: str
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    rss_warm_mb: float = 0.0
    rss_half_mb: float = 0.0
    rss_end_mb: float = 0.0
    peak_mb: float = 0.0
    up_at_end: bool = False
    bad_answers: dict = field(default_factory=dict)  # kind -> {"status error": count}

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        return {"server": self.server, "requests": len(lat), "p50_ms": round(statistics.median(lat), 1),
                "p95_ms": round(q[94], 1), "requests_per_s": round(len(lat) / self.wall_s, 2),
                "peak_rss_mb": round(self.peak_mb, 1), "rss_warm_mb": round(self.rss_warm_mb, 1),
                "rss_half_mb": round(self.rss_half_mb, 1), "rss_end_mb": round(self.rss_end_mb, 1),
                "up_at_end": self.up_at_end, "problems": len(self.problems), "bad_answers": self.bad_answers}


@dataclass
class Live:
    server: object
    url: str
    proc: subprocess.Popen
    result: Result
    sampler: MemorySampler


def _send(live: Live, request: Request, expected: list[dict]) -> None:
    server, result = live.server, live.result
    start = time.perf_counter()
    try:
        status, answer = server.send(live.url, request)
    except OSError as exc:
        result.problems.append(f"{request.kind}: no answer: {exc}")
        return
    result.latencies_ms.append((time.perf_counter() - start) * 1000)
    if request.kind != "good":
        code = server.row(answer).get("error") if status == 200 else answer.get("error") or answer.get("error_code")
        key = f"{status} {code or ''}".strip()
        counts = result.bad_answers.setdefault(request.kind, {})
        counts[key] = counts.get(key, 0) + 1
    problem = check(server, request, status, answer, expected)
    if problem:
        result.problems.append(problem)


def run_servers(servers: list[tuple[object, Path]], requests: list[Request], expected: list[dict], clients: int,
                max_growth_mb: float, rounds: int = 4) -> list[Result]:
    """Start every server on a free port and warm it up; then send the requests in ``rounds`` chunks, each
    chunk to every server in turn (the order alternating), so a change in the shared machine's load
    touches both alike. Checks every answer, that each server is up at the end, and its memory."""
    env = {**os.environ, "SER_MAX_AUDIO_MB": str(LIMIT_MB), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SER_AUTH_KEY", None)
    with contextlib.ExitStack() as stack:
        lives = []
        for server, folder in servers:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = stack.enter_context(running(server.command(folder, port), server.health(url), env=env, cwd=ROOT))
            lives.append(Live(server, url, proc, Result(server.name), MemorySampler(proc.pid)))
        warm_up = [*[r for r in requests if r.kind == "good"][:3], *[r for r in requests if r.kind != "good"][:4]]
        for live in lives:
            for request in warm_up:
                live.server.send(live.url, request)  # not counted
            live.result.rss_warm_mb = live.sampler.rss() / 2**20
            live.sampler.start()
        rounds = max(2, min(rounds, len(requests)))
        chunks = [requests[k * len(requests) // rounds:(k + 1) * len(requests) // rounds] for k in range(rounds)]
        for k, chunk in enumerate(chunks):
            for live in lives if k % 2 == 0 else lives[::-1]:
                t0 = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    list(pool.map(lambda r, live=live: _send(live, r, expected), chunk))
                live.result.wall_s += time.perf_counter() - t0
            if k == rounds // 2 - 1:
                for live in lives:
                    live.result.rss_half_mb = live.sampler.rss() / 2**20
        for live in lives:
            result = live.result
            result.rss_end_mb = live.sampler.rss() / 2**20
            live.sampler.stop()
            result.peak_mb = live.sampler.peak / 2**20
            try:
                with urllib.request.urlopen(live.server.health(live.url), timeout=30) as r:
                    result.up_at_end = r.status == 200 and live.proc.poll() is None
            except OSError:
                result.up_at_end = False
            if not result.up_at_end:
                result.problems.append("the server was not up at the end")
            if result.rss_end_mb - result.rss_half_mb > max_growth_mb:
                result.problems.append(f"resident memory grew by {result.rss_end_mb - result.rss_half_mb:.1f} MB "
                                       f"over the second half of the run (over --max-growth-mb {max_growth_mb:g})")
    return [live.result for live in lives]


def check(server, request: Request, status: int, answer: dict, expected: list[dict]) -> str | None:
    if request.kind != "good":
        return server.clean_error(request, status, answer)
    if status != 200:
        return f"clip {request.clip}: status {status}: {str(answer)[:300]}"
    row, want = server.row(answer), expected[request.clip]
    if row.get("error") or row.get("emotion") != want["emotion"]:
        return f"clip {request.clip}: {row.get('emotion')} ({row.get('error')}), in process {want['emotion']}"
    probabilities = answer["probabilities"] if "probabilities" in answer else row
    worst = max(abs(float(probabilities[c]) - want[c]) for c in want["classes"])
    if worst > 1e-4:
        return f"clip {request.clip}: probabilities differ from the in-process ones by {worst:.2g}"
    return None


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=400, help="requests per server (default: 400)")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (default: 16)")
    p.add_argument("--clips", type=Path, default=None, help="demo corpus folder (default: data/demo, else a fresh one)")
    p.add_argument("--n-clips", type=int, default=40, help="distinct clips to cycle through (default: 40)")
    p.add_argument("--model", default="train", help="train (default), a predictor folder, production, or a version")
    p.add_argument("--window-s", type=float, default=8.0, help="window of the trained model (default: 8 s)")
    p.add_argument("--servers", default="ser,mlflow", help="which servers (default: ser,mlflow)")
    p.add_argument("--ser-args", default="", help="more options for `ser serve`, e.g. '--workers 1'")
    p.add_argument("--rounds", type=int, default=4,
                   help="the requests go in this many chunks, each to every server in turn (default: 4)")
    p.add_argument("--max-growth-mb", type=float, default=16.0,
                   help="resident memory may grow this much over the second half of the run (default: 16)")
    p.add_argument("--no-timings", action="store_true", help="correctness only (CI)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> list[Result]:
    from speech_emotion.predictor import Predictor

    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        work = Path(tmp)
        clips, emotions = find_clips(args.clips, args.n_clips, work)
        folder = build_model(args.model, clips, emotions, args.window_s, work)
        predictor = Predictor.load(folder)
        table = predictor.predict_paths(clips)
        assert table["error"].isna().all(), table[table["error"].notna()]
        expected = [{"emotion": r["emotion"], "classes": predictor.classes, **{c: r[c] for c in predictor.classes}}
                    for r in table.to_dict("records")]
        requests = plan(args.requests, [Path(c).read_bytes() for c in clips])
        available = {"ser": lambda: (SerServe(args.ser_args), folder), "mlflow": lambda: (MlflowServe(), mlflow_model(folder, work))}
        servers = [available[key]() for key in args.servers.split(",")]
        print(f"{', '.join(s.name for s, _ in servers)}: {len(requests)} requests each from {args.clients} clients, "
              f"in {args.rounds} interleaved rounds ...", file=sys.stderr)
        results = run_servers(servers, requests, expected, args.clients, args.max_growth_mb, args.rounds)
        return results


def report(results: list[Result], args: argparse.Namespace) -> str:
    lines = []
    if not args.no_timings:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        lines += [f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
                  f"commit {commit.stdout.strip() or '?'}",
                  f"command: {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}", "",
                  "| server | requests | p50 ms | p95 ms | requests/s | peak RSS MB | RSS warm / half / end MB |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in results:
            s = r.summary()
            lines.append(f"| {s['server']} | {s['requests']} | {s['p50_ms']} | {s['p95_ms']} | {s['requests_per_s']} "
                         f"| {s['peak_rss_mb']} | {s['rss_warm_mb']} / {s['rss_half_mb']} / {s['rss_end_mb']} |")
        if len(results) == 2:
            a, b = results[0].summary(), results[1].summary()
            lines.append(f"| **{a['server']} vs {b['server']}** | | {b['p50_ms'] / a['p50_ms']:.2f}x lower "
                         f"| {b['p95_ms'] / a['p95_ms']:.2f}x lower | {a['requests_per_s'] / b['requests_per_s']:.2f}x "
                         f"| {a['peak_rss_mb'] / b['peak_rss_mb']:.2f}x | |")
    for r in results:
        verdict = "all checks passed" if not r.problems else f"{len(r.problems)} problem(s)"
        lines.append(f"{r.server}: {len(r.latencies_ms)} answers; {verdict}")
        lines.append("  bad requests answered: " + "; ".join(
            f"{kind}: " + ", ".join(f"{n} x {key}" for key, n in counts.items())
            for kind, counts in r.bad_answers.items()))
        lines += [f"  - {p}" for p in r.problems[:20]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(report(results, args))
    if args.json:
        args.json.write_text(json.dumps([{**r.summary(), "problem_list": r.problems} for r in results], indent=1))
    return 0 if all(not r.problems for r in results) else 1


if __name__ == "__main__":
    import logging

    # as a script only: the CI test calls main() in the test process, whose loggers other tests read
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("speech_emotion").setLevel(logging.ERROR)  # the demo corpus' rejected calm clips
    raise SystemExit(main())
