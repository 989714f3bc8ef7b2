"""Queue inference requests on the sandbox's Storage (``make run``): ``python -m shared.local.enqueue --settings
.local/sandbox.settings.json QUEUE N`` sends N small requests to QUEUE (a GPU pool's ``inference_queue``), as the
inference gateway's clients would. Local tooling only."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.local.enqueue", description=__doc__)
    parser.add_argument("--settings", default=".local/sandbox.settings.json")
    parser.add_argument("queue")
    parser.add_argument("count", type=int)
    args = parser.parse_args(argv)
    from shared.adapters.storage import AzureStorage

    with open(args.settings, encoding="utf-8") as f:
        connection_string = json.load(f)["Values"]["PLATFORM_STORAGE_CONNECTION_STRING"]
    storage = AzureStorage(connection_string=connection_string)
    for i in range(args.count):
        storage.send(args.queue, json.dumps({"prompt": f"sandbox request {i}"}))
    print(f"queued {args.count} request(s) on {args.queue}: depth {storage.queue_depth(args.queue)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
