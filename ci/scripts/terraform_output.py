#!/usr/bin/env python3
"""Print one value of an environment's Terraform outputs (the `platform` output saved by the apply job as
outputs-ENV.json), e.g. `automation.name`. Standard library only: deploy jobs use it to find the app they deploy
to, so no name is restated in a pipeline file.

Usage: python ci/scripts/terraform_output.py outputs-dev-uaenorth.json automation.name
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def value(document: dict, dotted: str) -> object:
    node: object = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"no {dotted!r} in the outputs (missing {part!r})")
        node = node[part]
    return node


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    document = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    # `terraform output -json platform` prints the value; `terraform output -json` wraps it in {"value": ...}.
    if isinstance(document, dict) and set(document) >= {"value"} and "type" in document:
        document = document["value"]
    try:
        print(value(document, argv[1]))
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
