"""The ``ser`` command.

    ser setup                       initialise the ZenML repository and the local stack with MLflow
    ser demo-corpus OUT             synthesise the demo corpus in the four corpora's layouts
    ser ingest --tess DIR ... --out DIR   ingest corpora into utterances.csv / rejected.csv
    ser mlflow-ui                   open the MLflow UI on this project's runs
    ser dashboard [start|stop|status]   the ZenML dashboard on this project's store (client config untouched)

Heavy imports (ZenML, TensorFlow) happen inside the subcommands that need them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from speech_emotion.corpora.common import CORPORA

STACK = "ser_local"
TRACKER = "mlflow_tracker"


def _cmd_demo_corpus(args: argparse.Namespace) -> int:
    from speech_emotion.demo_corpus import generate_demo_corpus

    roots = generate_demo_corpus(args.out, per_class=args.per_class, seed=args.seed, progress=not args.quiet)
    for corpus, root in roots.items():
        print(f"{corpus:8s} {root}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from speech_emotion.corpora import IngestOptions, ingest_corpora

    roots = {c: getattr(args, c) for c in CORPORA if getattr(args, c)}
    if not roots:
        print("ser ingest: give at least one of --tess --savee --ravdess --crema", file=sys.stderr)
        return 2
    options = IngestOptions(
        ravdess_song=args.ravdess_song,
        ravdess_calm=args.ravdess_calm,
        min_duration_s=args.min_duration,
        silence_dbfs=args.silence_dbfs,
    )
    try:
        result = ingest_corpora(roots, options, progress=not args.quiet)
    except FileNotFoundError as exc:
        print(f"ser ingest: {exc}", file=sys.stderr)
        return 2
    utt_csv, rej_csv = result.write(args.out)
    print(result.summary())
    print(f"\n{result.found} files found: {len(result.utterances)} ingested -> {utt_csv}, "
          f"{len(result.rejected)} rejected -> {rej_csv}")
    return 0


def setup_stack(root: Path | None, activate: bool = True) -> str:
    """Register the local stack with the MLflow tracker; return its id. Idempotent.

    With ``root``, also initialise the ZenML repository there (source root =
    project root). With ``activate``, make the stack the active one (tests
    select it with ``ZENML_ACTIVE_STACK_ID`` instead, writing no config).
    """
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.exceptions import InitializationException

    if root is not None:
        try:
            Client.initialize(root=root)
        except InitializationException:
            pass  # already a ZenML repository
    client = Client()
    try:
        client.get_stack_component(StackComponentType.EXPERIMENT_TRACKER, TRACKER)
    except KeyError:
        client.create_stack_component(TRACKER, "mlflow", StackComponentType.EXPERIMENT_TRACKER, configuration={})
    try:
        client.get_stack(STACK)
    except KeyError:
        client.create_stack(
            STACK,
            components={
                StackComponentType.ORCHESTRATOR: "default",
                StackComponentType.ARTIFACT_STORE: "default",
                StackComponentType.EXPERIMENT_TRACKER: TRACKER,
            },
        )
    if activate:
        client.activate_stack(STACK)
    return str(client.get_stack(STACK).id)


def _cmd_setup(args: argparse.Namespace) -> int:
    setup_stack(Path(args.root).resolve())
    print(f"ZenML repository at {Path(args.root).resolve()}; active stack '{STACK}' "
          f"(local orchestrator, local artifact store, MLflow tracker '{TRACKER}')")
    print(f"MLflow tracking URI: {mlflow_tracking_uri()}")
    return 0


def mlflow_tracking_uri() -> str:
    from zenml.client import Client

    tracker = Client().active_stack.experiment_tracker
    if tracker is None or tracker.flavor != "mlflow":
        raise SystemExit("the active ZenML stack has no MLflow experiment tracker: run `ser setup` first")
    return tracker.get_tracking_uri()


def _cmd_mlflow_ui(args: argparse.Namespace) -> int:
    import subprocess

    uri = mlflow_tracking_uri()
    if args.print_uri:
        print(uri)
        return 0
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", args.host, "--port", str(args.port)]
    print(" ".join(cmd))
    return subprocess.call(cmd)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from speech_emotion import dashboard

    if args.action == "stop":
        print("ZenML dashboard stopped" if dashboard.stop() else "no ZenML dashboard was running")
        return 0
    if args.action == "status":
        found = dashboard.running()
        print(f"ZenML dashboard running at {found.url}" if found else "no ZenML dashboard is running")
        return 0 if found else 1
    found = dashboard.start(host=args.host, port=args.port)
    print(f"ZenML dashboard: {found.url}  (server log: {found.log_file})")
    print("The client still uses the project's store directly; pipeline runs work with or without it.")
    print("Stop it with: make dashboard-stop  (= ser dashboard stop)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ser",
        description="Speech emotion recognition on TESS, SAVEE, RAVDESS and CREMA-D (ZenML + MLflow).",
        epilog="Train with: zenml pipeline run pipelines.training.training_pipeline -c configs/demo.yaml",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("setup", help="initialise the ZenML repository and the local stack with the MLflow tracker")
    p.add_argument("--root", default=".", help="project root (default: current folder)")
    p.set_defaults(func=_cmd_setup)

    p = sub.add_parser(
        "demo-corpus",
        help="synthesise a small speech corpus in the four corpora's real layouts",
        description="Synthesise speech with eSpeak NG (in-process, offline) in the real file names, folder "
        "layouts and sample rates of TESS, SAVEE, RAVDESS and CREMA-D. Deterministic for a seed.",
    )
    p.add_argument("out", help="output folder (gets TESS/ SAVEE/ RAVDESS/ CREMA-D/)")
    p.add_argument("--per-class", type=int, default=6, help="files per class per corpus (default: 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo_corpus)

    p = sub.add_parser(
        "ingest",
        help="parse and validate corpora into utterances.csv and rejected.csv",
        description="Every file found under the given roots ends up in utterances.csv or in rejected.csv "
        "with the reason. Layouts as distributed (RAVDESS Actor_XX/, CREMA-D AudioWAV/, TESS nested "
        "folders, SAVEE AudioData/ or ALL/).",
    )
    for corpus in CORPORA:
        p.add_argument(f"--{corpus}", metavar="DIR", help=f"{corpus.upper()} root folder")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for utterances.csv and rejected.csv")
    p.add_argument("--ravdess-song", action="store_true", help="include RAVDESS song files (default: speech only)")
    p.add_argument("--ravdess-calm", choices=["drop", "neutral"], default="drop",
                   help="RAVDESS calm: drop (default) or merge into neutral")
    p.add_argument("--min-duration", type=float, default=0.5, metavar="S", help="reject clips shorter than S seconds (0.5)")
    p.add_argument("--silence-dbfs", type=float, default=-60.0, metavar="DB", help="reject clips quieter than DB dBFS (-60)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("mlflow-ui", help="open the MLflow UI on this project's runs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--print-uri", action="store_true", help="only print the tracking URI")
    p.set_defaults(func=_cmd_mlflow_ui)

    p = sub.add_parser(
        "dashboard",
        help="start / stop the ZenML dashboard on this project's store",
        description="Starts ZenML's local server as a background process on the project's own store, "
        "without connecting the client to it (unlike `zenml login --local`).",
    )
    p.add_argument("action", nargs="?", choices=["start", "stop", "status"], default="start")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8237)
    p.set_defaults(func=_cmd_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
