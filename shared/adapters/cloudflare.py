"""Cloudflare Origin CA: issue, list, read and revoke origin certificates (official ``cloudflare`` SDK).

Why the details below:
- ``create`` runs with ``max_retries=0``: the SDK retries POST on 5xx/409/429/timeouts and Cloudflare
  does not deduplicate, so an SDK retry can issue a second certificate. For the same reason an
  ambiguous failure of ``create`` (a timeout or a connection lost after sending, a 5xx without an
  envelope code saying nothing was issued) is ``OutcomeUnknownError``, which no retry re-sends:
  ``find_issued`` looks for the certificate the first attempt may have issued (same hostnames, the
  CSR's public key, issued since the attempt) and ``create_or_adopt`` adopts it. A refusal that
  proves nothing was issued (connection refused, 429, envelope codes 1100/1201) stays
  ``TemporaryError``, safe to retry.
- Cloudflare puts the real reason in the envelope's ``errors[].code``, not in the HTTP status: 1100
  (database write) and 1201 (CA signing) are transient whatever the status says; 10000 and 1016
  need a human.
- Keys, CSRs and the token never reach an error message: the envelope echoes request fields at
  times, so every message goes through ``redact_text``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from shared.adapters import HttpOptions, retry_after_seconds
from shared.errors import (
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    PlatformError,
    TemporaryError,
)
from shared.logs import redact_text

if TYPE_CHECKING:
    from shared.context import Context
    from shared.platform import CertificateSpec

AUTH_REMEDIATION = "check CLOUDFLARE_API_TOKEN has Zone > SSL and Certificates > Edit"
TRANSIENT_CODES = frozenset({1100, 1201})  # "Failed to write certificate to Database", "CA signing failure"
AUTH_CODES = frozenset({10000, 1016})
#: CAs backdate notBefore a little (Cloudflare's emulator by a minute): how far before ``since`` an
#: issued certificate may say it starts and still count as issued "since". The public key match is
#: what identifies the certificate; ``since`` only keeps the search to recent ones.
ISSUED_SKEW = dt.timedelta(minutes=5)
log = logging.getLogger("platform_core.cloudflare")


@dataclass(frozen=True)
class OriginCertificate:
    id: str  # the X.509 serial number, as Cloudflare reports it
    certificate: str  # PEM leaf (public)
    hostnames: tuple[str, ...]
    request_type: str
    validity_days: int
    expires_on: dt.datetime | None


@dataclass(frozen=True)
class KeyAndCsr:
    #: PKCS#8 PEM private key: goes to Key Vault with the certificate, nowhere else.
    key_pem: str = field(repr=False)
    csr_pem: str = field(repr=False)


class OriginCA(Protocol):
    def create(self, csr_pem: str, hostnames: list[str] | tuple[str, ...], request_type: str,
               validity_days: int) -> OriginCertificate: ...

    def list(self, zone_id: str) -> list[OriginCertificate]: ...

    def find_issued(self, zone_id: str, hostnames: list[str] | tuple[str, ...], csr_pem: str,
                    since: dt.datetime) -> OriginCertificate | None: ...

    def get(self, id: str) -> OriginCertificate | None: ...

    def revoke(self, id: str) -> dt.datetime: ...

    def probe(self) -> str: ...


def make_key_and_csr(spec: CertificateSpec) -> KeyAndCsr:
    """A fresh private key and a CSR for ``spec`` (EC P-256 for origin-ecc, RSA 2048 for origin-rsa).

    Pure: no I/O. The CSR's subject is the first non-wildcard hostname; all hostnames go in the SAN,
    which is what Cloudflare (and browsers) read.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    if spec.request_type == "origin-ecc":
        key: Any = ec.generate_private_key(ec.SECP256R1())
    elif spec.request_type == "origin-rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise PermanentError(f"certificate {spec.name}: unsupported request_type {spec.request_type!r}",
                             remediation="use origin-ecc or origin-rsa in platform.yaml")
    common = next((h for h in spec.hostnames if not h.startswith("*.")), spec.hostnames[0].removeprefix("*."))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in spec.hostnames]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return KeyAndCsr(key_pem=key_pem, csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode())


def parse_cloudflare_time(value: Any) -> dt.datetime | None:
    """``expires_on`` comes as ``2026-01-01 05:20:00 +0000 UTC`` (Go format) or ISO 8601."""
    if value is None or isinstance(value, dt.datetime):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S %z UTC", "%Y-%m-%d %H:%M:%S %z"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class CloudflareOriginCA:
    """``OriginCA`` on ``cloudflare.Cloudflare``; the client is made on first use."""

    def __init__(self, api_token: str | None, base_url: str, http: HttpOptions | None = None,
                 page_size: int = 50) -> None:
        self._token = api_token
        self._base_url = base_url
        self._http = http or HttpOptions()
        self._page_size = page_size
        self._lock = threading.Lock()
        self._clients: tuple[Any, Any] | None = None

    def _sdk(self) -> tuple[Any, Any]:
        """(client, client without retries for create)."""
        if not self._token:
            raise PermanentError("Cloudflare: CLOUDFLARE_API_TOKEN is not set", code="NotConfigured",
                                 remediation=f"set CLOUDFLARE_API_TOKEN; {AUTH_REMEDIATION}")
        with self._lock:
            if self._clients is None:
                import cloudflare

                kwargs: dict[str, Any] = {}
                if self._http.ca_bundle:
                    import ssl

                    context = ssl.create_default_context(cafile=self._http.ca_bundle)
                    kwargs["http_client"] = cloudflare.DefaultHttpxClient(verify=context)
                client = cloudflare.Cloudflare(api_token=self._token, base_url=self._base_url,
                                               max_retries=self._http.max_retries, timeout=self._http.timeout,
                                               **kwargs)
                self._clients = (client, client.with_options(max_retries=0))
            return self._clients

    # -- operations ---------------------------------------------------------------------------

    def create(self, csr_pem: str, hostnames: list[str] | tuple[str, ...], request_type: str,
               validity_days: int) -> OriginCertificate:
        _, no_retry = self._sdk()
        try:
            # requested_validity is always sent: omitted, Cloudflare issues a 15-year certificate.
            result = no_retry.origin_ca_certificates.create(
                csr=csr_pem, hostnames=list(hostnames), request_type=request_type,
                requested_validity=validity_days,
            )
        except Exception as exc:
            if _ambiguous(exc):
                raise OutcomeUnknownError(
                    f"{_map_error(exc, 'Cloudflare: create origin certificate')} (the request was sent: a "
                    "certificate may have been issued; reconcile with find_issued before creating again)",
                    code="OutcomeUnknown") from exc
            _raise(exc, "Cloudflare: create origin certificate")
        return _certificate(_require(result, "create origin certificate"))

    def find_issued(self, zone_id: str, hostnames: list[str] | tuple[str, ...], csr_pem: str,
                    since: dt.datetime) -> OriginCertificate | None:
        """The zone's certificate for exactly ``hostnames`` whose public key is the CSR's, issued at or
        after ``since`` (every page is read); the newest if several, None if there is none."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        wanted = x509.load_pem_x509_csr(csr_pem.encode()).public_key().public_bytes(*spki)
        found: list[tuple[dt.datetime, OriginCertificate]] = []
        for cert in self.list(zone_id):
            if set(cert.hostnames) != set(hostnames) or not cert.certificate:
                continue
            try:
                parsed = x509.load_pem_x509_certificate(cert.certificate.encode())
            except ValueError:
                continue
            if parsed.public_key().public_bytes(*spki) == wanted and parsed.not_valid_before_utc >= since - ISSUED_SKEW:
                found.append((parsed.not_valid_before_utc, cert))
        return max(found, key=lambda pair: pair[0])[1] if found else None

    def list(self, zone_id: str) -> list[OriginCertificate]:
        client, _ = self._sdk()
        try:
            # The SDK's pager walks ?page=N until a page comes back empty.
            pager = client.origin_ca_certificates.list(zone_id=zone_id, per_page=self._page_size)
            return [_certificate(c) for c in pager]
        except Exception as exc:
            _raise(exc, f"Cloudflare: list origin certificates for zone {zone_id}")

    def get(self, id: str) -> OriginCertificate | None:
        client, _ = self._sdk()
        try:
            result = client.origin_ca_certificates.get(id)
        except Exception as exc:
            mapped = _map_error(exc, f"Cloudflare: get origin certificate {id}")
            if isinstance(mapped, NotFoundError):
                return None
            _raise(exc, f"Cloudflare: get origin certificate {id}")
        return _certificate(result) if result is not None else None

    def revoke(self, id: str) -> dt.datetime:
        client, _ = self._sdk()
        try:
            result = client.origin_ca_certificates.delete(id)
        except Exception as exc:
            _raise(exc, f"Cloudflare: revoke origin certificate {id}")
        revoked = parse_cloudflare_time(getattr(_require(result, "revoke origin certificate"), "revoked_at", None))
        return revoked or dt.datetime.now(dt.UTC)

    def probe(self) -> str:
        """One cheap authenticated read: the token's own verification endpoint."""
        client, _ = self._sdk()
        try:
            status = client.user.tokens.verify()
        except Exception as exc:
            _raise(exc, "Cloudflare: verify API token")
        return f"Cloudflare API token is {getattr(status, 'status', 'unknown')} at {self._base_url}"


def create_or_adopt(origin_ca: OriginCA, *, zone_id: str, csr_pem: str, hostnames: list[str] | tuple[str, ...],
                    request_type: str, validity_days: int, since: dt.datetime) -> OriginCertificate:
    """Issue a certificate exactly once: create, and after an ambiguous failure adopt what the first
    attempt issued. ``since`` is a time taken before the first attempt. If nothing is found (yet), the
    ``OutcomeUnknownError`` propagates: look again later (the same call) rather than re-sending."""
    try:
        return origin_ca.create(csr_pem, hostnames, request_type, validity_days)
    except OutcomeUnknownError as unknown:
        adopted = origin_ca.find_issued(zone_id, hostnames, csr_pem, since)
        if adopted is None:
            raise
        log.warning("adopted origin certificate %s issued by a create whose answer was lost (%s)", adopted.id,
                    unknown.code, extra={"certificate_id": adopted.id, "hostnames": list(hostnames)})
        return adopted


def _raise(exc: Exception, what: str) -> NoReturn:
    """Raise our error for an SDK one, chained to it; anything else (our own bugs) as it is."""
    mapped = _map_error(exc, what)
    if mapped is exc:
        raise exc
    raise mapped from exc


def _ambiguous(exc: Exception) -> bool:
    """Whether a failed create may have been applied: sent, and no answer proving it was not."""
    import cloudflare
    import httpx

    if isinstance(exc, cloudflare.APITimeoutError | cloudflare.APIConnectionError):
        # Refused or timed out while connecting: nothing was sent.
        return not isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout)
    if isinstance(exc, cloudflare.APIStatusError):
        codes = {c for c, _ in _envelope_errors(exc.body) if c is not None}
        return (exc.status_code >= 500 or exc.status_code == 408) and not codes & (TRANSIENT_CODES | AUTH_CODES)
    return False


def _require(result: Any, what: str) -> Any:
    # A 2xx without the envelope's result (success false or a proxy's page) deserialises to None.
    if result is None:
        raise TemporaryError(f"Cloudflare: {what}: the answer carried no result", code="EmptyResult")
    return result


def _certificate(model: Any) -> OriginCertificate:
    return OriginCertificate(
        id=str(model.id),
        certificate=model.certificate or "",
        hostnames=tuple(model.hostnames or ()),
        request_type=str(model.request_type),
        validity_days=int(model.requested_validity),
        expires_on=parse_cloudflare_time(model.expires_on),
    )


def _envelope_errors(body: Any) -> list[tuple[int | None, str]]:
    errors = body.get("errors") if isinstance(body, dict) else None
    out: list[tuple[int | None, str]] = []
    for err in errors or []:
        if isinstance(err, dict):
            code = err.get("code")
            out.append((code if isinstance(code, int) else None, str(err.get("message", ""))))
    return out


def _map_error(exc: Exception, what: str) -> Exception:
    """Translate a ``cloudflare`` SDK exception into our error tree (the seam)."""
    import cloudflare

    if isinstance(exc, PlatformError) or not isinstance(exc, cloudflare.CloudflareError):
        return exc  # ours, or our own bug: propagates as it is, with its traceback
    if isinstance(exc, cloudflare.APITimeoutError):
        return TemporaryError(redact_text(f"{what}: timed out"), code="Timeout")
    if isinstance(exc, cloudflare.APIConnectionError):
        return TemporaryError(redact_text(f"{what}: cannot reach Cloudflare ({exc.message})"),
                              code="ServiceUnreachable")
    if not isinstance(exc, cloudflare.APIStatusError):
        return PermanentError(redact_text(f"{what}: {type(exc).__name__}: {exc}"), code=type(exc).__name__,
                              remediation="unexpected SDK failure; see the chained cause in the logs")

    status = exc.status_code
    errors = _envelope_errors(exc.body)
    codes = {c for c, _ in errors if c is not None}
    detail = "; ".join(f"{c} {m}".strip() for c, m in errors) or exc.response.reason_phrase
    message = redact_text(f"{what}: Cloudflare answered {status}: {detail}")
    code = f"Cloudflare{min(codes)}" if codes else f"HTTP{status}"
    retry_after = retry_after_seconds(exc.response.headers)

    if codes & TRANSIENT_CODES:
        return TemporaryError(message, code=code, retry_after=retry_after)
    if codes & AUTH_CODES or status in (401, 403):
        return PermanentError(message, code=code, remediation=AUTH_REMEDIATION)
    if status == 404:
        return NotFoundError(message, code=code,
                             remediation="check the certificate id and the zone_id in platform.yaml")
    if status in (409, 412):
        return ConflictError(message, code=code, remediation="the certificate changed concurrently; re-read it")
    if status == 429 or status >= 500:
        return TemporaryError(message, code=code, retry_after=retry_after)
    return PermanentError(message, code=code,
                          remediation="Cloudflare refused the request as invalid; check hostnames, request_type "
                                      "and validity_days in platform.yaml")


def build(ctx: Context) -> CloudflareOriginCA:
    s = ctx.settings
    return CloudflareOriginCA(s.cloudflare_api_token, s.cloudflare_base_url, ctx.http)
