"""The ``ser`` command.

    ser setup                       initialise the ZenML repository and the local stack with MLflow
    ser demo-corpus OUT             synthesise the demo corpus in the four corpora's layouts
    ser ingest --tess DIR ... --out DIR   ingest corpora into utterances.csv / rejected.csv
    ser mlflow-ui                   open the MLflow UI on this project's runs
    ser predict PATH...             label audio files and folders with the production model
    ser model list|promote|rollback the trained model versions and which one is in production
    ser retrain [--config FILE]     the retraining pipeline, under a lock (what a schedule runs)
    ser schedule install|list|remove   a weekly (or any cron) retrain in the user's crontab
    ser serve                       the production model over HTTP, with a page to try it
    ser dashboard [start|stop|status]   the ZenML dashboard on this project's store (client config untouched)
    ser runs clean [--dry-run]      mark runs left 'running' by a killed process as failed / KILLED
    ser clean [--stores [--yes]]    remove the caches; with --stores, every model, version and run (asks first)
    ser report [RUN] [--out DIR]    a training run's whole report (and model card) as a folder

Inside the project every command uses the project's ZenML store (``.zenml-home``)
unless ``ZENML_CONFIG_PATH`` says otherwise.

Heavy imports (ZenML, TensorFlow) happen inside the subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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
    from speech_emotion.corpora.common import IngestOptions
    from speech_emotion.corpora.ingest import ingest_corpora

    roots = {c: getattr(args, c) for c in CORPORA if getattr(args, c)}
    custom = []
    if args.corpus_config:
        from speech_emotion.corpora.custom import load_custom_corpora

        try:
            custom = load_custom_corpora(args.corpus_config)
        except ValueError as exc:
            print(f"ser ingest: {exc}", file=sys.stderr)
            return 2
    if not roots and not custom:
        print("ser ingest: give at least one of --tess --savee --ravdess --crema --corpus-config", file=sys.stderr)
        return 2
    options = IngestOptions(
        ravdess_song=args.ravdess_song,
        ravdess_calm=args.ravdess_calm,
        min_duration_s=args.min_duration,
        silence_dbfs=args.silence_dbfs,
    )
    try:
        result = ingest_corpora(roots, options, progress=not args.quiet, custom=custom)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
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


def create_mlflow_store(uri: str) -> None:
    """Create MLflow's tracking and registry tables now (idempotent), so that two first-ever runs
    started together do not both run MLflow's database migrations (ZenML's store is created by
    ``Client()`` in :func:`setup_stack`)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)


def _cmd_setup(args: argparse.Namespace) -> int:
    from speech_emotion.disks import probe

    home = os.environ.get("ZENML_CONFIG_PATH")
    why = probe(home) if home else None
    if why:
        print(f"ser setup: the ZenML store folder {home} {why}: free space there, make it writable, or point "
              "ZENML_CONFIG_PATH at a writable folder with room", file=sys.stderr)
        return 2
    setup_stack(Path(args.root).resolve())
    uri = mlflow_tracking_uri()
    create_mlflow_store(uri)
    print(f"ZenML repository at {Path(args.root).resolve()}; active stack '{STACK}' "
          f"(local orchestrator, local artifact store, MLflow tracker '{TRACKER}')")
    print(f"MLflow tracking URI: {uri} (database created)")
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


def project_root(start: Path | None = None) -> Path | None:
    """The project folder holding ``start`` (default: the current folder), or None outside it."""
    for folder in [start or Path.cwd(), *(start or Path.cwd()).parents]:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "speech-emotion"' in pyproject.read_text(errors="ignore"):
            return folder
    return None


def use_project_store() -> None:
    """Point ZenML at the project's store (as the Makefile does) unless ZENML_CONFIG_PATH is set."""
    root = project_root()
    if root is not None and "ZENML_CONFIG_PATH" not in os.environ:
        os.environ["ZENML_CONFIG_PATH"] = str(root / ".zenml-home")
    for key, value in (("ZENML_ANALYTICS_OPT_IN", "false"), ("AUTO_OPEN_DASHBOARD", "false"),
                       ("ZENML_ENABLE_RICH_TRACEBACK", "false"), ("KERAS_BACKEND", "tensorflow"),
                       ("TF_CPP_MIN_LOG_LEVEL", "2")):
        os.environ.setdefault(key, value)


NO_MODEL_HELP = ("Train one first: `make demo` (or `zenml pipeline run pipelines.training.training_pipeline "
                 "-c configs/demo.yaml`), or pass --model FOLDER with a saved predictor folder.")


def _short(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _cmd_predict(args: argparse.Namespace) -> int:
    from speech_emotion.predictor import find_audio_files
    from speech_emotion.versions import ModelNotFound, resolve_predictor

    paths = find_audio_files(args.paths)
    if not paths:
        print(f"ser predict: no audio files (WAV, FLAC, OGG, MP3) under {' '.join(args.paths)}", file=sys.stderr)
        return 2
    try:
        predictor, which = resolve_predictor(args.model)
    except ModelNotFound as exc:
        print(f"ser predict: no model to predict with: {exc}.\n{NO_MODEL_HELP}", file=sys.stderr)
        return 2
    if args.min_confidence is not None:
        predictor.min_confidence = args.min_confidence
    print(f"model: {which}: {predictor.describe()}", file=sys.stderr)

    if args.timeline:
        ok = 0
        for path in paths:
            try:
                timeline = predictor.timeline(path)
            except Exception as exc:  # AudioError: one line per bad file, the others go on
                print(f"{_short(path)}: error: {exc}", file=sys.stderr)
                continue
            ok += 1
            print(f"== {_short(path)}")
            print(timeline.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        return 0 if ok else 1

    from tqdm.auto import tqdm

    with tqdm(total=len(paths), desc="predict", unit="file", file=sys.stderr,
              disable=args.quiet or len(paths) < 2) as bar:
        table = predictor.predict_paths(paths, progress=bar.update)
    failed = table[table["error"].notna()]
    for _, row in failed.iterrows():
        print(f"{_short(row['path'])}: error {row['error']}: {row['error_detail']}", file=sys.stderr)
    if args.json:
        # to_json writes null for a missing value, where json.dumps would write NaN (not JSON)
        print(json.dumps(json.loads(table.drop(columns=["error_detail"]).to_json(orient="records")), indent=1))
    elif args.csv:
        table.to_csv(args.csv, index=False)
        print(f"{len(table)} rows -> {args.csv}", file=sys.stderr)
    else:
        shown = table.assign(path=table["path"].map(_short),
                             confidence=table[list(predictor.classes)].max(axis=1))
        print(shown[["path", "emotion", "confidence", "duration_s", "windows", "error"]]
              .to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}"))
    n_ok = len(table) - len(failed)
    print(f"{n_ok} of {len(table)} files labelled; {len(failed)} could not be read", file=sys.stderr)
    return 0 if n_ok else 1


def _cmd_model(args: argparse.Namespace) -> int:
    from speech_emotion import versions

    try:
        if args.action == "list":
            table = versions.versions_table()
            if not len(table):
                print(f"no versions of model {versions.MODEL_NAME!r} yet. {NO_MODEL_HELP}")
                return 0
            print(table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4f}"))
        elif args.action == "promote":
            mv = versions.get_version(args.version)
            versions.promote(mv, uri=versions.tracking_uri())
            print(f"version {mv.name} is now production (MLflow alias {versions.ALIAS!r})")
        else:
            mv = versions.rollback(uri=versions.tracking_uri())
            print(f"rolled back: version {mv.name} is production again (MLflow alias {versions.ALIAS!r})")
    except versions.ModelNotFound as exc:
        print(f"ser model {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0


def _root_or_exit(command: str) -> Path:
    root = project_root()
    if root is None:
        raise SystemExit(f"ser {command}: run it inside the project folder (no pyproject.toml of speech-emotion "
                         f"above {Path.cwd()})")
    return root


def _cmd_retrain(args: argparse.Namespace) -> int:
    from speech_emotion import schedule

    root = _root_or_exit("retrain")
    config = Path(args.config)
    if not (config if config.is_absolute() else root / config).is_file():
        print(f"ser retrain: config {args.config} not found", file=sys.stderr)
        return 2
    zenml = str(Path(sys.executable).with_name("zenml"))
    command = [zenml, "pipeline", "run", "pipelines.retraining.retraining_pipeline", "-c", str(args.config)]
    lock = Path(args.lock) if args.lock else schedule.state_dir(root) / "retrain.lock"
    from datetime import datetime

    print(f"{datetime.now().isoformat(timespec='seconds')} ser retrain: {' '.join(command)}", flush=True)
    try:
        return schedule.run_locked(command, lock)
    except schedule.ScheduleError as exc:
        print(f"ser retrain: {exc}", file=sys.stderr)
        return 3


def _cmd_schedule(args: argparse.Namespace) -> int:
    from speech_emotion import schedule

    root = _root_or_exit("schedule")
    try:
        if args.action == "install":
            line = schedule.cron_line(args.cron, root, args.config)
            if args.print:
                print(line)
                return 0
            schedule.state_dir(root).mkdir(parents=True, exist_ok=True)
            schedule.install(line, root, args.crontab_file)
            print(f"installed (replacing any earlier one for this project):\n{line}\n"
                  f"log: {schedule.state_dir(root) / 'retrain.log'}")
        elif args.action == "list":
            lines = schedule.installed(root, args.crontab_file)
            print("\n".join(lines) if lines else f"no retraining scheduled for {root}")
        else:
            n = schedule.remove(root, args.crontab_file)
            print(f"removed {n} line(s)" if n else f"no retraining was scheduled for {root}")
    except schedule.ScheduleError as exc:
        print(f"ser schedule {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import secrets

    from speech_emotion.service import ModelSource, serve
    from speech_emotion.versions import ModelNotFound

    auth_key = args.auth_key or os.environ.get("SER_AUTH_KEY")
    if args.generate_auth_key:
        auth_key = secrets.token_urlsafe(24)
        print(f"auth key (send 'Authorization: Bearer <key>'): {auth_key}", file=sys.stderr)
    folder = args.model if args.model and args.model != "production" else None
    source = ModelSource(folder=folder, reload_interval_s=args.reload_interval)
    try:
        source.current()
    except (ModelNotFound, FileNotFoundError) as exc:
        print(f"ser serve: no model to serve: {exc}.\n{NO_MODEL_HELP}", file=sys.stderr)
        return 2
    print(f"serving {source.version} on http://{args.host}:{args.port}/ (page), POST /predict; Ctrl-C stops",
          file=sys.stderr)
    serve(source, host=args.host, port=args.port, auth_key=auth_key, max_batch=args.max_batch, workers=args.workers)
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from speech_emotion import housekeeping

    if not args.stores:
        root = _root_or_exit("clean")
        removed = housekeeping.remove_caches(root)
        print("removed " + ", ".join(str(p.relative_to(root)) for p in removed) if removed else "no caches to remove")
        print("The stores (every model, version and run) are kept: `make clean-stores` removes them.")
        return 0
    if "ZENML_CONFIG_PATH" not in os.environ:
        print("ser clean --stores: outside the project; set ZENML_CONFIG_PATH to the store folder to remove",
              file=sys.stderr)
        return 2
    home = Path(os.environ["ZENML_CONFIG_PATH"]).resolve()
    if not home.is_dir():
        print(f"no stores at {home}: nothing to remove")
        return 0
    inv = housekeeping.inventory(home)
    print("\n".join(inv.lines()))
    print(f"Removing {home} deletes all of this for good (the caches under data/cache are separate).")
    if not args.yes:
        try:
            answer = input("Type 'yes' to delete: ")
        except EOFError:  # no terminal (CI, a pipe): not confirmed
            print()
            answer = ""
        if answer.strip().lower() != "yes":
            print("not confirmed: nothing deleted (confirm with --yes, or `make clean-stores CONFIRM=1`)",
                  file=sys.stderr)
            return 1
    housekeeping.remove_stores(home)
    print(f"removed {home}; `ser setup` (or `make setup`) creates fresh stores")
    return 0


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


def _cmd_runs(args: argparse.Namespace) -> int:
    from pipelines._runs import clean_stale_runs

    found = clean_stale_runs(found_by="ser runs clean", dry_run=args.dry_run)
    if not found:
        print("no run is marked running")
        return 0
    for run in found:
        if run.marked:
            verdict = "marked failed (ZenML) and KILLED (MLflow)"
        elif run.state == "gone":
            verdict = "process gone: would be marked failed / KILLED" if args.dry_run else "process gone, not marked"
        elif run.state == "alive":
            verdict = "still running: left alone"
        else:
            verdict = "cannot be checked from here: left alone"
        print(f"{run.name}  [{run.status}]  {verdict}  ({run.reason})")
def _cmd_report(args: argparse.Namespace) -> int:
    from pipelines.run_report import RunNotFound, find_run, write_run_report
    from speech_emotion.versions import tracking_uri

    try:
        run = find_run(args.run)
        out = Path(args.out or Path("reports") / run.name)
        name, index = write_run_report(str(run.id), out, tracking_uri())
    except RunNotFound as exc:
        print(f"ser report: {exc}. `zenml pipeline runs list` lists the runs; train one with `make demo`.",
              file=sys.stderr)
        return 2
    print(f"report of run {name}: {index}")
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
    p.add_argument("--corpus-config", metavar="FILE",
                   help="YAML file with a top-level 'custom:' list of corpora described by a pattern and an "
                   "emotion map (see the README); relative roots are taken from the file's folder")
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
        "predict",
        help="label audio files and folders with a trained model",
        description="Label each audio file (folders are searched recursively for WAV, FLAC, OGG and MP3) with "
        "one of the seven emotions and the probability of each. Clips longer than the training duration are "
        "scored over windows and averaged. A bad file gets its own error line and the others are still labelled; "
        "the exit status is non-zero only when no file could be labelled or no model was found.",
        epilog="Example: ser predict data/demo/TESS --json > predictions.json",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("--model", metavar="SPEC", default=None,
                   help="production (default; falls back to the latest version), latest, a Model version "
                   "name or number, or a predictor folder")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print only a JSON list of records on stdout")
    out.add_argument("--csv", metavar="FILE", help="write the table to FILE")
    out.add_argument("--timeline", action="store_true", help="per-window emotions of each (long) recording")
    p.add_argument("--min-confidence", type=float, default=None, metavar="P",
                   help="label clips whose top probability is below P as 'uncertain' (default: the model's, 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("model", help="list the model versions, promote one, roll back production",
                       description="Versions of the ZenML Model 'speech_emotion'. Promoting sets the ZenML stage "
                       "'production' and the MLflow registry alias 'champion' together.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every version with its stage, model and test figures")
    promote = actions.add_parser("promote", help="make VERSION the production version")
    promote.add_argument("version", metavar="VERSION", help="version name or number")
    actions.add_parser("rollback", help="return production to the version the current one replaced")
    p.set_defaults(func=_cmd_model)

    p = sub.add_parser("retrain", help="run the retraining pipeline under a lock (what a schedule runs)",
                       description="Runs `zenml pipeline run pipelines.retraining.retraining_pipeline -c CONFIG` "
                       "holding an inter-process lock: a second run while one is in progress is refused at once "
                       "(exit status 3). The pipeline trains only when the data changed since production.")
    p.add_argument("--config", default="configs/retrain.yaml", help="run config (default: configs/retrain.yaml)")
    p.add_argument("--lock", default=None, help="lock file (default: data/schedule/retrain.lock)")
    p.set_defaults(func=_cmd_retrain)

    p = sub.add_parser("schedule", help="schedule retraining in the user's crontab (local stack)",
                       description="The local orchestrator has no schedules: these commands manage one crontab "
                       "line that runs `ser retrain` in this project. On Kubernetes, Kubeflow, Airflow or Vertex "
                       "use the orchestrator's own schedule (configs/retrain_schedule.yaml).")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = actions.add_parser("install", help="add (or replace) this project's retraining line")
    install.add_argument("--cron", default="0 3 * * 1", help="cron expression (default: '0 3 * * 1', Mondays 03:00)")
    install.add_argument("--config", default="configs/retrain.yaml", help="run config of the retraining pipeline")
    install.add_argument("--print", action="store_true", help="print the line, install nothing")
    for action in (install, actions.add_parser("list", help="this project's line"),
                   actions.add_parser("remove", help="remove this project's line")):
        action.add_argument("--crontab-file", default=None, metavar="FILE",
                            help="a file instead of the user's crontab (also: SER_CRONTAB_FILE)")
    p.set_defaults(func=_cmd_schedule)

    p = sub.add_parser("serve", help="serve the production model over HTTP, with a page to try it",
                       description="A FastAPI service around the predictor: GET / is a page to drop an audio file "
                       "on; POST /predict takes the file's bytes (or JSON {\"audio\": base64} / {\"path\": ...}). "
                       "No copy of the audio is kept anywhere. A newly promoted production version is picked up "
                       "within --reload-interval seconds, or at once on POST /reload.",
                       epilog="curl -s --data-binary @clip.wav http://127.0.0.1:8000/predict")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default="production", metavar="SPEC",
                   help="production (default, follows promotions) or a predictor folder")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--auth-key", default=None, help="require 'Authorization: Bearer KEY' (also: SER_AUTH_KEY)")
    key.add_argument("--generate-auth-key", action="store_true", help="make a random key and print it")
    p.add_argument("--reload-interval", type=float, default=60.0, metavar="S",
                   help="check for a new production version at most every S seconds (default: 60)")
    p.add_argument("--max-batch", type=int, default=16, metavar="N",
                   help="score up to N uploads that arrive together in one pass through the models (default: 16)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="batches scored at once, in threads (default: 2)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("clean", help="remove caches; with --stores, the stores with every model and run",
                       description="Without options: remove the caches a later run rebuilds (data/cache: features "
                       "and content hashes; .pytest_cache, build). With --stores: print what the ZenML and MLflow "
                       "stores hold (models, versions, runs) and delete them after confirmation.")
    p.add_argument("--stores", action="store_true",
                   help="remove the stores under ZENML_CONFIG_PATH (.zenml-home): every model, version and run")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (make clean-stores CONFIRM=1)")
    p.set_defaults(func=_cmd_clean)

    p = sub.add_parser(
        "runs",
        help="mark runs left 'running' by a killed process as failed (ZenML) and KILLED (MLflow)",
        description="A run whose process was killed (SIGKILL, out of memory, power cut) stays 'running' in "
        "ZenML and MLflow. `ser runs clean` finds the runs marked running whose process is gone from this "
        "machine (host, boot, pid and start time are recorded in each run's metadata 'ser_process') and marks "
        "them failed in ZenML and KILLED in MLflow, with a note. Runs on other machines or remote orchestrators "
        "are left alone. Every pipeline run does the same when its first step starts.",
    )
    p.add_argument("action", choices=["clean"])
    p.add_argument("--dry-run", action="store_true", help="only say what would be marked")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser(
        "report",
        help="write a training run's whole report (dataset, comparison, ensembles, per origin / class, "
        "confusion matrices, inputs, model card) to a folder",
        description="Reads the run's artifacts from the ZenML store and its MLflow run and writes index.html, "
        "README.md, model_card.md, the tables as CSV and the figures as PNG.",
    )
    p.add_argument("run", nargs="?", help="pipeline run name or id (default: the latest completed training run)")
    p.add_argument("--out", metavar="DIR", help="folder to write (default: reports/<run name>)")
    p.set_defaults(func=_cmd_report)

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
    use_project_store()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
