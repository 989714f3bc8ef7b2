"""An agent that answers "why did the H100 pool scale up last night?" from the platform's own records.

Plain Python, no LLM needed: a small deterministic planner over two tools an LLM agent would use the same way.

1. MCP ``status`` (``/api/mcp``): the pool as it is now.
2. MCP ``audit`` on ``nodepool/<env>/<pool>``: the GPU-scaling records, each with its reason code (``ScaleUp``,
   ``WakeFromZero``, ...) and the inputs the decision saw (queue depth, the pool's node count).
3. Keep the scale-ups of last night (18:00Z the day before to 08:00Z), and ask the RAG query service
   (``examples/rag``, ``POST /v1/ask``) what the platform's documents say about scaling up, for the background
   and its citations.
4. Answer: when, from how many nodes to how many, why (reason code and inputs), and the cited background.

    python examples/agent/why_scaled.py --mcp http://127.0.0.1:7071/api/mcp --as <entra object id> \\
        --rag http://127.0.0.1:8080 [--env dev-uaenorth] [--pool h100] [--function-key KEY]

Identity: the MCP server reads the caller from ``X-MS-CLIENT-PRINCIPAL-ID`` (App Service Authentication sets it
in Azure; ``--as`` sends it in the sandbox). Needs the viewer role in the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

QUESTION = "why did the {pool} pool scale up last night?"
RAG_QUESTION = "Why does the {pool} GPU pool scale up, and what caused last night's scale-up?"


@dataclass(frozen=True)
class ScaleUp:
    time: dt.datetime
    reason: str
    before: int | None
    after: int | None
    depth: Any
    outcome: str


@dataclass(frozen=True)
class Explanation:
    question: str
    text: str
    scale_ups: tuple[ScaleUp, ...]
    citations: tuple[dict[str, Any], ...]


def last_night(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """18:00Z of the day before ``now`` to 08:00Z of ``now``'s day (asked before 08:00Z: the night so far)."""
    morning = now.astimezone(dt.UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    return morning - dt.timedelta(hours=14), morning


def scale_ups(records: list[Mapping[str, Any]], since: dt.datetime, until: dt.datetime) -> tuple[ScaleUp, ...]:
    """The records of ``scale`` actions in [since, until) that raised the node count, oldest first."""
    out = []
    for r in records:
        when = dt.datetime.fromisoformat(str(r["time"]))
        inputs = r.get("inputs") or {}
        pool = inputs.get("pool") if isinstance(inputs.get("pool"), dict) else {}
        before, after = pool.get("count"), inputs.get("count")
        if r.get("action") != "scale" or not since <= when < until:
            continue
        if isinstance(before, int) and isinstance(after, int) and after <= before:
            continue
        out.append(ScaleUp(when, str(r.get("reason", "")), before, after, inputs.get("depth"), str(r.get("outcome"))))
    return tuple(sorted(out, key=lambda s: s.time))


def explain(status_text: str, records: list[Mapping[str, Any]], ask: Callable[[str], Mapping[str, Any]], *,
            env: str, pool: str, now: dt.datetime) -> Explanation:
    """The answer from what the tools returned (pure apart from ``ask``, the RAG query)."""
    since, until = last_night(now)
    ups = scale_ups(records, since, until)
    question = QUESTION.format(pool=pool)
    lines = []
    if not ups:
        lines.append(f"The {pool} pool in {env} did not scale up between {since:%Y-%m-%d %H:%M}Z and "
                     f"{until:%H:%M}Z (no `scale` record raising its node count on nodepool/{env}/{pool}).")
    else:
        lines.append(f"The {pool} pool in {env} scaled up {len(ups)} time(s) last night:")
        for s in ups:
            lines.append(f"- {s.time:%Y-%m-%d %H:%M}Z: {_n(s.before)} -> {_n(s.after)} nodes, reason {s.reason}"
                         f" (queue depth {_n(s.depth)}; {s.outcome})")
        reasons = sorted({s.reason for s in ups})
        lines.append(f"Reason code(s): {', '.join(reasons)}: the policy raised the pool because queued inference "
                     f"requests needed more nodes than it had (the inputs above are what each decision saw).")
    rag = ask(RAG_QUESTION.format(pool=pool.upper() if pool.islower() else pool))
    citations = tuple(rag.get("citations") or ())
    if rag.get("answer"):
        lines.append(f"Background from the platform docs: {rag['answer']}")
        lines += [f"  [{c.get('n')}] {c.get('source')}" for c in citations]
    now_line = next((line.strip() for line in status_text.splitlines() if line.strip().startswith(f"{pool}:")), "")
    if now_line:
        lines.append(f"Now: {now_line}")
    return Explanation(question, "\n".join(lines), ups, citations)


def _n(value: Any) -> str:
    return "?" if value is None else str(value)


# -- the tools: MCP (the official SDK's client) and the RAG query service over HTTP ------------------------

def mcp_calls(url: str, headers: Mapping[str, str], calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Run tool calls in one MCP session; each result as the SDK returns it (``CallToolResult``)."""
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def run() -> list[Any]:
        async with create_mcp_http_client(headers=dict(headers)) as http, \
                streamable_http_client(url, http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            out = []
            for name, arguments in calls:
                result = await session.call_tool(name, arguments)
                if result.is_error:
                    raise RuntimeError(f"{name}: " + " ".join(getattr(c, "text", "") for c in result.content))
                out.append(result)
            return out

    return asyncio.run(run())


def rag_client(base_url: str, *, k: int = 3, timeout: float = 30.0) -> Callable[[str], dict[str, Any]]:
    def ask(question: str) -> dict[str, Any]:
        request = urllib.request.Request(f"{base_url.rstrip('/')}/v1/ask", method="POST",  # noqa: S310 - http(s) only
                                         data=json.dumps({"question": question, "k": k}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the URL is the operator's
            return json.loads(response.read())
    return ask


def run(mcp_url: str, headers: Mapping[str, str], ask: Callable[[str], Mapping[str, Any]], *, env: str, pool: str,
        now: dt.datetime) -> Explanation:
    status, audit = mcp_calls(mcp_url, headers, [("status", {"env": env}),
                                                 ("audit", {"target": f"nodepool/{env}/{pool}"})])
    status_text = "\n".join(getattr(c, "text", "") for c in status.content)
    records = (audit.structured_content or {}).get("records") or []
    return explain(status_text, records, ask, env=env, pool=pool, now=now)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mcp", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:7071/api/mcp")
    parser.add_argument("--rag", required=True, help="the RAG query service, e.g. http://rag-query:8080")
    parser.add_argument("--as", dest="principal", default="", help="Entra object id (sandbox: no EasyAuth)")
    parser.add_argument("--function-key", default="", help="the function key of /api/mcp")
    parser.add_argument("--env", default="dev-uaenorth")
    parser.add_argument("--pool", default="h100")
    args = parser.parse_args(argv)
    headers = {k: v for k, v in (("X-MS-CLIENT-PRINCIPAL-ID", args.principal),
                                 ("x-functions-key", args.function_key)) if v}
    answer = run(args.mcp, headers, rag_client(args.rag), env=args.env, pool=args.pool, now=dt.datetime.now(dt.UTC))
    print(f"Q: {answer.question}\n{answer.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
