"""The RAG pipeline's pure parts (examples/rag/rag/pipeline.py): what a sync touches, how text is chunked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "rag"))

from rag.pipeline import Chunk, SourceFile, chunk, plan_sync

SYNC = {
    "a file never seen is indexed": ([SourceFile("a.md", "1")], {}, ["a.md"], []),
    "an unchanged ETag is skipped": ([SourceFile("a.md", "1")], {"a.md": "1"}, [], []),
    "a changed ETag is indexed again": ([SourceFile("a.md", "2")], {"a.md": "1"}, ["a.md"], []),
    "a file gone from the lake is dropped": ([], {"a.md": "1"}, [], ["a.md"]),
    "formats the pipeline cannot read are ignored": ([SourceFile("a.pdf", "1")], {}, [], []),
}


@pytest.mark.parametrize(("listing", "indexed", "index", "drop"), SYNC.values(), ids=SYNC.keys())
def test_a_sync_touches_only_new_changed_and_deleted_files(listing, indexed, index, drop):
    plan = plan_sync(listing, indexed)
    assert ([f.name for f in plan.index], list(plan.drop)) == (index, drop)


def test_chunks_carry_their_heading_stay_under_the_limit_and_have_stable_ids():
    text = "# Quota\n\n" + "The quota is per VM family. " * 40 + "\n\n## Fallback\n\nThe MI300X pool takes over."
    chunks = chunk("docs/q.md", text, max_chars=300)
    assert all(len(c.text) <= 300 + len("Quota: ") for c in chunks)
    assert chunks[0].text.startswith("Quota: ") and chunks[-1].text == "Fallback: The MI300X pool takes over."
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].point_id == Chunk("docs/q.md", 0, "other text").point_id != chunks[1].point_id
