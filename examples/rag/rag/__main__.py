"""``python -m rag ingest | ask QUESTION | eval | serve`` (settings from the environment, as the pod gets them):

    DATA_LAKE_ACCOUNT_URL, DATA_LAKE_CONTAINER, DATA_LAKE_PREFIX   the source (workload identity in the pod)
    DATA_LAKE_CONNECTION_STRING                                     instead of the URL: Azurite, locally
    INFERENCE_GATEWAY_URL, INFERENCE_API_KEY                        the gateway and this tenant's key
    EMBEDDING_MODEL (platform-embed), CHAT_MODEL (platform-llm)
    QDRANT_URL, QDRANT_API_KEY, QDRANT_COLLECTION (rag) | QDRANT_PATH (local mode)
    MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD   (optional: runs not tracked without)
    RAG_EVAL_FILE (eval.jsonl next to the corpus), PORT (8080, serve)

``serve``: ``POST /v1/ask`` ``{"question": "...", "k": 4}`` -> ``{"answer", "citations": [{"n", "source",
"chunk", "url", "score"}]}``; ``GET /healthz``.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rag import pipeline
from rag.clients import BlobSource, Gateway, MlflowTracker, QdrantIndex

HERE = Path(__file__).resolve().parents[1]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def source() -> BlobSource:
    return BlobSource(_env("DATA_LAKE_CONTAINER", "datalake"), account_url=_env("DATA_LAKE_ACCOUNT_URL"),
                      connection_string=_env("DATA_LAKE_CONNECTION_STRING"), prefix=_env("DATA_LAKE_PREFIX", ""))


def gateway() -> Gateway:
    return Gateway(_env("INFERENCE_GATEWAY_URL"), _env("INFERENCE_API_KEY"),
                   embedding_model=_env("EMBEDDING_MODEL", "platform-embed"),
                   chat_model=_env("CHAT_MODEL", "platform-llm"))


def index() -> QdrantIndex:
    return QdrantIndex(_env("QDRANT_COLLECTION", "rag"), url=_env("QDRANT_URL"), api_key=_env("QDRANT_API_KEY"),
                       path=_env("QDRANT_PATH"))


def tracker() -> MlflowTracker | None:
    uri = _env("MLFLOW_TRACKING_URI")
    return MlflowTracker(uri, username=_env("MLFLOW_TRACKING_USERNAME"),
                         password=_env("MLFLOW_TRACKING_PASSWORD")) if uri else None


def evaluate(embedder, idx, questions_file: Path, track=None) -> dict[str, float]:
    questions = [json.loads(line) for line in questions_file.read_text().splitlines() if line.strip()]
    scores = pipeline.hit_rate(questions, embedder, idx)
    if track is not None:
        with track.run("rag-evaluation", "hit-rate", {"questions": len(questions), "file": questions_file.name}) as run:
            run.log_metrics(scores)
    return scores


def serve(embedder, idx, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send(200, {"status": "ok"}) if self.path == "/healthz" else self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/v1/ask":
                return self._send(404, {"error": "not found"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                question, k = str(body["question"]), int(body.get("k", 4))
            except (ValueError, KeyError):
                return self._send(400, {"error": "expected {\"question\": str, \"k\": int}"})
            self._send(200, pipeline.answer(question, embedder, idx, k=max(1, min(k, 20))).as_dict())

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104 - a pod's port


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("ingest", "ask", "eval", "serve"):
        print(__doc__, file=sys.stderr)
        return 2
    embedder, idx = gateway(), index()
    if argv[0] == "ingest":
        report = pipeline.ingest(source(), embedder, idx, tracker=tracker())
        print(json.dumps({**report.metrics(), "indexed": report.indexed, "dropped": report.dropped}))
    elif argv[0] == "ask":
        print(json.dumps(pipeline.answer(" ".join(argv[1:]), embedder, idx).as_dict(), indent=2))
    elif argv[0] == "eval":
        print(json.dumps(evaluate(embedder, idx, Path(_env("RAG_EVAL_FILE", str(HERE / "eval.jsonl"))), tracker())))
    else:
        serve(embedder, idx, int(_env("PORT", "8080")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
