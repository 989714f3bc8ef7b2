"""A local stand-in for the Azure Functions host, driven by the app's own function metadata.

Azure Functions Core Tools cannot be installed here (its npm package downloads the host), so
``make run`` serves the app with this: HTTP functions on ``/api/<route>``, timers on their NCRONTAB
schedules, queue triggers polled from Azurite (base64 messages, dequeue count, poison queue after
``maxDequeueCount``), and the endpoints Core Tools offers for the rest:

- ``POST /runtime/webhooks/eventgrid?functionName=NAME`` with ``aeg-event-type`` (SubscriptionValidation
  answered with the validation code; Notification delivers each event; Event Grid and CloudEvents schemas);
- ``POST /admin/functions/NAME`` with ``{"input": "..."}`` runs a timer or queue function now (202);
- ``GET /admin/host/status``.

It reads ``app.get_functions()`` once; nothing here lists the functions a second time.

Function keys: with ``function_key`` set, HTTP functions whose ``authLevel`` is ``function`` answer 401
unless the request carries that key, in the ``x-functions-key`` header or the ``code`` query parameter,
as the Azure host checks them; ``admin`` level functions need the master key, which this host never
has, so they answer 401. Anonymous functions are open. Without a key nothing is enforced (as with Core
Tools). The admin endpoints above are not guarded (as with Core Tools).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shared import logs
from shared.local.cron import CronSchedule
from shared.platform import APP_ROOT

log = logging.getLogger("platform_core.local_host")
SUPPORTED_TRIGGERS = ("httpTrigger", "timerTrigger", "queueTrigger", "eventGridTrigger")


@dataclass(frozen=True)
class LocalFunction:
    name: str
    trigger_type: str
    arg_name: str
    binding: dict[str, Any]  # the trigger binding from function.json
    call: Callable[..., Any]
    route: re.Pattern[str] | None = None
    methods: tuple[str, ...] = ()
    #: "anonymous", "function" or "admin" (an HTTP trigger's authLevel; the host's default is function).
    auth_level: str = "function"
    schedule: CronSchedule | None = None


def _route_pattern(route: str) -> re.Pattern[str]:
    """Turn ``items/{id:int}/{rest?}`` into a regex with named groups (constraints are not enforced)."""
    out, pos = [], 0
    for match in re.finditer(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]+)?(\?)?\}", route):
        out.append(re.escape(route[pos:match.start()]))
        catch_all, name, optional = match.groups()
        group = f"(?P<{name}>.+)" if catch_all else f"(?P<{name}>[^/]+)"
        if optional:
            if out and out[-1].endswith("/"):
                out[-1] = out[-1][:-1]
                group = f"(?:/{group})?"
            else:
                group += "?"
        out.append(group)
        pos = match.end()
    out.append(re.escape(route[pos:]))
    return re.compile("^" + "".join(out) + "$")


_indexed: dict[int, tuple[Any, list[Any]]] = {}


def app_functions(app: Any) -> list[Any]:
    """``app.get_functions()`` may be called only once per app object: remember its answer."""
    key = id(app)
    if key not in _indexed or _indexed[key][0] is not app:
        _indexed[key] = (app, app.get_functions())
    return _indexed[key][1]


def index(app: Any) -> list[LocalFunction]:
    """Read the app's functions (``app.get_functions()``, once) into what the host needs."""
    functions = []
    problems = []
    for f in app_functions(app):
        meta = json.loads(f.get_function_json())
        trigger = next(b for b in meta["bindings"] if b["type"].endswith("Trigger"))
        kind = trigger["type"]
        name = f.get_function_name()
        if kind not in SUPPORTED_TRIGGERS:
            problems.append(f"{name}: trigger {kind} is not served by the local host")
            continue
        extra: dict[str, Any] = {}
        if kind == "httpTrigger":
            extra["route"] = _route_pattern(trigger.get("route") or name)
            extra["methods"] = tuple(m.upper() for m in trigger.get("methods") or ("GET", "POST"))
            extra["auth_level"] = str(trigger.get("authLevel") or "function").lower()
        elif kind == "timerTrigger":
            schedule = _app_setting(trigger["schedule"])
            if schedule is None:
                # As the Functions host does: that function is in error, the others run.
                log.error("timer function %s not scheduled: %s does not resolve to a value (set the app "
                          "setting)", name, trigger["schedule"])
                continue
            extra["schedule"] = CronSchedule.parse(schedule)
        functions.append(LocalFunction(name, kind, trigger["name"], trigger, f.get_user_function(), **extra))
    if problems:
        raise RuntimeError("the local host cannot serve: " + "; ".join(problems))
    return functions


@dataclass(frozen=True)
class QueueSettings:
    """From host.json ``extensions.queues``, with the host's own defaults."""

    max_dequeue_count: int = 5
    visibility_timeout: int = 30  # seconds before a failed message is visible again
    batch_size: int = 16
    max_polling_interval: float = 2.0  # seconds; the real host backs off to 1 minute

    @classmethod
    def from_host_json(cls, path: Path = APP_ROOT / "host.json") -> QueueSettings:
        try:
            queues = json.loads(path.read_text()).get("extensions", {}).get("queues", {})
        except (OSError, ValueError):
            return cls()
        h, m, s = (int(x) for x in str(queues.get("visibilityTimeout", "00:00:30")).split(":"))
        return cls(max_dequeue_count=int(queues.get("maxDequeueCount", 5)), visibility_timeout=h * 3600 + m * 60 + s,
                   batch_size=int(queues.get("batchSize", 16)))


class LocalHost:
    def __init__(self, app: Any, *, port: int = 7071, storage: Any = None, run_timers: bool = True,
                 queue_settings: QueueSettings | None = None, function_key: str | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.functions = {f.name: f for f in index(app)}
        self.port = port
        #: When set, function-level HTTP routes need it (x-functions-key header or ?code=).
        self.function_key = function_key
        logs.register_secret(function_key)
        self.storage = storage  # a shared.adapters.storage.Storage for queue triggers
        self.run_timers = run_timers
        self.queue_settings = queue_settings or QueueSettings.from_host_json()
        self.clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        #: Invocations, newest last: (function name, outcome "ok"|"error", seconds). For tests and make run.
        self.invocations: list[tuple[str, str, float]] = []
        self._lock = threading.Lock()
        if any(f.trigger_type == "queueTrigger" for f in self.functions.values()) and storage is None:
            raise ValueError("queue-triggered functions need a storage adapter")

    # -- invoking --------------------------------------------------------------------------

    def invoke(self, function: LocalFunction, value: Any) -> Any:
        start = time.monotonic()
        outcome = "ok"
        try:
            return function.call(**{function.arg_name: value})
        except Exception:
            outcome = "error"
            raise
        finally:
            with self._lock:
                self.invocations.append((function.name, outcome, round(time.monotonic() - start, 4)))

    def run_timer(self, function: LocalFunction, past_due: bool = False) -> None:
        from azure.functions.timer import TimerRequest

        try:
            self.invoke(function, TimerRequest(past_due=past_due))
        except Exception:
            log.exception("timer function %s failed", function.name)

    def deliver_queue_message(self, function: LocalFunction, message: Any) -> bool:
        """Run one message; delete on success, poison after too many tries. True if it succeeded."""
        from azure.functions.queue import QueueMessage

        queue = function.binding["queueName"]
        msg = QueueMessage(id=message.id, body=message.body.encode(), dequeue_count=message.dequeue_count,
                                insertion_time=message.inserted_on, pop_receipt=message.pop_receipt)
        try:
            self.invoke(function, msg)
        except Exception as exc:
            log.warning("queue function %s failed on message %s (try %d): %s", function.name, message.id,
                        message.dequeue_count, exc)
            if message.dequeue_count >= self.queue_settings.max_dequeue_count:
                self.storage.send(f"{queue}-poison", message.body)
                self.storage.delete_message(queue, message)
                log.error("message %s moved to %s-poison after %d tries", message.id, queue, message.dequeue_count)
            return False
        self.storage.delete_message(queue, message)
        return True

    def _poll_queue(self, function: LocalFunction) -> None:
        queue = function.binding["queueName"]
        idle = 0.1
        while not self._stop.is_set():
            try:
                batch = self.storage.receive(queue, max_messages=self.queue_settings.batch_size,
                                             visibility_timeout=self.queue_settings.visibility_timeout)
            except Exception as exc:
                log.warning("polling queue %s failed: %s", queue, exc)
                batch = []
            for message in batch:
                self.deliver_queue_message(function, message)
            idle = 0.1 if batch else min(idle * 2, self.queue_settings.max_polling_interval)
            self._stop.wait(idle)

    def _timer_loop(self, function: LocalFunction) -> None:
        assert function.schedule is not None
        if function.binding.get("runOnStartup"):
            self.run_timer(function)
        while not self._stop.is_set():
            now = self.clock()
            due = function.schedule.next_after(now)
            if self._stop.wait(max(0.0, (due - now).total_seconds())):
                return
            self.run_timer(function)

    # -- HTTP ------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if path == "/runtime/webhooks/eventgrid" and method == "POST":
            return self._eventgrid(query.get("functionName", ""), headers, body)
        if path.startswith("/admin/functions/") and method == "POST":
            return self._admin_invoke(path[len("/admin/functions/"):], body)
        if path == "/admin/host/status":
            return _json(200, {"state": "Running", "version": "local", "functions": sorted(self.functions)})
        if path.startswith("/api/"):
            return self._http(method, raw_path, path[len("/api/"):], query, headers, body)
        return _json(404, {"error": "NotFound", "message": f"nothing is served at {path}"})

    def _http(self, method: str, url: str, route: str, query: dict[str, str], headers: dict[str, str],
              body: bytes) -> tuple[int, dict[str, str], bytes]:
        import azure.functions as func

        allowed: list[str] = []
        for function in self.functions.values():
            if function.trigger_type != "httpTrigger" or function.route is None:
                continue
            match = function.route.match(route)
            if not match:
                continue
            if method not in function.methods:
                allowed.extend(function.methods)
                continue
            if not self._authorized(function, headers, query):
                # As the Azure host: 401 with an empty body, saying nothing about the function.
                return 401, {}, b""
            request = func.HttpRequest(method, f"http://127.0.0.1:{self.port}{url}", headers=headers, params=query,
                                       route_params={k: v for k, v in match.groupdict().items() if v}, body=body)
            try:
                response = self.invoke(function, request)
            except Exception:
                log.exception("http function %s crashed", function.name)
                return _json(500, {"error": "InternalError"})
            if not isinstance(response, func.HttpResponse):
                return _json(500, {"error": "InternalError", "message": f"{function.name} returned no HttpResponse"})
            out_headers = dict(response.headers)
            out_headers.setdefault("Content-Type", response.mimetype or "text/plain")
            return response.status_code, out_headers, response.get_body() or b""
        if allowed:
            return _json(405, {"error": "MethodNotAllowed", "allowed": sorted(set(allowed))})
        return _json(404, {"error": "NotFound", "message": f"no function serves /api/{route}"})

    def _authorized(self, function: LocalFunction, headers: dict[str, str], query: dict[str, str]) -> bool:
        if self.function_key is None or function.auth_level == "anonymous":
            return True
        if function.auth_level != "function":
            return False  # admin level: the master key, which this host does not hold
        given = headers.get("x-functions-key") or query.get("code") or ""
        return hmac.compare_digest(given.encode(), self.function_key.encode())

    def _eventgrid(self, name: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        import azure.functions as func

        function = self.functions.get(name)
        if function is None or function.trigger_type != "eventGridTrigger":
            return _json(404, {"error": "NotFound", "message": f"no Event Grid function named {name!r}"})
        kind = headers.get("aeg-event-type", "")
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return _json(400, {"error": "BadRequest", "message": "body is not JSON"})
        events = payload if isinstance(payload, list) else [payload]
        if kind == "SubscriptionValidation":
            try:
                code = events[0]["data"]["validationCode"]
            except (KeyError, IndexError, TypeError):
                return _json(400, {"error": "BadRequest", "message": "no data.validationCode in the validation event"})
            return _json(200, {"validationResponse": code})
        if kind not in ("Notification", "Unsubscribe"):
            return _json(400, {"error": "BadRequest", "message": "aeg-event-type must be SubscriptionValidation "
                                                               "or Notification"})
        for raw in events:
            if not isinstance(raw, dict):
                return _json(400, {"error": "BadRequest", "message": "each event must be a JSON object"})
            try:
                event = _to_event(func, raw)
            except (KeyError, TypeError, ValueError) as exc:
                return _json(400, {"error": "BadRequest", "message": f"malformed event: {exc}"})
            try:
                self.invoke(function, event)
            except Exception as exc:
                # A failure answers 500 so Event Grid redelivers, as the real host does.
                log.warning("Event Grid function %s failed: %s", name, exc)
                return _json(500, {"error": "FunctionFailed", "message": logs.redact_text(str(exc))[:500]})
        return 200, {}, b""

    def _admin_invoke(self, name: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        function = self.functions.get(name)
        if function is None:
            return _json(404, {"error": "NotFound", "message": f"no function named {name!r}"})
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _json(400, {"error": "BadRequest", "message": 'body must be JSON: {"input": "..."}'})
        if function.trigger_type == "timerTrigger":
            threading.Thread(target=self.run_timer, args=(function,), daemon=True).start()
            return 202, {}, b""
        if function.trigger_type == "queueTrigger":
            # As in Azure: the input becomes a message on the function's queue, and the poller runs it.
            self.storage.send(function.binding["queueName"], str(data.get("input", "")))
            return 202, {}, b""
        return _json(400, {"error": "BadRequest", "message": f"{name} is {function.trigger_type}: call its own "
                                                           "endpoint instead"})

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = host.handle(self.command, self.path,
                                                       {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._spawn(self._server.serve_forever, "http")
        for function in self.functions.values():
            if function.trigger_type == "timerTrigger" and self.run_timers:
                self._spawn(lambda f=function: self._timer_loop(f), f"timer-{function.name}")
            elif function.trigger_type == "queueTrigger":
                self._spawn(lambda f=function: self._poll_queue(f), f"queue-{function.name}")
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"local-host-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _to_event(func: Any, raw: dict[str, Any]) -> Any:
    """Event Grid schema or CloudEvents 1.0 -> azure.functions.EventGridEvent."""
    if "specversion" in raw:  # CloudEvents
        return func.EventGridEvent(
            id=str(raw["id"]), data=raw.get("data") or {}, topic=str(raw.get("source", "")),
            subject=str(raw.get("subject", "")), event_type=str(raw["type"]),
            event_time=_parse_time(raw.get("time")), data_version=str(raw.get("dataschema", "")),
        )
    return func.EventGridEvent(
        id=str(raw["id"]), data=raw.get("data") or {}, topic=str(raw.get("topic", "")),
        subject=str(raw["subject"]), event_type=str(raw["eventType"]),
        event_time=_parse_time(raw.get("eventTime")), data_version=str(raw.get("dataVersion", "")),
    )


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    # Event Grid sends 7 fractional digits; fromisoformat takes at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    return dt.datetime.fromisoformat(text)


def _app_setting(value: str) -> str | None:
    """``%NAME%`` is an app setting's value, as the Functions host resolves binding expressions (None: unset)."""
    import os
    import re

    match = re.fullmatch(r"%(\w+)%", value.strip())
    if not match:
        return value
    return os.environ.get(match.group(1)) or None
