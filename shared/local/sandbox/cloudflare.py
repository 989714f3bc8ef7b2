"""Cloudflare Origin CA emulator: ``/client/v4/certificates`` with the v4 envelope on every answer.

The official SDK unwraps ``result`` itself and silently yields ``None`` for a bare body, so every
answer here, errors and injected faults included, is wrapped in ``{success, errors, messages,
result}``. Certificates are real X.509 leaves signed by a throwaway "CloudFlare Origin SSL
Certificate Authority" root, so a caller can parse SANs and expiry exactly as in production.

Error codes: Cloudflare publishes no list for Origin CA, so the emulator answers only codes the API is
known to send (``KNOWN_CODES``, each with its source) and never invents one: request validation (query
or body) is 6008 "Invalid request parameters" with the reason in the message, as the v4 API answers an
out-of-range ``per_page`` (https://github.com/cloudflare/cloudflare-go/pull/129); a body that is not JSON
is 6007. ``per_page`` is bounded as the API reference documents it: minimum 5, maximum 50, default 20
(https://developers.cloudflare.com/api/resources/origin_ca_certificates/methods/list).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from shared.local.sandbox.base import Emulator, HttpError, Request, Response, bearer_token, iso, utc_now
from shared.platform import PlatformEnvironment

VALIDITY_DAYS = (7, 30, 90, 365, 730, 1095, 5475)
REQUEST_TYPES = ("origin-rsa", "origin-ecc", "keyless-certificate")
MAX_HOSTNAMES = 200
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

PER_PAGE = (5, 50, 20)  # minimum, maximum, default (API reference, "List Certificates")
INVALID_PARAMETERS, MALFORMED_JSON, UNKNOWN_ERROR = 6008, 6007, 10002
#: Every envelope code this emulator answers, and where it comes from.
KNOWN_CODES = {
    INVALID_PARAMETERS: "Invalid request parameters (v4 API, cloudflare/cloudflare-go#129)",
    MALFORMED_JSON: "Malformed JSON in request body (v4 API)",
    7000: "No route for that URI (v4 API)",
    7001: "Method not allowed for this URI (v4 API)",
    7003: "Could not route to /zones/<id>, perhaps your object identifier is invalid? (v4 API)",
    10000: "Authentication error (v4 API; reference notes)",
    UNKNOWN_ERROR: "an unknown error on a 5xx answer (v4 API); only for injected server faults",
    971: "Please wait and consider throttling your request speed (v4 API rate limiting)",
    1100: "Failed to write certificate to Database (Origin CA, transient; reference notes)",
    1201: "CA signing failure (Origin CA, transient; reference notes)",
    1003: "certificate not found (Origin CA get/revoke of an unknown id)",
}
# Envelope codes for failures raised with a symbolic code (faults, routing): keep them numeric and known.
_STATUS_CODES = {400: INVALID_PARAMETERS, 401: 10000, 403: 10000, 404: 7000, 405: 7001, 429: 971}


def cloudflare_time(t: dt.datetime) -> str:
    """``expires_on`` as the Origin CA API writes it (Go's time format), e.g. ``2026-01-01 05:20:00 +0000 UTC``."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


class _OriginRoot:
    """The emulator's Origin CA root: one RSA and one ECC root, made on first use (RSA keygen is slow)."""

    def __init__(self) -> None:
        self._roots: dict[str, tuple[Any, Any]] = {}

    def get(self, kind: str) -> tuple[Any, Any]:
        if kind not in self._roots:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec, rsa
            from cryptography.x509.oid import NameOID

            key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP384R1())
            name = x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudFlare, Inc."),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CloudFlare Origin SSL Certificate Authority"
                                   if kind == "rsa" else "CloudFlare Origin SSL ECC Certificate Authority"),
                x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
                x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
            ])
            now = utc_now()
            cert = (
                x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365 * 20))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256())
            )
            self._roots[kind] = (key, cert)
        return self._roots[kind]

    def pem(self, kind: str) -> str:
        from cryptography.hazmat.primitives import serialization

        return self.get(kind)[1].public_bytes(serialization.Encoding.PEM).decode()


class CloudflareEmulator(Emulator):
    name = "cloudflare"
    tls = False  # the SDK (httpx) accepts plain http on loopback

    def __init__(self, platform: PlatformEnvironment, *, token: str = "sandbox-cloudflare-token",  # noqa: S107
                 default_per_page: int = 20) -> None:
        self.platform = platform
        self.token = token
        self.default_per_page = default_per_page
        #: zone_id -> zone name, from the platform's certificate specs.
        self.zones = {c.zone_id: c.zone for c in platform.certificates}
        #: Issued certificates by id (serial number in decimal, as Cloudflare does), in issue order.
        self.certificates: dict[str, dict[str, Any]] = {}
        self.roots = _OriginRoot()
        self._initial_token = token
        super().__init__()

    def reset(self) -> None:
        """Back to an empty account (certificates, token, faults, request log), keeping the port and roots."""
        with self.lock:
            self.certificates.clear()
            self.token = self._initial_token
            self.faults.clear()
            self.requests.clear()

    def settings_env(self) -> dict[str, str]:
        return {"CLOUDFLARE_BASE_URL": self.base_url + "/client/v4", "CLOUDFLARE_API_TOKEN": self.token}

    # -- envelope, auth -----------------------------------------------------------------------

    def error_body(self, status: int, code: str, message: str) -> Any:
        # An injected server fault with a symbolic code says nothing about the certificate: not 1100/1201,
        # which mean "not issued, retry" (the adapter relies on that difference).
        number = int(code) if str(code).isdigit() else _STATUS_CODES.get(status, UNKNOWN_ERROR if status >= 500
                                                                               else INVALID_PARAMETERS)
        return {"success": False, "errors": [{"code": number, "message": message}], "messages": [], "result": None}

    @staticmethod
    def ok(result: Any, status: int = 200, **extra: Any) -> Response:
        return Response(status, {"success": True, "errors": [], "messages": [], "result": result, **extra})

    def authenticate(self, request: Request) -> Response | None:
        token = bearer_token(request)
        if token is None:
            return Response(401, self.error_body(401, "10000", "Authentication error"))
        if token != self.token:
            return Response(403, self.error_body(403, "10000", "Authentication error"))
        return None

    # -- routes -------------------------------------------------------------------------------

    def routes(self) -> None:
        self.route("GET", r"/client/v4/certificates", self.list_certificates)
        self.route("POST", r"/client/v4/certificates", self.create_certificate)
        self.route("GET", r"/client/v4/certificates/(?P<id>[^/]+)", self.get_certificate)
        self.route("DELETE", r"/client/v4/certificates/(?P<id>[^/]+)", self.revoke_certificate)
        self.route("GET", r"/client/v4/user/tokens/verify", self.verify_token)

    def verify_token(self, request: Request) -> Response:
        # Reached only with the right token (authenticate refused the others).
        return self.ok({"id": "0" * 32, "status": "active", "not_before": None, "expires_on": None})

    def _public(self, cert: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "certificate", "expires_on", "csr", "hostnames", "request_type", "requested_validity")
        out = {k: cert[k] for k in keys}
        if cert.get("revoked_at"):
            out["revoked_at"] = cert["revoked_at"]
        return out

    def _find(self, cert_id: str) -> dict[str, Any]:
        cert = self.certificates.get(cert_id)
        if cert is None:
            raise HttpError(404, "1003", f"Certificate {cert_id} not found")
        return cert

    def list_certificates(self, request: Request) -> Response:
        zone_id = request.query.get("zone_id")
        if not zone_id:
            raise _invalid("zone_id is required")
        zone = self.zones.get(zone_id)
        if zone is None:
            raise HttpError(404, "7003", f"Could not route to /zones/{zone_id}, perhaps your object identifier "
                                         "is invalid?")
        low, high, _ = PER_PAGE
        try:
            page = int(request.query.get("page", 1))
            per_page = int(request.query.get("per_page", self.default_per_page))
        except ValueError:
            raise _invalid("page and per_page must be whole numbers") from None
        if page < 1:
            raise _invalid("page must be a number greater than or equal to 1")
        if not low <= per_page <= high:
            raise _invalid(f"per_page must be a number between {low} and {high}")
        # Revoked certificates no longer serve traffic: the listing shows active ones only.
        matching = [c for c in self.certificates.values()
                    if not c.get("revoked_at") and any(_in_zone(h, zone) for h in c["hostnames"])]
        chunk = matching[(page - 1) * per_page: page * per_page]
        total_pages = (len(matching) + per_page - 1) // per_page
        return self.ok([self._public(c) for c in chunk], result_info={
            "page": page, "per_page": per_page, "count": len(chunk), "total_count": len(matching),
            "total_pages": total_pages,
        })

    def get_certificate(self, request: Request) -> Response:
        return self.ok(self._public(self._find(request.params["id"])))

    def revoke_certificate(self, request: Request) -> Response:
        cert = self._find(request.params["id"])
        if cert.get("revoked_at"):
            raise _invalid(f"Certificate {cert['id']} has already been revoked")
        cert["revoked_at"] = iso(utc_now())
        return self.ok({"id": cert["id"], "revoked_at": cert["revoked_at"]})

    def create_certificate(self, request: Request) -> Response:
        try:
            body = request.json()
        except HttpError:
            raise HttpError(400, str(MALFORMED_JSON), "Malformed JSON in request body") from None
        if not isinstance(body, dict):
            raise HttpError(400, str(MALFORMED_JSON), "Malformed JSON in request body")
        request_type = body.get("request_type")
        if request_type not in REQUEST_TYPES:
            raise _invalid(f"Invalid request_type {request_type!r}: use one of {', '.join(REQUEST_TYPES)}")
        validity = body.get("requested_validity", 5475)  # omitted means 15 years, as the real API does
        if validity not in VALIDITY_DAYS:
            raise _invalid(f"Invalid requested_validity {validity!r}: use one of "
                           f"{', '.join(map(str, VALIDITY_DAYS))}")
        hostnames = body.get("hostnames")
        if not isinstance(hostnames, list) or not hostnames:
            raise _invalid("hostnames must be a non-empty list")
        if len(hostnames) > MAX_HOSTNAMES:
            raise _invalid(f"Too many hostnames: at most {MAX_HOSTNAMES} per certificate")
        for host in hostnames:
            problem = self._hostname_problem(host)
            if problem:
                raise _invalid(problem)
        csr_pem = body.get("csr")
        public_key = self._check_csr(csr_pem, request_type)
        cert = self._issue(public_key, [h.lower() for h in hostnames], request_type, int(validity))
        cert["csr"] = csr_pem
        self.certificates[cert["id"]] = cert
        return self.ok(self._public(cert))

    # -- validation and issuance --------------------------------------------------------------

    def _hostname_problem(self, host: Any) -> str | None:
        if not isinstance(host, str) or not host.strip():
            return "Invalid hostname: hostnames must be non-empty strings"
        name = host.lower().rstrip(".")
        bare = name[2:] if name.startswith("*.") else name
        if "*" in bare:
            return f"Invalid hostname {host!r}: a wildcard is only allowed as a single leading '*.' label"
        labels = bare.split(".")
        if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
            return f"Invalid hostname {host!r}"
        if not any(_in_zone(bare, zone) for zone in self.zones.values()):
            return f"Hostname {host!r} does not belong to a zone on this account"
        return None

    @staticmethod
    def _check_csr(csr_pem: Any, request_type: str) -> Any:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if not isinstance(csr_pem, str) or "BEGIN CERTIFICATE REQUEST" not in csr_pem:
            raise _invalid("Failed to read CSR: expected a PEM certificate request")
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError:
            raise _invalid("Failed to read CSR: not a valid PEM certificate request") from None
        if not csr.is_signature_valid:
            raise _invalid("Failed to read CSR: signature does not verify")
        key = csr.public_key()
        if request_type == "origin-rsa" and not (isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048):
            raise _invalid("CSR key does not match request_type origin-rsa (RSA 2048+ expected)")
        if request_type == "origin-ecc" and not (isinstance(key, ec.EllipticCurvePublicKey)
                                                 and isinstance(key.curve, ec.SECP256R1)):
            raise _invalid("CSR key does not match request_type origin-ecc (EC P-256 expected)")
        return key

    def _issue(self, public_key: Any, hostnames: list[str], request_type: str, validity: int) -> dict[str, Any]:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        root_key, root_cert = self.roots.get("ecc" if request_type == "origin-ecc" else "rsa")
        now = utc_now().replace(microsecond=0)
        expires = now + dt.timedelta(days=validity)
        serial = x509.random_serial_number()
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudFlare, Inc."),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CloudFlare Origin CA"),
                x509.NameAttribute(NameOID.COMMON_NAME, "CloudFlare Origin Certificate"),
            ]))
            .issuer_name(root_cert.subject).public_key(public_key).serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(expires)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                  x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        return {
            "id": str(serial),
            "certificate": leaf.public_bytes(serialization.Encoding.PEM).decode(),
            "expires_on": cloudflare_time(expires),
            "hostnames": hostnames,
            "request_type": request_type,
            "requested_validity": validity,
            "revoked_at": None,
        }


def _invalid(reason: str) -> HttpError:
    return HttpError(400, str(INVALID_PARAMETERS), f"Invalid request parameters: {reason}")


def _in_zone(host: str, zone: str) -> bool:
    host = host.lower().removeprefix("*.")
    return host == zone or host.endswith("." + zone)
