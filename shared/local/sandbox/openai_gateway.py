"""The inference gateway as its clients see it: OpenAI's REST contract (https://platform.openai.com/docs/api-reference),
the subset the RAG example and the agent use, deterministic so that retrieval tests have stable numbers.

- ``POST /v1/embeddings`` ``{"model", "input": str | [str]}`` -> ``{"object": "list", "data": [{"object":
  "embedding", "index", "embedding": [...]}], "model", "usage": {"prompt_tokens", "total_tokens"}}``. The vector is
  a hashed bag of words: each lower-cased word (and each pair of neighbouring words) adds 1 to one of ``DIMENSIONS``
  buckets (SHA-256 of the term), then L2-normalised: texts sharing words are close, which is what a retrieval
  test needs, with no model.
- ``POST /v1/chat/completions`` ``{"model", "messages"}`` -> one ``assistant`` choice that repeats the sentences of
  the last user message's context (the lines after ``Context:``) that share the most words with the question,
  with the ``[n]`` markers they carry: an "answer with citations" whose citations can be checked.
- ``GET /v1/models``: the served model names.
- ``Authorization: Bearer <key>``: one of ``api_keys`` (as the gateway's API-key auth), else 401 with OpenAI's
  error envelope ``{"error": {"message", "type", "code"}}``; an unknown model is 404 ``model_not_found``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import threading
from typing import Any

from shared.local.sandbox.base import Emulator, Request, Response

DIMENSIONS = 256
WORD = re.compile(r"[a-z0-9]+")
STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "i", "in", "is", "it", "its",
    "of", "on", "or", "the", "this", "to", "what", "when", "which", "who", "why", "with"})


def terms(text: str) -> list[str]:
    words = [w for w in WORD.findall(text.lower()) if w not in STOP]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for term in terms(text):
        bucket = int.from_bytes(hashlib.sha256(term.encode()).digest()[:4], "big") % DIMENSIONS
        vector[bucket] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class OpenAIGatewayEmulator(Emulator):
    def __init__(self, *, api_keys: dict[str, str] | None = None,
                 models: tuple[str, ...] = ("platform-llm", "platform-llm-small", "platform-embed")) -> None:
        self.api_keys = dict(api_keys or {"sandbox-key": "sandbox"})
        self.models = models
        #: (tenant, path, model) of every accepted request
        self.calls: list[tuple[str, str, str]] = []
        self._calls_lock = threading.Lock()
        super().__init__()

    def settings_env(self) -> dict[str, str]:
        return {"INFERENCE_GATEWAY_URL": self.base_url, "INFERENCE_API_KEY": next(iter(self.api_keys))}

    def error_body(self, status: int, code: str, message: str) -> Any:
        kind = {401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
            status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def authenticate(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip()
        if key not in self.api_keys:
            return Response(401, self.error_body(401, "invalid_api_key", "Incorrect API key provided."))
        request.headers["x-tenant-id"] = self.api_keys[key]  # as the API-key auth forwards it
        return None

    def routes(self) -> None:
        self.route("GET", r"/v1/models", self.list_models)
        self.route("POST", r"/v1/embeddings", self.embeddings)
        self.route("POST", r"/v1/chat/completions", self.chat)

    def _model(self, request: Request, body: dict[str, Any]) -> str | Response:
        model = body.get("model")
        if model not in self.models:
            return Response(404, self.error_body(404, "model_not_found",
                                                 f"The model `{model}` does not exist."))
        with self._calls_lock:
            self.calls.append((request.headers.get("x-tenant-id", ""), request.path, model))
        return model

    def list_models(self, request: Request) -> Response:
        return Response(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "platform"}
                                                         for m in self.models]})

    def embeddings(self, request: Request) -> Response:
        body = request.json() or {}
        model = self._model(request, body)
        if isinstance(model, Response):
            return model
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return Response(400, self.error_body(400, "invalid_input", "input must be a string or strings"))
        tokens = sum(len(t.split()) for t in texts)
        return Response(200, {"object": "list", "model": model, "usage": {"prompt_tokens": tokens,
                                                                          "total_tokens": tokens},
                              "data": [{"object": "embedding", "index": i, "embedding": embed(t)}
                                       for i, t in enumerate(texts)]})

    def chat(self, request: Request) -> Response:
        body = request.json() or {}
        model = self._model(request, body)
        if isinstance(model, Response):
            return model
        user = next((m.get("content", "") for m in reversed(body.get("messages") or []) if m.get("role") == "user"),
                    "")
        question, _, context = user.partition("Context:")
        asked = set(terms(question))
        lines = [line.strip() for line in context.splitlines() if line.strip()]
        ranked = sorted(lines, key=lambda line: -len(asked & set(terms(line))))
        answer = " ".join(ranked[:2]) if ranked else "I do not know."
        prompt, completion = len(user.split()), len(answer.split())
        return Response(200, {"id": "chatcmpl-" + hashlib.sha256(user.encode()).hexdigest()[:12],
                              "object": "chat.completion", "created": 0, "model": model,
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": answer}}],
                              "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                        "total_tokens": prompt + completion}})
