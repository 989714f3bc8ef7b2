"""The MCP server end to end: the SDK's own client (streamable HTTP + ClientSession) against ``/api/mcp`` served
by the local Functions host on a free port, the tools running on the sandbox and Azurite, roles from the
sandbox's access file, and every call in the ``chatops/<env>`` audit chain."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import azure.functions as func
import pytest

from shared.context import Context, set_context
from shared.credentials import StaticTokenCredential
from shared.local.sandbox import Sandbox
from shared.services.chatops import service
from shared.settings import Settings

pytestmark = pytest.mark.integration
ENV = "dev-uaenorth"
KEY = "mcp-test-function-key"
ALICE = "00000000-0000-4000-8000-0000000a11ce"  # operator (sandbox access file)
VICTOR = "00000000-0000-4000-8000-00000000d1c7"  # viewer
MALLORY = "00000000-0000-4000-8000-00000000dead"  # not in the file
READ_ONLY = {"status", "certs", "drift", "scan", "audit"}


@pytest.fixture(scope="module")
def sandbox(dev_platform, tmp_path_factory):
    with Sandbox(dev_platform, tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="module")
def host():
    """The real ``mcp`` function behind the local Functions host (function key enforced)."""
    from functions import mcp as mcp_functions
    from shared.local.host import LocalHost

    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(mcp_functions.bp)
    local = LocalHost(app, port=0, function_key=KEY, run_timers=False)
    url = local.start()
    yield f"{url}/api/mcp"
    local.stop()


@pytest.fixture
def ctx(sandbox, azurite, dev_platform):
    environ = {"PLATFORM_ENV": ENV, "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
               "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "5", **sandbox.settings_env()}
    context = Context(settings=Settings.from_env(environ), platform=dev_platform, credential=StaticTokenCredential(),
                      clock=lambda: dt.datetime.now(dt.UTC))
    set_context(context)
    yield context
    set_context(None)


def mcp_session(url, oid, calls, *, key=KEY):
    """Open a session as ``oid`` (the header EasyAuth sets), run ``calls(session)`` and return its result."""
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"x-functions-key": key, **({"X-MS-CLIENT-PRINCIPAL-ID": oid} if oid else {})}

    async def run():
        async with create_mcp_http_client(headers=headers) as http, \
                streamable_http_client(url, http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await calls(session)

    return asyncio.run(run())


def text(result) -> str:
    return "\n".join(c.text for c in result.content)


def test_a_client_lists_only_the_read_only_tools_by_default(host, ctx):
    tools = mcp_session(host, VICTOR, lambda s: s.list_tools())
    assert {t.name for t in tools.tools} == READ_ONLY
    assert all(t.annotations.read_only_hint for t in tools.tools)
    assert tools.tools[0].input_schema["type"] == "object"


def newest_record(ctx):
    """The newest chat audit record up to now. Other modules on the same xdist worker share this Azurite and
    target, and some of their records are dated by an advanced test clock (an approval that expired an hour
    later): "newest" must mean newest until now, not newest at all."""
    until = ctx.clock() + dt.timedelta(seconds=5)
    return ctx.state.audit_trail(f"chatops/{ENV}", until=until, limit=1)[-1]


def test_a_viewers_call_runs_the_chat_command_and_is_in_the_audit_chain(host, ctx):
    # `status` (the costlier call: every adapter) runs in the agent test below.
    result = mcp_session(host, VICTOR, lambda s: s.call_tool("certs", {"env": ENV}))
    assert not result.is_error, text(result)
    assert "origin-dev-platform" in text(result)
    record = newest_record(ctx)
    assert (record.action, record.reason, record.inputs["chat"]) == ("certs", "Ran", "mcp")
    assert record.actor.startswith(f"teams:{VICTOR}")
    assert ctx.state.verify_audit(f"chatops/{ENV}").ok


def test_the_audit_tool_returns_each_record_with_its_reason_and_inputs(host, ctx):
    ctx.state.audit(actor="gpu-scaling", action="scale", target=f"nodepool/{ENV}/h100", reason="QueueDepth",
                    outcome="succeeded", message="2 -> 3 nodes", inputs={"depth": 42})
    result = mcp_session(host, VICTOR, lambda s: s.call_tool("audit", {"target": f"nodepool/{ENV}/h100"}))
    assert not result.is_error, text(result)
    newest = result.structured_content["records"][-1]
    assert (newest["reason"], newest["inputs"]["depth"]) == ("QueueDepth", 42)


def test_without_the_function_key_the_platform_refuses_the_request(host, ctx):
    import requests
    from mcp.shared.exceptions import MCPError

    assert requests.post(host, json={}, timeout=5).status_code == 401
    with pytest.raises(ExceptionGroup) as failed:  # the SDK client: its initialize POST fails
        mcp_session(host, VICTOR, lambda s: s.list_tools(), key="wrong")
    assert failed.value.subgroup(MCPError) is not None


@pytest.mark.parametrize(("oid", "reason", "says"), [
    (MALLORY, "UnknownUser", "don't have access"),
    ("", "UnknownUser", "don't have access"),
    (VICTOR, "Forbidden", "needs the operator role"),
], ids=["an unknown principal", "no identity at all", "a viewer asking for a change"])
def test_callers_without_rights_are_refused_politely_and_audited(host, ctx, oid, reason, says):
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, mcp_mutating_tools=True))
    set_context(ctx)
    result = mcp_session(host, oid, lambda s: s.call_tool("scale", {"env": ENV, "pool": "h100", "count": "1"}))
    assert result.is_error and says in text(result)
    record = newest_record(ctx)
    assert (record.action, record.reason, record.outcome) == ("scale", reason, "refused")


def test_changing_tools_are_not_offered_unless_enabled(host, ctx):
    result = mcp_session(host, ALICE, lambda s: s.call_tool("scale", {"env": ENV, "pool": "h100", "count": "1"}))
    assert result.is_error and "unknown tool" in text(result)


def test_an_operators_change_waits_for_approval_given_in_chat(host, ctx):
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, mcp_mutating_tools=True))
    set_context(ctx)

    async def calls(session):
        # A certificate the platform does not have: the whole path runs, and nothing shared changes.
        return await session.list_tools(), await session.call_tool(
            "rotate", {"env": ENV, "certificate": "no-such-cert"})

    tools, result = mcp_session(host, ALICE, calls)
    assert {t.name for t in tools.tools} > READ_ONLY | {"scale", "pause_autoscaling"}
    assert not result.is_error and "approve" in text(result)
    approval = result.structured_content["approval"]
    # Bob approves in Slack, as for any chat request; the run is audited with both names.
    outcome = service.handle_message(ctx, {"kind": "run", "chat": "slack", "principal": "slack:TSANDBOX/UBOB",
                                           "user_name": "bob", "text": f"approve {approval}",
                                           "request_id": f"slack-{approval}", "reply": {}}, now=ctx.clock())
    assert outcome.startswith("rotate: "), outcome
    ran = newest_record(ctx)
    assert (ran.reason, ran.inputs["chat"], ran.inputs["approver"]) == ("Ran", "mcp", "slack:TSANDBOX/UBOB")


class CorpusDir:
    """The shipped RAG corpus as a ``rag.pipeline.Source`` (the data lake connector is tested in test_rag.py)."""

    def __init__(self, root):
        self.root, self.url = root, root.as_uri()

    def list(self):
        from rag.pipeline import SourceFile

        return [SourceFile(p.name, str(p.stat().st_mtime_ns)) for p in sorted(self.root.glob("*.md"))]

    def read_text(self, name):
        return (self.root / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rag_ask():
    """The RAG query of examples/rag over the shipped corpus, through the gateway emulator."""
    import sys
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    sys.path.insert(0, str(examples / "rag"))
    sys.path.insert(0, str(examples / "agent"))
    from rag import pipeline
    from rag.clients import Gateway, QdrantIndex

    from shared.local.sandbox.openai_gateway import OpenAIGatewayEmulator

    emulator = OpenAIGatewayEmulator(api_keys={"agent-key": "agent"})
    emulator.start()
    gateway = Gateway(emulator.base_url, "agent-key", sleep=lambda s: None)
    index = QdrantIndex("agent", location=":memory:")
    pipeline.ingest(CorpusDir(examples / "rag" / "corpus"), gateway, index)
    yield lambda question: pipeline.answer(question, gateway, index, k=3).as_dict()
    gateway.close()
    index.close()
    emulator.stop()


def test_the_agent_explains_last_nights_h100_scale_up_from_the_audit_records_and_the_docs(host, ctx, rag_ask):
    import why_scaled

    night = dt.datetime(2026, 1, 15, 1, 10, tzinfo=dt.UTC)  # a fixed night: other tests' records are not in it
    at = [night]
    writer = Context(settings=ctx.settings, platform=ctx.platform, credential=StaticTokenCredential(),
                     clock=lambda: at[0])
    for minutes, before, after, depth, reason in [(0, 0, 1, 3, "WakeFromZero"), (5, 1, 3, 40, "ScaleUp"),
                                                  (400, 3, 2, 0, "ScaleDown")]:
        at[0] = night + dt.timedelta(minutes=minutes)
        writer.state.audit(actor="gpu-scaling", action="scale", target=f"nodepool/{ENV}/h100", reason=reason,
                           outcome="succeeded", inputs={"count": after, "depth": depth, "pool": {"count": before}})
    answer = why_scaled.run(host, {"x-functions-key": KEY, "X-MS-CLIENT-PRINCIPAL-ID": VICTOR}, rag_ask, env=ENV,
                            pool="h100", now=night.replace(hour=9, minute=30))
    assert [(s.reason, s.before, s.after, s.depth) for s in answer.scale_ups] == [
        ("WakeFromZero", 0, 1, 3), ("ScaleUp", 1, 3, 40)]
    assert "2026-01-15 01:15Z: 1 -> 3 nodes, reason ScaleUp (queue depth 40" in answer.text
    assert any(c["source"] == "gpu-scaling.md" for c in answer.citations), answer.citations
    assert "Now: h100:" in answer.text
