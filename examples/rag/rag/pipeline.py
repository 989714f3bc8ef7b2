"""The RAG pipeline's logic: which files changed, chunks, the answer prompt and its citations, hit rate at k.

Gather, decide, act as elsewhere in the platform: ``plan_sync`` is pure (the listing and what the index holds
in, the files to (re)index and to drop out); ``ingest`` and ``answer`` do the I/O through the small clients of
``rag.clients``. The index is its own watermark: every point carries its file's ETag, so a run compares the
listing with the ETags in Qdrant and touches only new, changed and deleted files (no state kept elsewhere,
nothing to get out of step when a run dies half way: the next run sees the half-indexed file's old ETag and
does it again).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

CHUNK_CHARS = 700
POINT_NAMESPACE = uuid.UUID("6f1f8a52-4bd6-4c1b-9d0e-5f0b3a1c7e21")


@dataclass(frozen=True)
class SourceFile:
    name: str
    etag: str
    last_modified: str = ""
    size: int = 0


@dataclass(frozen=True)
class SyncPlan:
    index: tuple[SourceFile, ...]   # new or changed: (re)chunk, embed, upsert
    drop: tuple[str, ...]           # deleted at the source: their points go
    unchanged: int = 0


def plan_sync(listing: Iterable[SourceFile], indexed: Mapping[str, str], *,
              suffixes: tuple[str, ...] = (".md", ".txt")) -> SyncPlan:
    """Files to (re)index (ETag not in the index), to drop (in the index, gone at the source), unchanged."""
    files = [f for f in listing if f.name.endswith(suffixes)]
    names = {f.name for f in files}
    index = tuple(sorted((f for f in files if indexed.get(f.name) != f.etag), key=lambda f: f.name))
    drop = tuple(sorted(n for n in indexed if n not in names))
    return SyncPlan(index, drop, len(files) - len(index))


@dataclass(frozen=True)
class Chunk:
    source: str
    index: int
    text: str
    title: str = ""

    @property
    def point_id(self) -> str:
        return str(uuid.uuid5(POINT_NAMESPACE, f"{self.source}#{self.index}"))


_HEADING = re.compile(r"^#{1,6}\s+(.*)$")


def chunk(source: str, text: str, *, max_chars: int = CHUNK_CHARS) -> list[Chunk]:
    """Paragraphs packed into chunks of at most ``max_chars`` (a longer paragraph is split on sentences); each
    chunk is prefixed with the nearest heading, so a chunk says what it is about on its own."""
    title, pieces = "", []
    for para in re.split(r"\n\s*\n", text.strip()):
        para = " ".join(line.strip() for line in para.splitlines())
        heading = _HEADING.match(para)
        if heading:
            title = heading.group(1).strip()
            continue
        if not para:
            continue
        sentences = [para] if len(para) <= max_chars else re.split(r"(?<=[.!?])\s+", para)
        pieces.extend((title, s) for s in sentences)
    chunks: list[Chunk] = []
    current_title, buf = None, ""
    for piece_title, piece in pieces:
        if buf and (piece_title != current_title or len(buf) + 1 + len(piece) > max_chars):
            chunks.append(Chunk(source, len(chunks), buf, current_title or ""))
            buf = ""
        current_title = piece_title
        buf = f"{buf} {piece}".strip() if buf else (f"{piece_title}: {piece}" if piece_title else piece)
    if buf:
        chunks.append(Chunk(source, len(chunks), buf, current_title or ""))
    return chunks


# -- the clients' shapes (rag.clients implements them over the real SDKs / REST APIs) -----------------------------

class Source(Protocol):
    def list(self) -> list[SourceFile]: ...
    def read_text(self, name: str) -> str: ...
    @property
    def url(self) -> str: ...


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...
    def chat(self, messages: list[dict[str, str]]) -> str: ...


class Index(Protocol):
    def indexed(self) -> dict[str, str]: ...
    def replace_source(self, source: str, points: list[tuple[str, list[float], dict[str, Any]]]) -> None: ...
    def drop_source(self, source: str) -> None: ...
    def search(self, vector: list[float], k: int) -> list[dict[str, Any]]: ...


class Tracker(Protocol):
    def run(self, experiment: str, name: str, params: Mapping[str, Any]) -> Any: ...


@dataclass
class IngestReport:
    indexed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def metrics(self) -> dict[str, float]:
        return {"files_indexed": len(self.indexed), "files_dropped": len(self.dropped),
                "files_unchanged": self.unchanged, "chunks": self.chunks, "seconds": round(self.seconds, 3)}


def ingest(source: Source, embedder: Embedder, index: Index, *, tracker: Tracker | None = None,
           batch: int = 32, clock=time.monotonic) -> IngestReport:
    """One incremental sync of ``source`` into ``index`` (see the module docstring), tracked as one run."""
    start = clock()
    plan = plan_sync(source.list(), index.indexed())
    report = IngestReport(unchanged=plan.unchanged)
    for name in plan.drop:
        index.drop_source(name)
        report.dropped.append(name)
    for f in plan.index:
        chunks = chunk(f.name, source.read_text(f.name))
        vectors: list[list[float]] = []
        for i in range(0, len(chunks), batch):
            vectors += embedder.embed([c.text for c in chunks[i:i + batch]])
        index.replace_source(f.name, [
            (c.point_id, v, {"source": f.name, "chunk": c.index, "text": c.text, "title": c.title, "etag": f.etag,
                             "last_modified": f.last_modified, "url": f"{source.url}/{f.name}"})
            for c, v in zip(chunks, vectors, strict=True)])
        report.indexed.append(f.name)
        report.chunks += len(chunks)
    report.seconds = clock() - start
    if tracker is not None:
        with tracker.run("rag-ingestion", "ingest", {"source": source.url, "batch": batch,
                                                     "chunk_chars": CHUNK_CHARS}) as run:
            run.log_metrics(report.metrics())
    return report


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    chunk: int
    url: str
    score: float


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.text,
                "citations": [c.__dict__ for c in self.citations]}


def prompt(question: str, hits: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    context = "\n".join(f"[{i}] {h['text']}" for i, h in enumerate(hits, 1))
    return [{"role": "system", "content": "Answer only from the context. Cite every statement with its [n]. "
                                          "If the context does not say, answer that you do not know."},
            {"role": "user", "content": f"Question: {question}\nContext:\n{context}"}]


def answer(question: str, embedder: Embedder, index: Index, *, k: int = 4) -> Answer:
    """Retrieve ``k`` chunks, ask the gateway, keep the citations the answer uses (all retrieved if none)."""
    (vector,) = embedder.embed([question])
    hits = index.search(vector, k)
    text = embedder.chat(prompt(question, hits))
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", text)} & set(range(1, len(hits) + 1))
    citations = tuple(Citation(i, h["source"], h["chunk"], h.get("url", ""), round(h.get("score", 0.0), 4))
                      for i, h in enumerate(hits, 1) if not cited or i in cited)
    return Answer(question, text, citations)


def hit_rate(questions: Sequence[Mapping[str, str]], embedder: Embedder, index: Index,
             ks: Sequence[int] = (1, 3, 5)) -> dict[str, float]:
    """Share of questions whose expected source file is among the top k retrieved chunks' files, per k. A
    question names its file relative to wherever the corpus sits in the lake (``gpu-scaling.md`` matches
    ``docs/gpu-scaling.md``)."""
    top = max(ks)
    found = {k: 0 for k in ks}
    vectors = embedder.embed([q["question"] for q in questions])
    for q, vector in zip(questions, vectors, strict=True):
        hits = [h["source"] == q["source"] or h["source"].endswith("/" + q["source"])
                for h in index.search(vector, top)]
        for k in ks:
            found[k] += any(hits[:k])
    return {f"hit_rate_at_{k}": round(found[k] / len(questions), 4) for k in ks}
