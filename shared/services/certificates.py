"""Whether an origin certificate in Key Vault needs renewing: a pure decision, cert-manager style.

``decide(Input)`` runs a list of small checks in order; the first that fires names the reason
(``Missing``, ``Expired``, ``NotOriginCA``, ``HostnamesChanged``, ``KeyTypeChanged``,
``InsideRenewBefore``, ``LifetimeShareLow``) and the certificate is renewed. When none fires the
decision is ``UpToDate`` with the time the next check is due. No I/O, ``now`` passed in: the rotation
service (``shared.services.certificate_rotation``) gathers the ``Input`` and acts on the ``Decision``.
"""

from __future__ import annotations

import datetime as dt
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
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"extra {', '.join(extra)}"] if extra else [])
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
