"""The RAG example's clients, one per external system, each a thin layer on the official SDK or REST API.

- ``BlobSource``: a data-lake container through azure-storage-blob (ADLS Gen2 accounts serve the same data on
  their blob endpoint). In the cluster it authenticates with workload identity (the pod's service account is
  federated with a managed identity that has Storage Blob Data Reader on the container: gitops/apps/base/rag);
  locally with a connection string (Azurite).
- ``Gateway``: the inference gateway's OpenAI-compatible API (embeddings, chat completions) with the tenant's
  API key; 429/5xx are retried with the server's Retry-After (the gateway already tried every fallback).
- ``QdrantIndex``: qdrant-client; ``location=":memory:"`` or a ``path`` is its local mode (tests), a URL the
  cluster's Qdrant with its API key.
- ``MlflowTracker``: MLflow's tracking REST API (experiments, runs, log-batch), no MLflow package: the example
  stays a few MB (mlflow-skinny alone pulls dozens of packages).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rag.pipeline import SourceFile


class BlobSource:
    def __init__(self, container: str, *, account_url: str | None = None, connection_string: str | None = None,
                 prefix: str = "", credential: Any = None) -> None:
        from azure.storage.blob import ContainerClient

        if connection_string:
            self._client = ContainerClient.from_connection_string(connection_string, container)
        else:
            if credential is None:
                from azure.identity import DefaultAzureCredential  # WorkloadIdentityCredential in the pod

                credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
            self._client = ContainerClient(account_url, container, credential=credential)
        self.prefix = prefix

    @property
    def url(self) -> str:
        return self._client.url

    def list(self) -> list[SourceFile]:
        return [SourceFile(b.name, str(b.etag).strip('"'), b.last_modified.isoformat() if b.last_modified else "",
                           b.size or 0)
                for b in self._client.list_blobs(name_starts_with=self.prefix or None)]

    def read_text(self, name: str) -> str:
        return self._client.download_blob(name).readall().decode("utf-8", errors="replace")


class GatewayError(RuntimeError):
    pass


class Gateway:
    def __init__(self, base_url: str, api_key: str, *, embedding_model: str = "platform-embed",
                 chat_model: str = "platform-llm", timeout: float = 60.0, retries: int = 3,
                 sleep=time.sleep) -> None:
        import httpx

        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                  headers={"Authorization": f"Bearer {api_key}"})
        self.embedding_model, self.chat_model = embedding_model, chat_model
        self.retries, self._sleep = retries, sleep

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            response = self._http.post(path, json=body)
            if (response.status_code == 429 or response.status_code >= 500) and attempt < self.retries:
                self._sleep(min(float(response.headers.get("retry-after") or 2 ** attempt), 30.0))
                continue
            if response.status_code >= 400:
                detail = response.json().get("error", {}) if "json" in response.headers.get("content-type", "") else {}
                raise GatewayError(f"{path}: HTTP {response.status_code} {detail.get('code') or ''}: "
                                   f"{detail.get('message') or response.reason_phrase}")
            return response.json()
        raise AssertionError("unreachable")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        data = self._post("/v1/embeddings", {"model": self.embedding_model, "input": list(texts)})["data"]
        return [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]

    def chat(self, messages: list[dict[str, str]]) -> str:
        body = {"model": self.chat_model, "messages": messages, "temperature": 0}
        return self._post("/v1/chat/completions", body)["choices"][0]["message"]["content"]

    def close(self) -> None:
        self._http.close()


class QdrantIndex:
    def __init__(self, collection: str, *, location: str | None = None, path: str | None = None,
                 url: str | None = None, api_key: str | None = None) -> None:
        from qdrant_client import QdrantClient

        self.collection = collection
        self._server = url is not None  # payload indexes exist on a server only (local mode warns, ignores)
        self._client = QdrantClient(location=location, path=path, url=url, api_key=api_key)

    def _ensure(self, size: int) -> None:
        from qdrant_client import models

        if not self._client.collection_exists(self.collection):
            self._client.create_collection(self.collection, vectors_config=models.VectorParams(
                size=size, distance=models.Distance.COSINE))
            if self._server:
                self._client.create_payload_index(self.collection, "source", models.PayloadSchemaType.KEYWORD)

    def indexed(self) -> dict[str, str]:
        """source -> ETag of what the collection holds (the watermark: see rag.pipeline)."""
        if not self._client.collection_exists(self.collection):
            return {}
        seen: dict[str, str] = {}
        offset = None
        while True:
            points, offset = self._client.scroll(self.collection, limit=256, offset=offset,
                                                 with_payload=["source", "etag"], with_vectors=False)
            for p in points:
                seen[p.payload["source"]] = p.payload["etag"]
            if offset is None:
                return seen

    def _source_filter(self, source: str) -> Any:
        from qdrant_client import models

        return models.FilterSelector(filter=models.Filter(must=[models.FieldCondition(
            key="source", match=models.MatchValue(value=source))]))

    def replace_source(self, source: str, points: list[tuple[str, list[float], dict[str, Any]]]) -> None:
        from qdrant_client import models

        if not points:
            self.drop_source(source)
            return
        self._ensure(len(points[0][1]))
        self._client.delete(self.collection, points_selector=self._source_filter(source))
        self._client.upsert(self.collection, points=[models.PointStruct(id=i, vector=v, payload=p)
                                                     for i, v, p in points])

    def drop_source(self, source: str) -> None:
        if self._client.collection_exists(self.collection):
            self._client.delete(self.collection, points_selector=self._source_filter(source))

    def search(self, vector: list[float], k: int) -> list[dict[str, Any]]:
        if not self._client.collection_exists(self.collection):
            return []
        hits = self._client.query_points(self.collection, query=vector, limit=k, with_payload=True).points
        return [{**h.payload, "score": h.score} for h in hits]

    def close(self) -> None:
        self._client.close()


class _Run:
    def __init__(self, tracker: MlflowTracker, run_id: str) -> None:
        self._tracker, self.run_id = tracker, run_id

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self._tracker._call("POST", "runs/log-batch", {"run_id": self.run_id, "metrics": [
            {"key": k, "value": float(v), "timestamp": now, "step": step} for k, v in metrics.items()]})


class MlflowTracker:
    """Runs in MLflow through its REST API (api/2.0/mlflow); basic auth when the server asks for it."""

    def __init__(self, tracking_uri: str, *, username: str | None = None, password: str | None = None) -> None:
        import httpx

        auth = (username, password) if username and password else None
        self._http = httpx.Client(base_url=tracking_uri.rstrip("/") + "/api/2.0/mlflow", auth=auth, timeout=30)

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None,
              params: Mapping[str, str] | None = None) -> dict[str, Any]:
        response = self._http.request(method, path, json=body, params=params)
        if response.status_code >= 400:
            raise GatewayError(f"MLflow {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json()

    def _experiment(self, name: str) -> str:
        response = self._http.get("experiments/get-by-name", params={"experiment_name": name})
        if response.status_code == 200:
            return response.json()["experiment"]["experiment_id"]
        return self._call("POST", "experiments/create", {"name": name})["experiment_id"]

    @contextlib.contextmanager
    def run(self, experiment: str, name: str, params: Mapping[str, Any]) -> Iterator[_Run]:
        now = int(time.time() * 1000)
        run_id = self._call("POST", "runs/create", {"experiment_id": self._experiment(experiment),
                                                    "run_name": name, "start_time": now})["run"]["info"]["run_id"]
        self._call("POST", "runs/log-batch", {"run_id": run_id, "params": [
            {"key": k, "value": str(v)[:500]} for k, v in params.items()]})
        status = "FAILED"
        try:
            yield _Run(self, run_id)
            status = "FINISHED"
        finally:
            self._call("POST", "runs/update", {"run_id": run_id, "status": status,
                                               "end_time": int(time.time() * 1000)})
