"""A small framework for loopback emulators that speak real REST contracts.

Each emulator is an HTTP(S) server on 127.0.0.1 with its own routes, its own error envelope and a
fault-injection list that tests (or ``POST /_sandbox/faults``) control. State lives in the emulator
object behind one lock; handlers are plain methods taking a ``Request`` and returning a ``Response``.

TLS: the Azure SDKs refuse bearer tokens over plain http, so ARM and Key Vault emulators serve
https with a certificate issued at start-up by a throwaway CA (``SandboxCA``); clients trust it via
``TLS_CA_BUNDLE``/``connection_verify``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# ---------------------------------------------------------------------------------------------
# Certificates


class SandboxCA:
    """A throwaway CA and one server certificate for 127.0.0.1/localhost, written to ``directory``."""

    def __init__(self, directory: Path | str, common_name: str = "Platform Core sandbox CA") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.ca_path = self.directory / "sandbox-ca.pem"
        self.cert_path = self.directory / "sandbox-server.pem"
        self.key_path = self.directory / "sandbox-server.key"
        self.ca_path.write_bytes(ca_cert.public_bytes(pem))
        self.cert_path.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
        self.key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        self.key_path.chmod(0o600)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


# ---------------------------------------------------------------------------------------------
# Requests, responses, faults


@dataclass
class Request:
    method: str
    path: str  # decoded path without the query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern's named groups

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, "InvalidJson", f"request body is not JSON: {exc}") from None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str sent as is; None -> empty
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", self.headers.get("Content-Type", "application/json")
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        return json.dumps(self.body).encode(), self.headers.get("Content-Type", "application/json")


class HttpError(Exception):
    """Raised by a handler to answer with the emulator's own error envelope."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class Fault:
    """An injected failure. Matches requests by method and a regex searched in the path.

    ``status`` None means "no error, only delay" (a slow answer). ``times`` None means forever.
    ``after`` True handles the request first (it is applied) and only then delays and/or answers
    ``status``: the ambiguous failure of a create whose answer is lost or fails.
    """

    status: int | None = 503
    method: str = "*"
    path: str = ""
    code: str = "ServiceUnavailable"
    message: str = "injected fault"
    retry_after: float | None = None
    delay: float = 0.0
    times: int | None = 1
    hits: int = 0
    after: bool = False

    def matches(self, request: Request) -> bool:
        if self.method != "*" and self.method.upper() != request.method:
            return False
        return re.search(self.path, request.path) is not None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        allowed = {"status", "method", "path", "code", "message", "retry_after", "delay", "times", "after"}
        unknown = set(data) - allowed
        if unknown:
            raise HttpError(400, "InvalidFault", f"unknown fault fields: {', '.join(sorted(unknown))}")
        return cls(**data)


Handler = Callable[[Request], Response]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int


# ---------------------------------------------------------------------------------------------
# The emulator base class


class Emulator:
    """Base for every emulator: routing, faults, a request log and start/stop on a loopback port."""

    #: Short name used in logs, the control API and the sandbox's settings.
    name = "emulator"
    #: Whether this emulator serves https (required by bearer-token SDKs such as azure-core).
    tls = False

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.routes()

    # -- to override ------------------------------------------------------------------------

    def routes(self) -> None:
        """Register routes with ``self.route(method, pattern, handler)``."""

    def error_body(self, status: int, code: str, message: str) -> Any:
        """The service's error envelope."""
        return {"error": {"code": code, "message": message}}

    def authenticate(self, request: Request) -> Response | None:
        """Return a Response to refuse the request (401/403), or None to let it through."""
        return None

    # -- routing ----------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """``pattern`` is a regex over the decoded path, anchored at both ends, with named groups."""
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def inject(self, fault: Fault | None = None, **kwargs: Any) -> Fault:
        fault = fault or Fault(**kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def count(self, method: str, path_regex: str = "") -> int:
        """How many requests of this method reached the emulator with a path matching the regex."""
        with self.lock:
            return sum(1 for r in self.requests if r.method == method.upper() and re.search(path_regex, r.path))

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        with self.lock:
            fault = next((f for f in self.faults if f.matches(request)), None)
            if fault is not None:
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
        if fault is not None and fault.after:
            applied = self._handle(request)
            if fault.delay:
                time.sleep(fault.delay)
            return applied if fault.status is None else self._fault_response(fault)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(int(fault.retry_after) if float(fault.retry_after).is_integer()
                                                 else fault.retry_after)
                return Response(fault.status, self.error_body(fault.status, fault.code, fault.message), headers)
        return self._handle(request)

    def _fault_response(self, fault: Fault) -> Response:
        assert fault.status is not None
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after) if float(fault.retry_after).is_integer()
                                         else fault.retry_after)
        return Response(fault.status, self.error_body(fault.status, fault.code, fault.message), headers)

    def _handle(self, request: Request) -> Response:
        refusal = self.authenticate(request)
        if refusal is not None:
            return refusal
        allowed_methods = []
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed_methods.append(method)
                continue
            request.params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            try:
                with self.lock:
                    return handler(request)
            except HttpError as err:
                return Response(err.status, self.error_body(err.status, err.code, err.message), err.headers)
        if allowed_methods:
            return Response(405, self.error_body(405, "MethodNotAllowed", f"{request.method} not allowed here"))
        return Response(404, self.error_body(404, "NotFound", f"no route for {request.method} {request.path}"))

    def _control(self, request: Request) -> Response:
        """``POST /_sandbox/faults`` (a Fault as JSON), ``DELETE /_sandbox/faults``, ``GET /_sandbox/requests``."""
        if request.path == "/_sandbox/faults" and request.method == "POST":
            try:
                fault = self.inject(Fault.from_dict(request.json() or {}))
            except (TypeError, HttpError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(201, vars(fault))
        if request.path == "/_sandbox/faults" and request.method == "DELETE":
            self.clear_faults()
            return Response(204)
        if request.path == "/_sandbox/faults" and request.method == "GET":
            with self.lock:
                return Response(200, [vars(f) for f in self.faults])
        if request.path == "/_sandbox/requests" and request.method == "GET":
            with self.lock:
                return Response(200, [vars(r) for r in self.requests[-500:]])
        return Response(404, {"error": "unknown sandbox control path"})

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, ca: SandboxCA | None = None, port: int = 0) -> str:
        if self.tls and ca is None:
            raise ValueError(f"{self.name} serves https: pass a SandboxCA")
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # otherwise every small response waits ~40 ms

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=unquote(split.path),
                    query={k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                # Keep the raw (still-encoded) path too: GitLab puts url-encoded project paths in it.
                request.headers[":raw-path"] = split.path
                try:
                    response = emulator.dispatch(request)
                except Exception as exc:  # an emulator bug must surface as a 500, not a hung client
                    response = Response(500, emulator.error_body(500, "EmulatorError", repr(exc)))
                payload, content_type = response.encode()
                with emulator.lock:
                    if not request.path.startswith("/_sandbox/"):
                        emulator.requests.append(
                            RecordedRequest(request.method, request.path, request.query, response.status))
                self.send_response(response.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in response.headers.items():
                    if key.lower() not in ("content-type", "content-length"):
                        self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        server.daemon_threads = True
        if self.tls:
            assert ca is not None
            server.socket = ca.server_context().wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"sandbox-{self.name}", daemon=True)
        self._thread.start()
        scheme = "https" if self.tls else "http"
        self.base_url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def bearer_token(request: Request) -> str | None:
    value = request.header("authorization") or ""
    return value[7:].strip() if value.lower().startswith("bearer ") else None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
