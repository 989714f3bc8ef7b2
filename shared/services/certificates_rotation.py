"""Rotating Cloudflare origin certificates held in Key Vault, retiring what they replace, sweeping orphans.

Gather, decide (``shared.services.certificates.decide``), act:

- ``check``: read the installed version, decide; when it must be renewed, ``rotate`` under the
  certificate's lease through ``mutate`` (retried on temporary errors, audited whatever happens).
- ``rotate`` re-reads first (another actor may have rotated), makes the key and CSR in memory, creates
  the certificate at Cloudflare once (the adapter sends the POST with no SDK retry; after an ambiguous
  failure the first attempt's certificate is found and adopted instead of sending it again), imports a
  new Key Vault version (PKCS#8 key + leaf + the Origin root) tagged with what issued it, and records the
  superseded Cloudflare certificate as a pending revocation. An import that fails revokes what was just
  issued (audited as a compensation). Key material lives in local variables and in Key Vault only.
- ``retire`` revokes superseded certificates once the grace period has passed and every named synced
  Kubernetes TLS secret holds the new serial; until then the row says what it waits for.
- ``sweep_orphans`` lists each managed zone's certificates (all pages): those for our hostnames that no
  Key Vault version references and older than the grace period are reported, or revoked.

Stable log codes (``CERT_ROTATION_AUTH_FAILED``...) are what the Azure Monitor alert matches.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import BadInputError, ConflictError, NotFoundError, PermanentError, PlatformError, TemporaryError
from shared.platform import CertificateSpec
from shared.retry import RetryPolicy
from shared.services.actuation import check_lease, mutate
from shared.services.certificates import CurrentVersion, Decision, Input, decide, renewal_due
from shared.state import table_key

log = logging.getLogger("platform_core.certificates")

MANAGED_BY = "platform-core"
REVOCATIONS_TABLE = "certrevocations"
#: Bounded retries inside one trigger (Retry-After honoured up to a minute); then deferred to the next one.
POLICY = RetryPolicy(attempts=3, base_delay=1.0, max_delay=10.0, max_retry_after=60.0)
#: How far back "issued by our first attempt" may lie when adopting after an ambiguous create.
ADOPT_WINDOW = dt.timedelta(minutes=10)

# Stable codes in log messages (and ``error_code``); infra/modules/monitoring/alerts.tf matches the first.
CODE_AUTH_FAILED = "CERT_ROTATION_AUTH_FAILED"
CODE_FAILED = "CERT_ROTATION_FAILED"
CODE_DEFERRED = "CERT_ROTATION_DEFERRED"
CODE_FOREIGN_IMPORT = "CERT_FOREIGN_IMPORT"
CODE_ORPHAN = "CERT_ORPHAN_FOUND"
CODE_COMPENSATED = "CERT_IMPORT_FAILED_REVOKED"
#: Cloudflare codes and HTTP statuses that mean "the credential is refused" (AUTH_CODES in the adapter).
_AUTH_ERROR_CODES = {"Cloudflare10000", "Cloudflare1016", "HTTP401", "HTTP403", "Unauthorized", "Forbidden",
                     "AuthorizationFailed", "NotConfigured"}


def target(ctx: Any, name: str) -> str:
    return f"certificate/{ctx.platform.name}/{name}"


def managed_spec(ctx: Any, name: str) -> CertificateSpec:
    try:
        return ctx.platform.certificate(name)
    except KeyError:
        managed = ", ".join(c.name for c in ctx.platform.certificates) or "none"
        raise BadInputError(f"certificate {name!r} is not managed in {ctx.platform.name} (managed: {managed})",
                            status=404, code="UnmanagedCertificate") from None


def cloudflare_id_of(stored: Any) -> str | None:
    """The Cloudflare id of a Key Vault version: our tag, else its serial (Cloudflare's id is the serial)."""
    if stored is None:
        return None
    tagged = (stored.tags or {}).get("cloudflare-id")
    if tagged:
        return str(tagged)
    return str(int(stored.serial, 16)) if stored.serial else None


def current_version(stored: Any) -> CurrentVersion | None:
    if stored is None:
        return None
    return CurrentVersion(version=stored.version, serial=stored.serial, issuer=stored.issuer,
                          not_before=stored.not_before, not_after=stored.expires_on,
                          hostnames=tuple(stored.subject_alternative_names), key_type=stored.key_type,
                          tags=stored.tags)


def is_ours(stored: Any) -> bool:
    return stored is not None and (stored.tags or {}).get("managed-by") == MANAGED_BY


# -- outcomes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    certificate: str
    decision: Decision
    #: kept | rotated | adopted | already-rotated | planned | deferred | failed
    action: str
    version: str | None = None
    serial: str | None = None
    cloudflare_id: str | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["decision"] = {**dataclasses.asdict(self.decision), "renew": self.decision.renew}
        return d


def log_decision(spec: CertificateSpec, decision: Decision, trigger: str) -> None:
    log.info("%s", decision.message, extra={
        "certificate": spec.name, "reason": decision.reason, "days_left": decision.days_left,
        "action": decision.action, "trigger": trigger,
        "next_check": decision.next_check.isoformat() if decision.next_check else None,
    })


def alert_code(error: PlatformError) -> str:
    if isinstance(error, TemporaryError):
        return CODE_DEFERRED
    return CODE_AUTH_FAILED if error.code in _AUTH_ERROR_CODES else CODE_FAILED


def report_error(name: str, error: PlatformError) -> str:
    """One log line with a stable code: an error (alerted) when permanent, a warning when deferred."""
    code = alert_code(error)
    level = logging.WARNING if code == CODE_DEFERRED else logging.ERROR
    remediation = getattr(error, "remediation", "") or ""
    log.log(level, "%s: certificate %s: %s: %s", code, name, error.code, error, extra={
        "certificate": name, "error_code": code, "cause": error.code, "remediation": remediation,
    })
    return code


# -- check and rotate -------------------------------------------------------------------------------


def gather(ctx: Any, spec: CertificateSpec, now: dt.datetime, force: bool = False) -> tuple[Any, Input]:
    stored = ctx.certificates.get(spec.name)
    return stored, Input(spec=spec, policy=ctx.platform.certificate_rotation, current=current_version(stored),
                         now=now, force=force)


def check(ctx: Any, name: str, *, actor: str, trigger: str, force: bool = False, dry_run: bool = False,
          sleep: Callable[[float], None] | None = None) -> Outcome:
    """Decide for one certificate and rotate it when due. Raises our errors after logging them."""
    spec = managed_spec(ctx, name)
    try:
        _, gathered = gather(ctx, spec, ctx.clock(), force)
        decision = decide(gathered)
        log_decision(spec, decision, trigger)
        if not decision.renew:
            return Outcome(spec.name, decision, "kept", gathered.current.version if gathered.current else None,
                           gathered.current.serial if gathered.current else None, message=decision.message)
        inputs = {"trigger": trigger, "days_left": decision.days_left, "hostnames": list(spec.hostnames),
                  "request_type": spec.request_type, "validity_days": spec.validity_days, "force": force}
        result = mutate(ctx, actor=actor, action="rotate", target=target(ctx, spec.name), reason=decision.reason,
                        inputs=inputs, change=lambda: rotate(ctx, spec, actor=actor, force=force),
                        dry_run=dry_run, policy=POLICY, sleep=sleep)
    except PlatformError as error:
        if not isinstance(error, BadInputError):
            report_error(spec.name, error)
        raise
    if result is None:  # dry run
        return Outcome(spec.name, decision, "planned", message=f"dry run: would renew ({decision.reason})")
    return dataclasses.replace(result, decision=decision)


def rotate(ctx: Any, spec: CertificateSpec, *, actor: str, force: bool = False) -> Outcome:
    """The change run under the lease: re-read, issue once, import, record what to retire."""
    from shared.adapters.cloudflare import make_key_and_csr

    now = ctx.clock()
    stored, gathered = gather(ctx, spec, now)
    again = decide(gathered)
    if not again.renew and not force:
        # Another actor (or our own earlier attempt) rotated it already: make sure its retirement is recorded.
        record_superseded(ctx, spec, stored, now)
        log.info("%s: already rotated (version %s)", spec.name, stored.version,
                 extra={"certificate": spec.name, "reason": "AlreadyRotated"})
        return Outcome(spec.name, again, "already-rotated", stored.version, stored.serial, cloudflare_id_of(stored),
                       f"{spec.name}: already rotated by another actor: version {stored.version}")

    key = make_key_and_csr(spec)
    issued, adopted = _issue(ctx, spec, key.csr_pem, since=now - ADOPT_WINDOW)
    serial = format(int(issued.id), "x") if issued.id.isdigit() else _leaf_serial(issued.certificate)
    tags = {
        "managed-by": MANAGED_BY,
        "issuer": "cloudflare-origin-ca",
        "cloudflare-id": issued.id,
        "serial": serial,
        "hostnames": ",".join(spec.hostnames)[:256],
        "request-type": spec.request_type,
        "actor": actor[:256],
    }
    superseded = cloudflare_id_of(stored) if _from_origin_ca(stored) else None
    if superseded and superseded != issued.id:
        tags["supersedes"] = superseded
    try:
        check_lease()  # still ours? Another actor may hold the certificate now: do not import over it
        imported = ctx.certificates.import_pem(
            spec.name, (key.key_pem + _pem_block(issued.certificate) + origin_root_for(ctx, issued.certificate))
            .encode(), tags)
    except PlatformError as error:
        imported = _import_landed(ctx, spec, serial)
        if imported is None:
            _compensate(ctx, spec, issued.id, error, actor)
            raise
    del key  # the only reference to the private key outside Key Vault
    record_superseded(ctx, spec, imported, now, previous=stored)
    action = "adopted" if adopted else "rotated"
    message = (f"{spec.name}: {action} Cloudflare certificate {issued.id} (serial {serial}) as Key Vault version "
               f"{imported.version}")
    log.info("%s", message, extra={"certificate": spec.name, "reason": again.reason, "serial": serial,
                                   "cloudflare_id": issued.id, "version": imported.version})
    return Outcome(spec.name, again, action, imported.version, serial, issued.id, message)


def _from_origin_ca(stored: Any) -> bool:
    from shared.services.certificates import ORIGIN_CA_UNIT

    return stored is not None and (is_ours(stored) or ORIGIN_CA_UNIT.lower() in (stored.issuer or "").lower())


def _issue(ctx: Any, spec: CertificateSpec, csr_pem: str, since: dt.datetime) -> tuple[Any, bool]:
    """Create once. After an ambiguous failure (``OutcomeUnknown``: sent, and perhaps issued), adopt what the
    first attempt created instead of sending again: Cloudflare does not deduplicate. Nothing found: the error
    propagates (no retry re-sends it) and the next trigger starts afresh; a late arrival is an orphan."""
    origin_ca = ctx.origin_ca
    try:
        return origin_ca.create(csr_pem, list(spec.hostnames), spec.request_type, spec.validity_days), False
    except TemporaryError as error:
        if error.code != "OutcomeUnknown":
            raise
        found = origin_ca.find_issued(spec.zone_id, list(spec.hostnames), csr_pem, since)
        if found is None:
            raise
        log.warning("%s: adopted Cloudflare certificate %s issued by an attempt whose answer was lost",
                    spec.name, found.id, extra={"certificate": spec.name, "cloudflare_id": found.id})
        return found, True


def _import_landed(ctx: Any, spec: CertificateSpec, serial: str) -> Any:
    """After a failed import: did it land anyway (an answer lost after the write)?"""
    try:
        latest = ctx.certificates.get(spec.name)
    except PlatformError:
        return None
    return latest if latest is not None and latest.serial == serial else None


def _compensate(ctx: Any, spec: CertificateSpec, cloudflare_id: str, error: PlatformError, actor: str) -> None:
    """The import failed: revoke the certificate just issued so nothing is left behind, and audit it."""
    inputs = {"cloudflare_id": cloudflare_id, "import_error": error.code}
    try:
        ctx.origin_ca.revoke(cloudflare_id)
    except PlatformError as revoke_error:
        ctx.state.audit(actor=actor, action="revoke", target=target(ctx, spec.name), reason="ImportFailed",
                        outcome="failed", inputs=inputs,
                        message=f"{revoke_error.code}: could not revoke {cloudflare_id}; the orphan sweep will")
        log.error("%s: certificate %s: import failed (%s) and revoking %s failed too (%s): the orphan sweep "
                  "will revoke it", CODE_FAILED, spec.name, error.code, cloudflare_id, revoke_error.code,
                  extra={"certificate": spec.name, "error_code": CODE_FAILED, "cloudflare_id": cloudflare_id})
        return
    ctx.state.audit(actor=actor, action="revoke", target=target(ctx, spec.name), reason="ImportFailed",
                    outcome="succeeded", inputs=inputs,
                    message=f"compensation: revoked {cloudflare_id} after the Key Vault import failed")
    log.warning("%s: certificate %s: the Key Vault import failed (%s); revoked the new Cloudflare certificate %s",
                CODE_COMPENSATED, spec.name, error.code, cloudflare_id,
                extra={"certificate": spec.name, "error_code": CODE_COMPENSATED, "cloudflare_id": cloudflare_id})


# -- origin root and PEM helpers --------------------------------------------------------------------


def origin_root_for(ctx: Any, leaf_pem: str) -> str:
    """The Origin CA root that signed ``leaf_pem``, as PEM, from the known roots; "" when none matches.

    Known roots: ``ctx.overrides["origin_roots"]`` (PEM strings; the sandbox's emulated root) and
    ``shared/services/cloudflare_origin_roots.pem`` when present (Cloudflare's published roots).
    """
    from pathlib import Path

    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    candidates = list(ctx.overrides.get("origin_roots", ())) if hasattr(ctx, "overrides") else []
    bundled = Path(__file__).with_name("cloudflare_origin_roots.pem")
    if bundled.exists():
        candidates.append(bundled.read_text())
    leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
    for bundle in candidates:
        for root in x509.load_pem_x509_certificates(bundle.encode()):
            if root.subject == leaf.issuer:
                try:
                    leaf.verify_directly_issued_by(root)
                except (ValueError, TypeError, InvalidSignature):  # not signed by this root
                    continue
                return _pem_of(root)
    log.warning("no known Cloudflare Origin root signed this certificate (issuer %s): importing the leaf alone",
                leaf.issuer.rfc4514_string())
    return ""


def _pem_of(cert: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _pem_block(pem: str) -> str:
    return pem if pem.endswith("\n") else pem + "\n"


def _leaf_serial(pem: str) -> str:
    from cryptography import x509

    return format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "x")


def _not_before(pem: str) -> dt.datetime | None:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(pem.encode()).not_valid_before_utc
    except ValueError:
        return None


def serial_in_secret(secret: Mapping[str, Any] | None) -> str | None:
    """The serial (hex) of the leaf in a kubernetes.io/tls Secret's ``tls.crt``; None when absent or unreadable."""
    from cryptography import x509

    data = (secret or {}).get("data") or {}
    encoded = data.get("tls.crt")
    if not encoded:
        return None
    try:
        return format(x509.load_pem_x509_certificates(base64.b64decode(encoded))[0].serial_number, "x")
    except (ValueError, IndexError, TypeError):
        return None


# -- pending revocations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingRevocation:
    certificate: str
    cloudflare_id: str
    new_serial: str
    new_version: str
    superseded_at: dt.datetime
    revoke_after: dt.datetime
    status: str  # pending | revoked
    waiting: str = ""
    revoked_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PendingRevocation:
        def when(key: str) -> dt.datetime | None:
            return dt.datetime.fromisoformat(row[key]) if row.get(key) else None

        return cls(certificate=row["certificate"], cloudflare_id=row["cloudflare_id"], new_serial=row["new_serial"],
                   new_version=row["new_version"], superseded_at=when("superseded_at"),  # type: ignore[arg-type]
                   revoke_after=when("revoke_after"), status=row["status"],  # type: ignore[arg-type]
                   waiting=row.get("waiting", ""), revoked_at=when("revoked_at"))


def record_superseded(ctx: Any, spec: CertificateSpec, current: Any, now: dt.datetime, previous: Any = None) -> None:
    """Remember that ``current`` superseded a Cloudflare certificate, to revoke it after the grace period.

    Idempotent (keyed by certificate and Cloudflare id): a retried rotation records it once.
    """
    if current is None:
        return
    old = (current.tags or {}).get("supersedes") or (cloudflare_id_of(previous) if _from_origin_ca(previous)
                                                     else None)
    if not old or old == cloudflare_id_of(current):
        return
    grace = dt.timedelta(minutes=ctx.platform.certificate_rotation.grace_period_minutes)
    new_serial = current.serial or (current.tags or {}).get("serial", "")
    try:
        ctx.storage.insert(REVOCATIONS_TABLE, {
            "PartitionKey": table_key(spec.name), "RowKey": table_key(old),
            "certificate": spec.name, "cloudflare_id": old, "new_serial": new_serial,
            "new_version": current.version, "superseded_at": now.isoformat(),
            "revoke_after": (now + grace).isoformat(), "status": "pending",
            "waiting": f"grace period until {(now + grace):%Y-%m-%d %H:%M}Z",
        })
    except ConflictError:
        return  # recorded by an earlier attempt


def pending_revocations(ctx: Any, name: str | None = None, include_done: bool = False) -> list[PendingRevocation]:
    clauses, params = [], {}
    if name:
        clauses.append("PartitionKey eq @pk")
        params["pk"] = table_key(name)
    if not include_done:
        clauses.append("status eq 'pending'")
    rows = ctx.storage.query(REVOCATIONS_TABLE, " and ".join(clauses) or "PartitionKey ne ''", params)
    return sorted((PendingRevocation.from_row(r) for r in rows), key=lambda p: p.superseded_at)


def _update_row(ctx: Any, p: PendingRevocation, **changes: Any) -> None:
    row = ctx.storage.get(REVOCATIONS_TABLE, table_key(p.certificate), table_key(p.cloudflare_id))
    if row is None:
        return
    etag = row.pop("_etag")
    row.update(changes)
    try:
        ctx.storage.replace(REVOCATIONS_TABLE, {k: v for k, v in row.items() if not k.startswith("_")}, etag)
    except ConflictError:
        pass  # another instance updated it: its view wins, the next pass looks again


def retire(ctx: Any, *, actor: str, dry_run: bool = False, sleep: Callable[[float], None] | None = None
           ) -> list[dict[str, Any]]:
    """Revoke superseded certificates whose grace period has passed and whose new serial reached the cluster."""
    now = ctx.clock()
    results: list[dict[str, Any]] = []
    for p in pending_revocations(ctx):
        try:
            spec = ctx.platform.certificate(p.certificate)
        except KeyError:
            continue  # no longer managed: the orphan sweep decides
        waiting = _waiting_for(ctx, spec, p, now)
        if waiting:
            if waiting != p.waiting:
                _update_row(ctx, p, waiting=waiting)
            results.append({"certificate": p.certificate, "cloudflare_id": p.cloudflare_id, "outcome": "waiting",
                            "waiting": waiting})
            continue
        try:
            mutate(ctx, actor=actor, action="revoke", target=target(ctx, spec.name), reason="Superseded",
                   inputs={"cloudflare_id": p.cloudflare_id, "new_serial": p.new_serial,
                           "new_version": p.new_version},
                   change=lambda p=p: revoke_quietly(ctx, p.cloudflare_id), dry_run=dry_run, policy=POLICY,
                   sleep=sleep)
        except PlatformError as error:
            report_error(spec.name, error)
            results.append({"certificate": p.certificate, "cloudflare_id": p.cloudflare_id,
                            "outcome": "deferred" if isinstance(error, TemporaryError) else "failed",
                            "error": error.code})
            continue
        if dry_run:
            results.append({"certificate": p.certificate, "cloudflare_id": p.cloudflare_id, "outcome": "planned"})
            continue
        _update_row(ctx, p, status="revoked", waiting="", revoked_at=ctx.clock().isoformat())
        log.info("%s: revoked superseded Cloudflare certificate %s", spec.name, p.cloudflare_id,
                 extra={"certificate": spec.name, "reason": "Superseded", "cloudflare_id": p.cloudflare_id})
        results.append({"certificate": p.certificate, "cloudflare_id": p.cloudflare_id, "outcome": "revoked"})
    return results


def _waiting_for(ctx: Any, spec: CertificateSpec, p: PendingRevocation, now: dt.datetime) -> str:
    if now < p.revoke_after:
        return f"grace period until {p.revoke_after:%Y-%m-%d %H:%M}Z"
    behind = []
    for ref in spec.synced_secrets:
        namespace, _, name = ref.partition("/")
        try:
            secret = ctx.cluster.get("v1", "secrets", name, namespace)
        except PlatformError as error:
            behind.append(f"{ref} (unreadable: {error.code})")
            continue
        held = serial_in_secret(secret)
        if held != p.new_serial:
            behind.append(f"{ref} ({'missing' if secret is None else f'holds serial {held}'})")
    return f"waiting for synced secrets to hold serial {p.new_serial}: {', '.join(behind)}" if behind else ""


def revoke_quietly(ctx: Any, cloudflare_id: str) -> None:
    """Revoke; a certificate already revoked or gone is the outcome we wanted."""
    try:
        ctx.origin_ca.revoke(cloudflare_id)
    except NotFoundError:
        return
    except PermanentError as error:
        if "already been revoked" in str(error) or error.code == "Cloudflare1005":
            return
        raise


# -- orphans ----------------------------------------------------------------------------------------


def referenced_ids(ctx: Any) -> set[str]:
    """Cloudflare ids some Key Vault version of a managed certificate references, or pending retirement."""
    ids: set[str] = set()
    for spec in ctx.platform.certificates:
        for version in ctx.certificates.versions(spec.name):
            found = cloudflare_id_of(version)
            if found:
                ids.add(found)
        latest = ctx.certificates.get(spec.name)
        if latest is not None and latest.serial:
            ids.add(str(int(latest.serial, 16)))
    ids.update(p.cloudflare_id for p in pending_revocations(ctx))
    return ids


def sweep_orphans(ctx: Any, *, actor: str, apply: bool, sleep: Callable[[float], None] | None = None
                  ) -> list[dict[str, Any]]:
    """Report (or revoke, with ``apply``) origin certificates for our hostnames nothing references."""
    now = ctx.clock()
    grace = dt.timedelta(minutes=ctx.platform.certificate_rotation.grace_period_minutes)
    ours = {h.lower() for spec in ctx.platform.certificates for h in spec.hostnames}
    referenced = referenced_ids(ctx)
    found: list[dict[str, Any]] = []
    for zone_id in dict.fromkeys(spec.zone_id for spec in ctx.platform.certificates):
        for cert in ctx.origin_ca.list(zone_id):  # every page
            hosts = {h.lower() for h in cert.hostnames}
            if cert.id in referenced or not hosts or not hosts <= ours:
                continue
            issued = _not_before(cert.certificate) or (
                cert.expires_on - dt.timedelta(days=cert.validity_days) if cert.expires_on else None)
            if issued is None or now - issued < grace:
                continue  # young: perhaps a rotation in flight
            orphan = {"cloudflare_id": cert.id, "hostnames": sorted(hosts), "zone_id": zone_id,
                      "issued": issued.isoformat(), "expires_on": cert.expires_on.isoformat() if cert.expires_on
                      else None, "outcome": "reported"}
            log.warning("%s: Cloudflare certificate %s for %s is referenced by no Key Vault version", CODE_ORPHAN,
                        cert.id, ", ".join(sorted(hosts)), extra={"error_code": CODE_ORPHAN, "cloudflare_id": cert.id})
            try:
                mutate(ctx, actor=actor, action="revoke", target=f"origin-certificate/{ctx.platform.name}/{cert.id}",
                       reason="Orphan", inputs={k: v for k, v in orphan.items() if k != "outcome"},
                       change=lambda cid=cert.id: revoke_quietly(ctx, cid), dry_run=not apply, policy=POLICY,
                       sleep=sleep)
                orphan["outcome"] = "revoked" if apply else "reported"
            except PlatformError as error:
                orphan["outcome"] = "deferred" if isinstance(error, TemporaryError) else "failed"
                orphan["error"] = error.code
            found.append(orphan)
    return found


# -- Key Vault events -------------------------------------------------------------------------------


def observe_new_version(ctx: Any, name: str, version: str | None, *, actor: str) -> str:
    """A CertificateNewVersionCreated: ours is acknowledged; anyone else's import is reported (audited)."""
    spec = managed_spec(ctx, name)
    versions = ctx.certificates.versions(spec.name)
    match = next((v for v in versions if version and v.version.lower() == version.lower()), None)
    if match is None and version is None:
        match = versions[-1] if versions else None
    if match is not None and is_ours(match):
        log.info("%s: new version %s is our own import (Cloudflare %s): nothing to do", spec.name, match.version,
                 match.tags.get("cloudflare-id"), extra={"certificate": spec.name, "reason": "OwnImport"})
        return "own"
    if match is None:
        log.info("%s: new version %s is not listed (deleted since, or a late event): nothing to do", spec.name,
                 version, extra={"certificate": spec.name, "reason": "UnknownVersion"})
        return "unknown"
    ctx.state.audit(actor=actor, action="observe", target=target(ctx, spec.name), reason="ForeignImport",
                    outcome="reported", inputs={"version": match.version, "tags": dict(match.tags)},
                    message=f"version {match.version} was imported by someone else, not by {MANAGED_BY}")
    log.warning("%s: certificate %s: version %s was imported by someone else (tags %s); the next check decides "
                "whether it is acceptable", CODE_FOREIGN_IMPORT, spec.name, match.version, dict(match.tags),
                extra={"certificate": spec.name, "error_code": CODE_FOREIGN_IMPORT, "version": match.version})
    return "foreign"


# -- status -----------------------------------------------------------------------------------------


def status(ctx: Any) -> list[dict[str, Any]]:
    """Per certificate: version, serial, issuer, not-after, days left, decision and reason, pending revocations."""
    now = ctx.clock()
    pending = pending_revocations(ctx)
    out = []
    for spec in ctx.platform.certificates:
        stored, gathered = gather(ctx, spec, now)
        decision = decide(gathered)
        c = gathered.current
        out.append({
            "certificate": spec.name,
            "version": c.version if c else None, "serial": c.serial if c else None,
            "issuer": c.issuer if c else None,
            "not_after": c.not_after.isoformat() if c and c.not_after else None,
            "days_left": decision.days_left, "decision": decision.action, "reason": decision.reason,
            "message": decision.message,
            "renewal_due": (renewal_due(spec, gathered.policy, c).isoformat()  # type: ignore[union-attr]
                            if c and c.not_after else None),
            "managed_by_us": is_ours(stored),
            "pending_revocations": [{"cloudflare_id": p.cloudflare_id, "revoke_after": p.revoke_after.isoformat(),
                                     "waiting": p.waiting or "due"} for p in pending
                                    if p.certificate == spec.name],
        })
    return out
