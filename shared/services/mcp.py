"""Platform operations over MCP: the ChatOps commands as MCP tools, on the ChatOps command layer.

Each tool call is turned into the chat command a person would type (``status dev-uaenorth``), parsed by the
chat grammar, authorized by ``chatops.service.authorize`` against the one roles file
(``infra/chatops-access.yaml``), run by ``chatops.commands.run`` and audited on ``chatops/<env>`` with the
chat ``mcp`` (hash chain as every chat command). A changing tool in an ``approval_required`` environment
records the approval request and answers with its id; a second operator approves it in chat
(``approve <id>``), and the run is audited with both names, as for chat requests.

Identity: the caller's Entra ID object id, which App Service Authentication (EasyAuth) puts in
``X-MS-CLIENT-PRINCIPAL-ID`` after validating the caller's token (and strips when a client sends it
itself). It is the same object id Teams sends, so the principal is ``teams:<oid>``: one roles file for
chat and MCP. No header: the polite refusal of unknown users.

Transport: the official ``mcp`` SDK (2.x, low-level ``Server``) over streamable HTTP, stateless with JSON
responses, so one HTTP request is one MCP exchange and the Functions HTTP trigger can drive the SDK's ASGI
app per request (``handle_http``). The SDK is imported here only, and this module only when a request
arrives.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigError
from shared.services.chatops import access, approvals, grammar, service
from shared.services.chatops.grammar import CommandError

log = logging.getLogger("platform_core.mcp")

PATH = "/api/mcp"
PRINCIPAL_HEADER = "x-ms-client-principal-id"
NAME_HEADER = "x-ms-client-principal-name"
CHAT = "mcp"
#: Records an ``audit`` call returns in its structured content (the chat text shows the newest 10).
AUDIT_RECORDS = 100
_ENV = {"type": "string", "description": "environment, e.g. dev-uaenorth (default: the one this app manages)"}
_ENV_REQUIRED = {"type": "string", "description": "environment, e.g. dev-uaenorth"}


@dataclass(frozen=True)
class ToolSpec:
    """One MCP tool: the chat verb it runs and how its arguments become the command's words."""

    name: str
    verb: str
    properties: dict[str, Any]
    required: tuple[str, ...] = ()

    @property
    def mutating(self) -> bool:
        return grammar.VERBS[self.verb].mutating

    def command_text(self, arguments: Mapping[str, Any]) -> str:
        a = {k: str(v) for k, v in arguments.items() if v is not None and str(v) != ""}
        unknown = set(a) - set(self.properties)
        if unknown:
            raise CommandError(f"{self.name}: unknown arguments {sorted(unknown)}")
        missing = [k for k in self.required if k not in a]
        if missing:
            raise CommandError(f"{self.name}: missing {', '.join(missing)}")
        if self.verb == "scale":
            words = ["scale", a["env"], a["pool"], a["count"]] + (["for", a["duration"]] if "duration" in a else [])
        elif self.verb == "rotate":
            words = ["rotate", a["env"], a["certificate"]]
        elif self.verb == "audit":
            words = ["audit", a["target"]]
        else:
            words = [self.verb] + ([a["env"]] if "env" in a else [])
        if any(not v or any(c.isspace() for c in v) for v in a.values()):
            raise CommandError(f"{self.name}: arguments are single words")
        return " ".join(words)


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("status", "status", {"env": _ENV}),
    ToolSpec("certs", "certs", {"env": _ENV}),
    ToolSpec("drift", "drift", {"env": _ENV}),
    ToolSpec("scan", "scan", {"env": _ENV}),
    ToolSpec("audit", "audit", {"target": {"type": "string", "description":
                                           "audit target, e.g. nodepool/dev-uaenorth/h100 or chatops/dev-uaenorth"}},
             ("target",)),
    ToolSpec("scale", "scale", {"env": _ENV_REQUIRED, "pool": {"type": "string", "description": "GPU pool name"},
                                "count": {"type": "string", "description": "node count, or auto"},
                                "duration": {"type": "string", "description": "30m .. 1d (default 1h)"}},
             ("env", "pool", "count")),
    ToolSpec("rotate", "rotate", {"env": _ENV_REQUIRED,
                                  "certificate": {"type": "string", "description": "certificate name"}},
             ("env", "certificate")),
    ToolSpec("drift_mr", "drift mr", {"env": _ENV_REQUIRED}, ("env",)),
    ToolSpec("pause_autoscaling", "pause autoscaling", {"env": _ENV_REQUIRED}, ("env",)),
    ToolSpec("resume_autoscaling", "resume autoscaling", {"env": _ENV_REQUIRED}, ("env",)),
)


def offered(settings: Any) -> tuple[ToolSpec, ...]:
    """The tools this app lists: read-only ones, and the changing ones when ``MCP_MUTATING_TOOLS`` is on."""
    return tuple(t for t in TOOLS if not t.mutating or settings.mcp_mutating_tools)


@dataclass(frozen=True)
class Caller:
    principal: str  # teams:<oid>, or "" when the request carried no identity
    name: str


def identity_trusted(environ: Mapping[str, str]) -> bool:
    """Whether ``X-MS-CLIENT-PRINCIPAL-*`` can be believed: App Service sets them only with its Authentication
    on (``WEBSITE_AUTH_ENABLED``) and then refuses them from clients; an App Service app (``WEBSITE_INSTANCE_ID``)
    without it would take whatever a client sends. Off App Service (the local host, the sandbox) they are the
    documented way to say who calls."""
    if not environ.get("WEBSITE_INSTANCE_ID"):
        return True
    return str(environ.get("WEBSITE_AUTH_ENABLED", "")).lower() == "true"


def caller(headers: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Caller:
    """The caller's principal (``teams:<oid>``), or no principal when the identity headers cannot be trusted."""
    if not identity_trusted(os.environ if environ is None else environ):
        log.error("MCP: App Service Authentication is off: identity headers ignored, every call refused",
                  extra={"error_code": "EasyAuthDisabled"})
        return Caller("", "anonymous")
    lower = {k.lower(): v for k, v in headers.items()}
    oid = str(lower.get(PRINCIPAL_HEADER) or "").strip().lower()
    principal = f"teams:{oid}" if oid else ""
    return Caller(principal, str(lower.get(NAME_HEADER) or oid or "anonymous")[:200])


@dataclass(frozen=True)
class ToolAnswer:
    text: str
    is_error: bool
    data: dict[str, Any]


def call_tool(ctx: Any, who: Caller, name: str, arguments: Mapping[str, Any], *, now: dt.datetime) -> ToolAnswer:
    """Run one tool call for ``who``: parse, authorize, approve or run, audit. Synchronous (blocking I/O)."""
    from shared.services.chatops import commands

    env = ctx.platform.name
    request = service.Request(CHAT, who.principal or "mcp:anonymous", who.name, "mcp", name,
                              f"mcp-{uuid.uuid4().hex}")
    try:
        policy = access.load(ctx.settings.chatops_access_file)
    except ConfigError:
        return ToolAnswer(service.UNAVAILABLE, True, {"reason": "Unavailable"})
    spec = next((t for t in offered(ctx.settings) if t.name == name), None)
    try:
        if spec is None:
            raise CommandError(f"unknown tool {name!r}")
        command = grammar.parse(spec.command_text(arguments), default_env=env)
    except CommandError as error:
        return _refused(ctx, request, name, "BadCommand", error.message)
    request = service.Request(CHAT, request.principal, who.name, "mcp", command.text, request.request_id)
    decision = service.authorize(policy, request.principal, command, app_env=env)
    if decision.reason == "NeedsApproval":
        pending = approvals.create(ctx.storage, request_id=approvals.id_for(request.request_id), env=env,
                                   requester=request.principal, requester_name=who.name, command=command.text,
                                   chat=CHAT, now=now, minutes=ctx.settings.chatops_approval_minutes,
                                   reply={})
        text = (f"`{command.text}` in {env} needs a second operator's approval: request {pending.id}, valid until "
                f"{pending.expires_at:%H:%M}Z. Another operator approves it in chat with `approve {pending.id}`.")
        service._audit(ctx, request, command.verb, "NeedsApproval", "pending", args=command.args,
                       approval=pending.id, message=text)
        return ToolAnswer(text, False, {"reason": "NeedsApproval", "approval": pending.id})
    if not decision.allowed:
        return _refused(ctx, request, command.verb, decision.reason, decision.message, args=command.args)
    result = commands.run(ctx, command, actor=f"mcp:{request.principal}", now=now)
    service._audit(ctx, request, command.verb, "Ran", result.outcome, args=command.args, message=result.text,
                   data=result.data)
    data = {"reason": "Ran", "outcome": result.outcome, **result.data}
    if command.verb == "audit" and result.outcome != "failed":
        # An agent reads the records' reason codes and inputs, which the chat text leaves out.
        data["records"] = [{"time": r.time.isoformat(), "actor": r.actor, "action": r.action, "reason": r.reason,
                            "outcome": r.outcome, "message": r.message, "inputs": r.inputs}
                           for r in ctx.state.audit_trail(command.args["target"], limit=AUDIT_RECORDS)]
    return ToolAnswer(result.text, result.outcome == "failed", data)


def _refused(ctx: Any, request: service.Request, verb: str, reason: str, message: str,
             args: dict[str, Any] | None = None) -> ToolAnswer:
    service._audit(ctx, request, verb, reason, "refused", args=args, message=message)
    return ToolAnswer(message, True, {"reason": reason})


# -- the SDK seam -------------------------------------------------------------------------------------

def _server(ctx: Any, who: Caller) -> Any:
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server

    async def list_tools(_request: Any, _params: Any) -> Any:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=grammar.VERBS[t.verb].summary
                       + (" (changes the platform; production waits for a second operator)" if t.mutating else ""),
                       input_schema={"type": "object", "properties": t.properties, "required": list(t.required),
                                     "additionalProperties": False},
                       annotations=types.ToolAnnotations(read_only_hint=not t.mutating,
                                                         destructive_hint=t.mutating))
            for t in offered(ctx.settings)])

    async def call(_request: Any, params: Any) -> Any:
        answer = await anyio.to_thread.run_sync(
            lambda: call_tool(ctx, who, params.name, params.arguments or {}, now=ctx.clock()))
        return types.CallToolResult(content=[types.TextContent(type="text", text=answer.text)],
                                    structured_content=answer.data, is_error=answer.is_error)

    return Server("platform-core", version="1", instructions=(
        f"Platform operations for {ctx.platform.name}: the ChatOps commands as tools, with the caller's roles."),
        on_list_tools=list_tools, on_call_tool=call)


async def _serve(ctx: Any, who: Caller, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[str, str]],
                                                                                    bytes]:
    from mcp.server.transport_security import TransportSecuritySettings

    server = _server(ctx, who)
    # Behind the Functions front end (function key, EasyAuth): DNS rebinding protection is for servers on a
    # developer's loopback, and the Host here is the app's own name.
    app = server.streamable_http_app(streamable_http_path=PATH, json_response=True, stateless_http=True,
                                     transport_security=TransportSecuritySettings(
                                         enable_dns_rebinding_protection=False))
    status, headers, chunks = 500, [], []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    async with server.session_manager.run():
        await app(scope, receive, send)
    return status, headers, b"".join(chunks)


def handle_http(ctx: Any, method: str, url_path: str, query: bytes, headers: Mapping[str, str],
                body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """One HTTP request to ``/api/mcp`` through the SDK's streamable HTTP app: status, headers, body."""
    import anyio

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method.upper(),
             "scheme": "https", "path": PATH if url_path.rstrip("/").endswith("/mcp") else url_path,
             "raw_path": PATH.encode(), "query_string": query, "root_path": "",
             "headers": [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()],
             "client": ("127.0.0.1", 0), "server": ("localhost", 443)}
    return anyio.run(_serve, ctx, caller(headers), scope, body)
