"""ChatOps: how fast a Slack slash command is acknowledged, in process against Azurite.

``POST /api/chatops/slack/commands`` through the function itself: signature check on the raw bytes, form
parse, de-duplication insert, access check, enqueue, answer; N requests of ``status`` (queued work), and N of
``help`` (answered at once). Slack shows a timeout after 3 s; target p99 under 50 ms. The acknowledgement makes
exactly one Storage call (a queue message); for comparison the bench also times that call alone, and the
acknowledgement with the queue kept in memory (the app's own share: signature, parsing, access check).

    .venv/bin/python bench/chatops.py [--requests 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_ack(requests: int) -> dict[str, dict[str, float]]:
    import azure.functions as func

    import function_app
    from shared.context import Context, get_context, set_context
    from shared.credentials import StaticTokenCredential
    from shared.local.azurite import Azurite
    from shared.local.sandbox.chat import ACCESS_FILE, slack_command
    from shared.platform import load_environment
    from shared.settings import Settings

    secret = "bench-signing-secret"  # noqa: S105 - a throwaway for this process
    handler = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}[
        "chatops_slack_commands"]
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as workdir, Azurite(Path(workdir)) as azurite:
        settings = Settings.from_env({"PLATFORM_ENV": "dev-uaenorth", "SLACK_SIGNING_SECRET": secret,
                                      "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
                                      "AZURE_CREDENTIAL": "static", "CHATOPS_ACCESS_FILE": str(ACCESS_FILE)})
        set_context(Context(settings=settings, platform=load_environment("dev-uaenorth"),
                            credential=StaticTokenCredential()))

        def post(text: str) -> float:
            headers, body = slack_command(text, user="alice", secret=secret, response_url="https://hooks.invalid/x")
            request = func.HttpRequest("POST", "http://localhost/api/chatops/slack/commands", body=body,
                                       headers=headers)
            start = time.perf_counter()
            response = handler(request)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.get_body()
            return elapsed

        for text in ("status", "help"):  # queued work; answered at once (its audit record is queued)
            for _ in range(10):  # first use creates the tables and the queue
                post(text)
            out[text] = _stats(sorted(post(text) for _ in range(requests)))
        context = get_context()
        storage = context.storage

        def send() -> float:
            start = time.perf_counter()
            storage.send("chatops-commands", "{}")
            return time.perf_counter() - start

        out["one queue message alone"] = _stats(sorted(send() for _ in range(requests)))
        context.overrides["storage"] = InMemoryQueue()
        out["status, queue in memory"] = _stats(sorted(post("status") for _ in range(requests)))
        set_context(None)
    return out


class InMemoryQueue:
    def send(self, queue: str, body: str, *, visibility_timeout: int | None = None) -> str:
        return "m"


def _stats(times: list[float]) -> dict[str, float]:
    return {"requests": len(times), "p50_ms": times[len(times) // 2] * 1000,
            "p99_ms": times[max(0, int(len(times) * 0.99) - 1)] * 1000, "max_ms": times[-1] * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    results = bench_ack(args.requests)
    for text, r in results.items():
        print(f"chatops acknowledgement, {text} (in process, Azurite): {r['requests']} requests, "
              f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms (target p99 < 50 ms)")
    return 0 if results["status"]["p99_ms"] < 50 and results["help"]["p99_ms"] < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
