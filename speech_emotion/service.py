"""A live HTTP service around the production predictor, with a page to try it.

    ser serve                      # http://127.0.0.1:8000: the page; POST /predict for programs

Why not a ZenML pipeline deployment: every ``zenml pipeline deploy`` invocation creates a pipeline
snapshot and a run that record the invocation's parameters in the ZenML store
(``deployment_snapshot_request_from_source_snapshot(..., deployment_parameters=...)`` in
``zenml/deployers/server/service.py``), and ``skip_artifact_materialization`` covers artifacts
only. Voice is personal data, so this service is a small FastAPI app that keeps no copy of the
audio: nothing is written to the ZenML store, the artifact store, MLflow or the logs (which carry
sizes and results only).

- ``POST /predict``: the audio file's bytes as the body (any Content-Type but JSON), or JSON
  ``{"audio": "<base64>"}`` or ``{"path": "..."}``. A path is refused unless it lies under
  ``SER_ALLOWED_AUDIO_ROOT``; a body over ``SER_MAX_AUDIO_MB`` (default 20) is refused before it
  is read further. The answer names the model version it used.
- The production version is loaded once; the service checks for a newly promoted one at most every
  ``reload_interval_s`` (60) seconds, or at once on ``POST /reload``.
- Under load, the clips of requests that arrive while the models are busy are scored together (up to
  ``max_batch``), off the event loop: one pass through the models costs about what one clip costs
  (bench/bench_service.py), and ``/health`` and refusals are answered at once meanwhile.
- Binds to 127.0.0.1 unless told otherwise; ``--auth-key`` (or ``SER_AUTH_KEY``) requires
  ``Authorization: Bearer <key>`` on every call but the page itself and ``/health``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from speech_emotion.predictor import Predictor
from speech_emotion.pyfunc import MAX_MB_ENV, allowed_root, max_audio_bytes, path_refusal

logger = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("service_page.html")
#: a refused upload up to this many times the size limit is read to its end, so the client gets the 413
DRAIN_LIMITS = 4


@dataclass
class ModelSource:
    """Where the predictor comes from: a folder (fixed), or the production version of a ZenML Model."""

    folder: str | None = None
    model_name: str = "speech_emotion"
    reload_interval_s: float = 60.0
    predictor: Predictor | None = None
    version: str = ""
    version_id: str = ""
    checked_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        if self.folder:
            self.predictor, self.version = Predictor.load(self.folder), f"folder {self.folder}"
            return
        from speech_emotion import versions

        mv = versions.production_version(self.model_name)
        if mv is None:
            raise versions.ModelNotFound(f"model {self.model_name!r} has no production version")
        self.predictor, self.version, self.version_id = versions.load_predictor(mv), mv.name, str(mv.id)
        logger.info("serving %s version %s: %s", self.model_name, mv.name, self.predictor.describe())

    def current(self, force: bool = False) -> Predictor:
        """The predictor, reloaded when production moved (checked at most every ``reload_interval_s``)."""
        return self.current_with_version(force)[0]

    def current_with_version(self, force: bool = False) -> tuple[Predictor, str]:
        """The predictor and its version name, read together (a reload cannot come in between)."""
        with self.lock:
            now = time.monotonic()
            if self.predictor is None:
                self.load()
                self.checked_at = now
            elif not self.folder and (force or now - self.checked_at >= self.reload_interval_s):
                self.checked_at = now
                from speech_emotion import versions

                mv = versions.production_version(self.model_name)
                if mv is not None and str(mv.id) != self.version_id:
                    self.load()
            return self.predictor, self.version


class Batcher:
    """Scores uploads off the event loop; those that queue up while a batch runs go together in the next one.

    One pass through a Keras model costs about the same for one clip as for a few (the per-call overhead
    dominates), so under load this multiplies throughput, and it adds no wait when the service is idle.
    ``workers`` batches run at once, in threads (decoding, features and TensorFlow release the GIL), so
    more than one core works. A batch that fails as a whole is scored again clip by clip, so one odd
    upload cannot fail the others.
    """

    def __init__(self, source: ModelSource, max_batch: int = 16, workers: int = 2):
        self.source, self.max_batch, self.n_workers = source, max_batch, workers
        self.queue: asyncio.Queue | None = None
        self.workers: list[asyncio.Task] = []

    async def score(self, name: str, data: bytes | None) -> tuple[dict, Predictor, str]:
        """The result row for one upload (``data``) or one file (``name`` with ``data`` None)."""
        if not self.workers:  # started on the first request, in the server's event loop
            self.queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            self.workers = [loop.create_task(self._run()) for _ in range(self.n_workers)]
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((name, data, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            batch = [item for item in batch if not item[2].done()]  # the client went away
            if not batch:
                continue
            items = [(name, data) for name, data, _ in batch]
            try:
                rows, predictor, version = await asyncio.to_thread(self._predict, items)
                outcomes: list = [(row, predictor, version) for row in rows]
            except Exception:  # noqa: BLE001 - score them one by one: only the culprit fails
                outcomes = []
                for item in items:
                    try:
                        rows, predictor, version = await asyncio.to_thread(self._predict, [item])
                        outcomes.append((rows[0], predictor, version))
                    except Exception as exc:  # noqa: BLE001 - handed to that request
                        outcomes.append(exc)
            for (_, _, future), outcome in zip(batch, outcomes):
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _predict(self, items: list[tuple[str, bytes | None]]) -> tuple[list[dict], Predictor, str]:
        predictor, version = self.source.current_with_version()
        return predictor.predict_items(items).to_dict("records"), predictor, version


class Refused(Exception):
    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def _number(value) -> float | None:
    """A float for JSON: None for a missing value (NaN where a batch's table mixed rows with and without one)."""
    return None if value is None or value != value else float(value)


def _answer(row: dict, predictor: Predictor, version: str) -> dict:
    probabilities = {c: _number(row[c]) for c in predictor.classes}
    return {"emotion": row["emotion"], "probabilities": None if row["error"] else probabilities,
            "duration_s": _number(row["duration_s"]), "windows": int(row["windows"]), "model": predictor.name,
            "model_version": version, "error": row["error"], "error_detail": row["error_detail"]}


def create_app(source: ModelSource, auth_key: str | None = None, max_batch: int = 16, workers: int = 2):
    """The FastAPI app; ``source`` says which predictor it serves."""
    app = FastAPI(title="Speech emotion recognition", description="Seven emotions from a speech clip.",
                  docs_url="/docs", redoc_url=None)
    root, limit = allowed_root(), max_audio_bytes()
    batcher = Batcher(source, max_batch, workers)

    def check_auth(request: Request) -> None:
        if auth_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {auth_key}".encode()):
            raise Refused(401, "unauthorized", "this service needs 'Authorization: Bearer <key>'")

    async def drain(request: Request, size: int) -> None:
        """Read and drop the rest of a refused upload, up to a few limits' worth: clients such as urllib and
        requests send the whole body before they read the answer, and would see a broken pipe, not the 413."""
        if size > DRAIN_LIMITS * limit:
            return
        async for chunk in request.stream():
            size += len(chunk)
            if size > DRAIN_LIMITS * limit:
                return

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            await drain(request, int(declared))
            raise Refused(413, "too_large", f"{int(declared) / 2**20:.1f} MB is over the limit of "
                          f"{limit / 2**20:g} MB ({MAX_MB_ENV})")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                await drain(request, size)
                raise Refused(413, "too_large", f"the upload is over the limit of {limit / 2**20:g} MB ({MAX_MB_ENV})")
            chunks.append(chunk)
        return b"".join(chunks)

    @app.exception_handler(Refused)
    async def refused(_request, exc: Refused):
        return JSONResponse({"error": exc.error, "error_detail": exc.detail}, status_code=exc.status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return PAGE.read_text()

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/info")
    def info(request: Request):
        check_auth(request)
        predictor = source.current()
        return {"model": predictor.name, "model_version": source.version, "classes": list(predictor.classes),
                "window_s": predictor.feature_params.duration_s, "max_audio_mb": limit / 2**20,
                "paths_allowed": root is not None, "description": predictor.describe()}

    @app.post("/reload")
    def reload(request: Request):
        check_auth(request)
        source.current(force=True)
        return {"model_version": source.version}

    @app.post("/predict")
    async def predict(request: Request):
        check_auth(request)
        body = await read_body(request)
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                payload = json.loads(body)
            except ValueError:
                raise Refused(400, "bad_request", "the body is not valid JSON") from None
            if not isinstance(payload, dict) or not ({"audio", "path"} & set(payload)):
                raise Refused(400, "bad_request", 'send {"audio": "<base64>"} or {"path": "..."}, or the raw file')
            if payload.get("audio") is not None:
                try:
                    body = base64.b64decode(str(payload["audio"]), validate=True)
                except (binascii.Error, ValueError):
                    raise Refused(400, "bad_request", "'audio' is not valid base64") from None
                if len(body) > limit:
                    raise Refused(413, "too_large", f"the audio is over the limit of {limit / 2**20:g} MB ({MAX_MB_ENV})")
            else:
                path = str(payload["path"])
                reason = path_refusal(path, root)
                if reason:
                    raise Refused(403, "path_refused", reason)
                return _respond(*await _score(path, None))
        if not body:
            raise Refused(400, "empty_audio", "the request has no audio (an empty body)")
        row, predictor, version = await _score("", body)
        logger.info("predicted %d bytes: %s", len(body), row["emotion"] or row["error"])
        return _respond(row, predictor, version)

    async def _score(name: str, data: bytes | None) -> tuple[dict, Predictor, str]:
        try:
            return await batcher.score(name, data)
        except LookupError as exc:
            raise Refused(503, "no_model", f"{exc}; train and promote one first") from None

    def _respond(row: dict, predictor: Predictor, version: str):
        answer = _answer(row, predictor, version)
        return JSONResponse(answer, status_code=422 if row["error"] else 200)

    return app


def serve(source: ModelSource, host: str = "127.0.0.1", port: int = 8000, auth_key: str | None = None,
          max_batch: int = 16, workers: int = 2) -> None:
    import uvicorn

    source.current()  # load before answering: a missing model fails here, with its message
    uvicorn.run(create_app(source, auth_key, max_batch, workers), host=host, port=port, log_level="info")
