#!/usr/bin/env python3
"""Fail when a fresh detect-secrets scan finds a secret the reviewed baseline does not hold.

`detect-secrets-hook` rewrites the baseline whenever a known finding moves to another line and then fails, which
makes CI fail on unrelated edits; this compares what matters instead: (file, type, hashed secret).
Usage: python ci/scripts/secrets_diff.py .secrets.baseline RESCANNED_COPY   (standard library only)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def findings(path: str) -> set[tuple[str, str, str]]:
    results = json.loads(Path(path).read_text(encoding="utf-8"))["results"]
    return {(name, f["type"], f["hashed_secret"]) for name, items in results.items() for f in items}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    # The rescanned copy is another file, so the scan read the reviewed baseline itself (hashes, not secrets).
    baseline_name = Path(argv[0]).as_posix().removeprefix("./")
    new = sorted(f for f in findings(argv[1]) - findings(argv[0]) if f[0] != baseline_name)
    for name, kind, _ in new:
        print(f"{name}: {kind} not in the reviewed baseline (a secret? remove it; a false positive? review it,"
              f" re-generate .secrets.baseline and give the file a reason in ci/security/secrets-reasons.yaml)",
              file=sys.stderr)
    if not new:
        print("detect-secrets: nothing outside the reviewed baseline")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
