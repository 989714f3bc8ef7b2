"""Whether an origin certificate in Key Vault needs renewing: a pure decision, cert-manager style.

``decide(Input)`` runs a list of small checks in order; the first that fires names the reason
(``Missing``, ``Expired``, ``NotOriginCA``, ``HostnamesChanged``, ``KeyTypeChanged``,
``InsideRenewBefore``, ``LifetimeShareLow``) and the certificate is renewed. When none fires the
decision is ``UpToDate`` with the time the next check is due. No I/O, ``now`` passed in: the rotation
service (``shared.services.certificate_rotation``) gathers the ``Input`` and acts on the ``Decision``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.platform import CertificateRotation, CertificateSpec

#: The Origin CA's issuer names (RSA and ECC roots) carry this organisational unit.
ORIGIN_CA_UNIT = "CloudFlare Origin SSL"
#: Key type of the leaf for each Cloudflare ``request_type``.
KEY_TYPES = {"origin-ecc": "EC", "origin-rsa": "RSA"}
#: A certificate that needs nothing is looked at again at least this often (the daily timer's period).
MAX_CHECK_INTERVAL = dt.timedelta(days=1)

RENEW = "renew"
KEEP = "keep"


@dataclass(frozen=True)
class CurrentVersion:
    """What matters of the installed Key Vault version, without its key."""

    version: str
    serial: str | None
    issuer: str | None
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    hostnames: tuple[str, ...]
    key_type: str | None  # "EC" | "RSA"
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Input:
    spec: CertificateSpec
    policy: CertificateRotation
    current: CurrentVersion | None
    now: dt.datetime
    force: bool = False


@dataclass(frozen=True)
class Decision:
    action: str  # RENEW | KEEP
    reason: str
    message: str
    #: When to look again (None: now, the certificate is being renewed).
    next_check: dt.datetime | None
    days_left: float | None

    @property
    def renew(self) -> bool:
        return self.action == RENEW


Check = Callable[[Input], tuple[str, str] | None]


def days_left(current: CurrentVersion | None, now: dt.datetime) -> float | None:
    if current is None or current.not_after is None:
        return None
    return round((current.not_after - now).total_seconds() / 86400, 2)


def renewal_due(spec: CertificateSpec, policy: CertificateRotation, current: CurrentVersion) -> dt.datetime | None:
    """The earlier of "``renew_before_days`` before expiry" and "``renew_lifetime_share`` of the lifetime left"."""
    if current.not_after is None:
        return None
    due = current.not_after - dt.timedelta(days=spec.renew_before_days)
    if current.not_before is not None and current.not_after > current.not_before:
        lifetime = current.not_after - current.not_before
        due = min(due, current.not_after - lifetime * policy.renew_lifetime_share)
    return due


# -- checks: each returns (reason, message) when the certificate must be renewed -----------------


def check_forced(i: Input) -> tuple[str, str] | None:
    return ("Forced", "renewal requested by an operator (--force)") if i.force else None


def check_missing(i: Input) -> tuple[str, str] | None:
    if i.current is None:
        return "Missing", f"Key Vault holds no version of {i.spec.name}"
    return None


def check_expired(i: Input) -> tuple[str, str] | None:
    c = i.current
    if c is not None and c.not_after is not None and c.not_after <= i.now:
        return "Expired", f"version {c.version} expired at {c.not_after:%Y-%m-%d %H:%M}Z"
    return None


def check_issuer(i: Input) -> tuple[str, str] | None:
    c = i.current
    if c is not None and ORIGIN_CA_UNIT.lower() not in (c.issuer or "").lower():
        return "NotOriginCA", f"version {c.version} is issued by {c.issuer or 'an unknown issuer'}, not the " \
                              "Cloudflare Origin CA"
    return None


def check_hostnames(i: Input) -> tuple[str, str] | None:
    c = i.current
    if c is None:
        return None
    have, want = {h.lower() for h in c.hostnames}, {h.lower() for h in i.spec.hostnames}
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"extra {', '.join(extra)}"] if extra else []
        return "HostnamesChanged", f"version {c.version} covers other hostnames than platform.yaml: {'; '.join(parts)}"
    return None


def check_key_type(i: Input) -> tuple[str, str] | None:
    c = i.current
    wanted = KEY_TYPES.get(i.spec.request_type)
    if c is not None and wanted and c.key_type != wanted:
        return "KeyTypeChanged", f"version {c.version} has a {c.key_type or 'unknown'} key; request_type " \
                                 f"{i.spec.request_type} wants {wanted}"
    return None


def check_renew_before(i: Input) -> tuple[str, str] | None:
    c = i.current
    if c is None or c.not_after is None:
        return None
    if c.not_after - dt.timedelta(days=i.spec.renew_before_days) <= i.now:
        return "InsideRenewBefore", f"{days_left(c, i.now)} days left, within renew_before_days " \
                                    f"({i.spec.renew_before_days})"
    return None


def check_lifetime_share(i: Input) -> tuple[str, str] | None:
    c = i.current
    if c is None or c.not_after is None or c.not_before is None or c.not_after <= c.not_before:
        return None
    lifetime = c.not_after - c.not_before
    left = c.not_after - i.now
    if left < lifetime * i.policy.renew_lifetime_share:
        share = left / lifetime
        return "LifetimeShareLow", f"{share:.0%} of the lifetime left, below renew_lifetime_share " \
                                   f"({i.policy.renew_lifetime_share:.0%})"
    return None


CHECKS: tuple[Check, ...] = (check_forced, check_missing, check_expired, check_issuer, check_hostnames,
                             check_key_type, check_renew_before, check_lifetime_share)


def decide(i: Input) -> Decision:
    left = days_left(i.current, i.now)
    for check in CHECKS:
        found = check(i)
        if found is not None:
            reason, message = found
            return Decision(RENEW, reason, f"{i.spec.name}: renew: {message}", None, left)
    assert i.current is not None  # check_missing fired otherwise
    due = renewal_due(i.spec, i.policy, i.current)
    next_check = min(due, i.now + MAX_CHECK_INTERVAL) if due is not None else i.now + MAX_CHECK_INTERVAL
    when = f"{due:%Y-%m-%d %H:%M}Z" if due is not None else "unknown"
    return Decision(KEEP, "UpToDate",
                    f"{i.spec.name}: up to date, {left} days left; renewal due {when}", next_check, left)


# -- Key Vault certificate events (Event Grid schema or CloudEvents 1.0), parsed without raising ----------

EVENT_PREFIX = "Microsoft.KeyVault."
NEAR_EXPIRY, EXPIRED, NEW_VERSION = "CertificateNearExpiry", "CertificateExpired", "CertificateNewVersionCreated"
CERTIFICATE_EVENTS = (NEAR_EXPIRY, EXPIRED, NEW_VERSION)


@dataclass(frozen=True)
class CertificateEvent:
    id: str
    kind: str  # one of CERTIFICATE_EVENTS
    vault: str
    name: str
    version: str | None


@dataclass(frozen=True)
class Ignored:
    reason: str
    message: str


def _clean_keys(data: Mapping[str, object]) -> dict[str, object]:
    """The published sample has keys with stray spaces; compare keys trimmed and case-insensitively."""
    return {str(k).strip().lower(): v for k, v in data.items()}


def _id_parts(object_id: str) -> tuple[str | None, str | None, str | None, str | None]:
    """``https://<vault>.vault.azure.net/certificates/<name>/<version>`` -> (vault, type, name, version)."""
    from urllib.parse import urlsplit

    try:
        split = urlsplit(object_id.strip())
    except ValueError:
        return None, None, None, None
    host = (split.hostname or "").lower()
    if not host:
        return None, None, None, None  # not an object URL
    vault = host.split(".")[0] if ".vault." in host else None
    parts = [p for p in split.path.split("/") if p]
    kind = parts[0] if parts else None
    name = parts[1] if len(parts) > 1 else None
    version = parts[2] if len(parts) > 2 else None
    return vault, kind, name, version


def parse_event(raw: Mapping[str, object], vault_name: str) -> CertificateEvent | Ignored:
    """A Key Vault certificate event for ``vault_name``, or why it is ignored. Never raises.

    ``raw`` holds ``id``, ``type`` (eventType), ``subject``, ``topic``/``source`` and ``data``. The vault comes
    from ``data.VaultName``, else the topic (``.../vaults/<name>``), else the host of ``data.Id``; the name and
    version from ``ObjectName``/``Version``, else from ``Id``, else (name) from the subject.
    """
    try:
        return _parse(raw, vault_name)
    except Exception as exc:
        return Ignored("Malformed", f"unreadable event: {type(exc).__name__}")


def _parse(raw: Mapping[str, object], vault_name: str) -> CertificateEvent | Ignored:
    event_type = str(raw.get("type") or "").strip()
    kind = event_type[len(EVENT_PREFIX):] if event_type.startswith(EVENT_PREFIX) else ""
    if kind not in CERTIFICATE_EVENTS:
        return Ignored("OtherEventType", f"event type {event_type or '(none)'} is not a certificate event")
    data_raw = raw.get("data")
    data = _clean_keys(data_raw) if isinstance(data_raw, Mapping) else {}
    object_id = str(data.get("id") or "")
    id_vault, id_kind, id_name, id_version = _id_parts(object_id) if object_id else (None, None, None, None)
    object_type = str(data.get("objecttype") or "").strip()
    if object_type and object_type.lower() != "certificate":
        return Ignored("OtherObjectType", f"object type {object_type} is not a certificate")
    if not object_type and id_kind and id_kind.lower() != "certificates":
        return Ignored("OtherObjectType", f"object {object_id} is not a certificate")
    topic = str(raw.get("topic") or raw.get("source") or "")
    found = re.search(r"/vaults/([^/]+)", topic, re.IGNORECASE)
    topic_vault = found.group(1) if found else None
    vault = str(data.get("vaultname") or "").strip() or topic_vault or id_vault
    if not vault:
        return Ignored("Malformed", "the event names no vault (VaultName, topic or Id)")
    if vault.lower() != vault_name.lower():
        return Ignored("OtherVault", f"vault {vault} is not this environment's ({vault_name})")
    subject = str(raw.get("subject") or "").strip()
    name = str(data.get("objectname") or "").strip() or id_name or (subject.split("/")[0] if subject else "")
    if not name:
        return Ignored("Malformed", "the event names no certificate (ObjectName, Id or subject)")
    version = str(data.get("version") or "").strip() or id_version or None
    event_id = str(raw.get("id") or "").strip() or f"{kind}:{name}:{version or ''}"
    return CertificateEvent(id=event_id, kind=kind, vault=vault, name=name, version=version)
