"""The RAG example end to end on the local stack: Azurite's blob endpoint as the data lake, the OpenAI-compatible
gateway emulator (deterministic hashed bag-of-words embeddings), Qdrant's local mode, MLflow's REST API
emulated. Incremental sync, answers with citations, ingestion and evaluation runs tracked, hit rate at k on the
shipped corpus (printed)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

RAG = Path(__file__).resolve().parents[2] / "examples" / "rag"
sys.path.insert(0, str(RAG))

from rag import pipeline  # noqa: E402
from rag.clients import BlobSource, Gateway, GatewayError, MlflowTracker, QdrantIndex  # noqa: E402

from shared.local.sandbox.mlflow import MlflowEmulator  # noqa: E402
from shared.local.sandbox.openai_gateway import OpenAIGatewayEmulator  # noqa: E402

pytestmark = pytest.mark.integration
CORPUS = sorted((RAG / "corpus").glob("*.md"))


@pytest.fixture(scope="module")
def gateway_emulator():
    emulator = OpenAIGatewayEmulator(api_keys={"rag-key": "rag"})
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def mlflow():
    emulator = MlflowEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def lake(azurite):
    from azure.storage.blob import ContainerClient

    name = f"datalake-{uuid.uuid4().hex[:8]}"
    container = ContainerClient.from_connection_string(azurite.connection_string, name)
    container.create_container()
    for path in CORPUS:  # docs/: changed by the incremental-sync test; eval/: never changed
        for prefix in ("docs/", "eval/"):
            container.upload_blob(f"{prefix}{path.name}", path.read_bytes())
    yield container, BlobSource(name, connection_string=azurite.connection_string, prefix="docs/"), \
        BlobSource(name, connection_string=azurite.connection_string, prefix="eval/")
    container.delete_container()


@pytest.fixture(scope="module")
def stack(lake, gateway_emulator, mlflow):
    """The docs/ index (which the incremental-sync test changes) and the eval/ index (which no test changes)."""
    gateway = Gateway(gateway_emulator.base_url, "rag-key", sleep=lambda s: None)
    index, pristine = QdrantIndex("rag", location=":memory:"), QdrantIndex("rag-eval", location=":memory:")
    tracker = MlflowTracker(mlflow.base_url)
    first = pipeline.ingest(lake[1], gateway, index, tracker=tracker)
    pipeline.ingest(lake[2], gateway, pristine)
    yield lake[:2], gateway, index, tracker, first, pristine
    gateway.close()
    index.close()
    pristine.close()


def test_the_first_run_indexes_every_file_and_the_next_only_what_changed(stack, mlflow):
    (container, source), gateway, index, tracker, first, _ = stack
    assert sorted(first.indexed) == [f"docs/{p.name}" for p in CORPUS] and first.chunks >= len(CORPUS)
    again = pipeline.ingest(source, gateway, index, tracker=tracker)
    assert (again.indexed, again.dropped, again.unchanged) == ([], [], len(CORPUS))

    container.upload_blob("docs/drift.md", b"# Drift\n\nDrift findings are posted to the chat channel.", overwrite=True)
    container.delete_blob("docs/mlflow.md")
    container.upload_blob("docs/new.md", b"# New\n\nA new runbook about gateway budgets.")
    container.upload_blob("docs/image.png", b"\x89PNG")  # not a text format: ignored
    changed = pipeline.ingest(source, gateway, index, tracker=tracker)
    assert (changed.indexed, changed.dropped, changed.unchanged) == (
        ["docs/drift.md", "docs/new.md"], ["docs/mlflow.md"], len(CORPUS) - 2)
    indexed = index.indexed()
    assert "docs/mlflow.md" not in indexed and indexed["docs/drift.md"] == next(
        f.etag for f in source.list() if f.name == "docs/drift.md")
    hits = index.search(gateway.embed(["drift findings chat channel"])[0], 3)
    assert hits[0]["source"] == "docs/drift.md" and "chat channel" in hits[0]["text"]
    assert hits[0]["url"].endswith("/docs/drift.md") and hits[0]["etag"]

    runs = [r for r in mlflow.runs.values() if r["info"]["run_name"] == "ingest"]
    assert len(runs) == 3 and all(r["info"]["status"] == "FINISHED" for r in runs)
    metrics = {m["key"]: m["value"] for m in runs[-1]["data"]["metrics"]}
    assert metrics["files_indexed"] == 2 and metrics["files_dropped"] == 1


def test_a_question_is_answered_through_the_gateway_with_citations_of_the_retrieved_chunks(stack, gateway_emulator):
    _, gateway, _, _, _, index = stack
    answer = pipeline.answer("What happens when the H100 vCPU quota is exhausted?", gateway, index, k=3)
    assert "GpuQuotaExhausted" in answer.text and answer.citations
    assert answer.citations[0].source == "eval/quota.md"
    assert all(f"[{c.n}]" in answer.text for c in answer.citations)
    assert ("rag", "/v1/chat/completions", "platform-llm") in gateway_emulator.calls


def test_the_retrieval_hit_rate_on_the_shipped_corpus_is_reported_and_tracked(stack, mlflow, capsys):
    from rag.__main__ import evaluate

    _, gateway, _, tracker, _, index = stack
    scores = evaluate(gateway, index, RAG / "eval.jsonl", tracker)
    with capsys.disabled():
        questions = len((RAG / "eval.jsonl").read_text().splitlines())
        print(f"\nRAG hit rate on examples/rag/corpus ({questions} questions): {json.dumps(scores)}")
    # Measured with the emulator's hashed bag-of-words embeddings (a floor, not a model's number).
    assert scores["hit_rate_at_5"] >= 0.9 and scores["hit_rate_at_1"] >= 0.6
    (run,) = [r for r in mlflow.runs.values() if r["info"]["run_name"] == "hit-rate"]
    assert {m["key"] for m in run["data"]["metrics"]} == set(scores)


def test_a_wrong_api_key_is_refused_by_the_gateway(gateway_emulator):
    with pytest.raises(GatewayError, match="401 invalid_api_key"):
        Gateway(gateway_emulator.base_url, "not-a-key").embed(["x"])
