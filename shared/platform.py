"""Per-environment platform facts, read from ``infra/envs/<env>/platform.yaml``.

Terraform reads the very same file (``yamldecode``), so a GPU pool's bounds or a certificate's
hostnames are written once. This module only parses and validates it into frozen dataclasses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import ConfigError

ENVIRONMENTS = ("dev-uaenorth", "stg-uaenorth", "prd-uaenorth")
APP_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = APP_ROOT / "infra" / "envs"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_VALIDITY_DAYS = (7, 30, 90, 365, 730, 1095, 5475)  # the only values Cloudflare Origin CA accepts


@dataclass(frozen=True)
class GpuPool:
    name: str
    vendor: str  # "nvidia" | "amd"
    vm_size: str
    gpus_per_node: int
    min_count: int  # nodes; the automation never scales below this
    max_count: int  # nodes; and never above this (quota and budget)
    mig_profile: str | None
    inference_queue: str  # Storage queue whose depth drives this pool
    requests_per_gpu: int  # concurrent requests one GPU serves at target latency
    #: Another pool serving the same model: demand moves there when this one's quota is exhausted.
    fallback_pool: str | None = None
    #: ``namespace/name`` of the Deployment serving this pool's model; the scaling function sets its replicas
    serving_deployment: str | None = None
    #: Scaling policy parameters overridden for this pool (name, value), validated against
    #: ``shared.services.scaling.policy.ScalingParameters``; a tuple keeps the dataclass hashable.
    scaling: tuple[tuple[str, float], ...] = ()

    @property
    def slots_per_node(self) -> int:
        """Requests one node serves at once."""
        return self.requests_per_gpu * self.gpus_per_node


@dataclass(frozen=True)
class CertificateSpec:
    name: str  # Key Vault certificate name
    zone: str
    zone_id: str  # Cloudflare zone id (not a secret)
    hostnames: tuple[str, ...]
    request_type: str  # origin-rsa | origin-ecc
    validity_days: int
    renew_before_days: int
    #: Kubernetes TLS secrets (``namespace/name``) external-secrets fills from this certificate: each must
    #: hold the new serial before the superseded certificate is revoked. Empty: the grace period alone.
    synced_secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class CertificateRotation:
    """How origin certificates are rotated and retired in one environment (``certificate_rotation:``)."""

    #: Minutes between importing a new version and revoking the one it superseded (and the age an orphan
    #: must reach before it is touched). Longer than external-secrets' refreshInterval (tested).
    grace_period_minutes: int = 60
    #: Renew when less than this share of the certificate's lifetime is left (cert-manager's 1/3).
    renew_lifetime_share: float = 1 / 3
    #: What the scheduled orphan sweep does: "report" (dry run) or "revoke".
    orphan_cleanup: str = "report"


@dataclass(frozen=True)
class GitLabProject:
    url: str
    project: str
    default_branch: str
    gitops_path: str


@dataclass(frozen=True)
class PlatformEnvironment:
    name: str
    location: str
    subscription_id: str
    tenant_id: str
    resource_group: str
    cluster_name: str
    #: Prefix of the platform's own node labels (``<prefix>/gpu-vendor``...), as the aks module sets them.
    node_label_prefix: str
    key_vault_name: str
    storage_account: str
    gpu_pools: tuple[GpuPool, ...]
    certificates: tuple[CertificateSpec, ...]
    gitlab: GitLabProject
    certificate_rotation: CertificateRotation = CertificateRotation()

    @property
    def key_vault_url(self) -> str:
        return f"https://{self.key_vault_name}.vault.azure.net"

    def gpu_pool(self, name: str) -> GpuPool:
        for pool in self.gpu_pools:
            if pool.name == name:
                return pool
        raise KeyError(name)

    def certificate(self, name: str) -> CertificateSpec:
        for cert in self.certificates:
            if cert.name == name:
                return cert
        raise KeyError(name)


def load_environment(name: str, config_dir: Path | str | None = None) -> PlatformEnvironment:
    """Parse and validate one environment's platform file; raise ConfigError listing every problem."""
    if name not in ENVIRONMENTS:
        raise ConfigError([f"unknown environment {name!r}: expected one of {', '.join(ENVIRONMENTS)}"])
    path = Path(config_dir or DEFAULT_CONFIG_DIR) / name / "platform.yaml"
    try:
        import yaml  # PyYAML is light; imported here to keep module import trivial

        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: platform file not found"]) from None
    except Exception as exc:  # yaml.YAMLError and friends
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    return parse_environment(raw, source=str(path), expected_name=name)


def parse_environment(
    raw: Any, *, source: str = "platform.yaml", expected_name: str | None = None
) -> PlatformEnvironment:
    problems: list[str] = []
    r = _Reader(raw if isinstance(raw, dict) else {}, source, problems)
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: expected a mapping at the top level"])

    env_name = r.str("environment")
    if expected_name and env_name and env_name != expected_name:
        problems.append(f"{source}: environment is {env_name!r} but the file is for {expected_name!r}")
    subscription = r.str("subscription_id")
    if subscription and not _GUID.match(subscription):
        problems.append(f"{source}: subscription_id must be a GUID, got {subscription!r}")
    tenant = r.str("tenant_id")
    if tenant and not _GUID.match(tenant):
        problems.append(f"{source}: tenant_id must be a GUID, got {tenant!r}")

    pools = []
    for i, p in enumerate(r.list("gpu_pools")):
        pr = _Reader(p, f"{source}: gpu_pools[{i}]", problems)
        pool = GpuPool(
            name=pr.str("name"),
            vendor=pr.choice("vendor", ("nvidia", "amd")),
            vm_size=pr.str("vm_size"),
            gpus_per_node=pr.int("gpus_per_node", minimum=1),
            min_count=pr.int("min_count", minimum=0),
            max_count=pr.int("max_count", minimum=0, maximum=1000),
            mig_profile=pr.optional_str("mig_profile"),
            inference_queue=pr.str("inference_queue"),
            requests_per_gpu=pr.int("requests_per_gpu", minimum=1),
            fallback_pool=pr.optional_str("fallback_pool"),
            serving_deployment=pr.optional_str("serving_deployment"),
            scaling=_scaling_overrides(p.get("scaling") if isinstance(p, dict) else None,
                                       f"{source}: gpu_pools[{i}].scaling", problems),
        )
        if pool.min_count > pool.max_count:
            problems.append(f"{source}: gpu_pools[{i}] min_count {pool.min_count} > max_count {pool.max_count}")
        pools.append(pool)
    _unique(problems, source, "gpu_pools", [p.name for p in pools])
    names = {p.name for p in pools}
    for i, pool in enumerate(pools):
        if pool.fallback_pool is not None and (pool.fallback_pool == pool.name or pool.fallback_pool not in names):
            problems.append(f"{source}: gpu_pools[{i}] fallback_pool {pool.fallback_pool!r} must name another "
                            "pool of this file")

    certs = []
    for i, c in enumerate(r.list("certificates")):
        cr = _Reader(c, f"{source}: certificates[{i}]", problems)
        cert = CertificateSpec(
            name=cr.str("name"),
            zone=cr.str("zone"),
            zone_id=cr.str("zone_id"),
            hostnames=tuple(cr.list("hostnames")),
            request_type=cr.choice("request_type", ("origin-rsa", "origin-ecc")),
            validity_days=cr.int("validity_days"),
            renew_before_days=cr.int("renew_before_days", minimum=1),
            synced_secrets=tuple(_synced_secrets(c, f"{source}: certificates[{i}]", problems)),
        )
        if cert.validity_days and cert.validity_days not in _VALIDITY_DAYS:
            problems.append(
                f"{source}: certificates[{i}] validity_days {cert.validity_days} is not one Cloudflare accepts "
                f"({', '.join(map(str, _VALIDITY_DAYS))})"
            )
        if cert.validity_days and cert.renew_before_days >= cert.validity_days:
            problems.append(f"{source}: certificates[{i}] renew_before_days must be less than validity_days")
        if not cert.hostnames:
            problems.append(f"{source}: certificates[{i}] needs at least one hostname")
        certs.append(cert)
    _unique(problems, source, "certificates", [c.name for c in certs])

    rotation = _certificate_rotation(raw.get("certificate_rotation"), f"{source}: certificate_rotation", problems)
    cluster = _Reader(r.mapping("cluster"), f"{source}: cluster", problems)
    gl = _Reader(r.mapping("gitlab"), f"{source}: gitlab", problems)
    gitlab = GitLabProject(
        url=gl.str("url"), project=gl.str("project"),
        default_branch=gl.str("default_branch"), gitops_path=gl.str("gitops_path"),
    )
    env = PlatformEnvironment(
        name=env_name,
        location=r.str("location"),
        subscription_id=subscription,
        tenant_id=tenant,
        resource_group=r.str("resource_group"),
        cluster_name=cluster.str("name"),
        node_label_prefix=cluster.str("node_label_prefix"),
        key_vault_name=_Reader(r.mapping("key_vault"), f"{source}: key_vault", problems).str("name"),
        storage_account=_Reader(r.mapping("storage"), f"{source}: storage", problems).str("account_name"),
        gpu_pools=tuple(pools),
        certificates=tuple(certs),
        gitlab=gitlab,
        certificate_rotation=rotation,
    )
    if problems:
        raise ConfigError(problems)
    return env


_SECRET_REF = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")


def _synced_secrets(cert: Any, where: str, problems: list[str]) -> list[str]:
    value = cert.get("synced_secrets", []) if isinstance(cert, dict) else []
    if not isinstance(value, list) or not all(isinstance(v, str) and _SECRET_REF.match(v) for v in value):
        problems.append(f"{where}: 'synced_secrets' must be a list of namespace/name, got {value!r}")
        return []
    return value


def _certificate_rotation(raw: Any, where: str, problems: list[str]) -> CertificateRotation:
    """Optional section; every field has a default (see README, "Certificate rotation")."""
    if raw is None:
        return CertificateRotation()
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping")
        return CertificateRotation()
    defaults = CertificateRotation()
    unknown = set(raw) - {"grace_period_minutes", "renew_lifetime_share", "orphan_cleanup"}
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    grace = raw.get("grace_period_minutes", defaults.grace_period_minutes)
    if not isinstance(grace, int) or isinstance(grace, bool) or not 1 <= grace <= 7 * 24 * 60:
        problems.append(f"{where}: 'grace_period_minutes' must be an integer within [1, 10080], got {grace!r}")
        grace = defaults.grace_period_minutes
    share = raw.get("renew_lifetime_share", defaults.renew_lifetime_share)
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 < share < 1:
        problems.append(f"{where}: 'renew_lifetime_share' must be a number within (0, 1), got {share!r}")
        share = defaults.renew_lifetime_share
    cleanup = raw.get("orphan_cleanup", defaults.orphan_cleanup)
    if cleanup not in ("report", "revoke"):
        problems.append(f"{where}: 'orphan_cleanup' must be report or revoke, got {cleanup!r}")
        cleanup = defaults.orphan_cleanup
    return CertificateRotation(grace_period_minutes=grace, renew_lifetime_share=float(share), orphan_cleanup=cleanup)


def _scaling_overrides(raw: Any, where: str, problems: list[str]) -> tuple[tuple[str, float], ...]:
    """``scaling:`` of a GPU pool: numbers by parameter name; unknown names and bad values are problems."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping of parameter names to numbers")
        return ()
    from shared.services.scaling.policy import ScalingParameters  # dataclasses only: cheap

    bad = [k for k, v in raw.items() if not isinstance(v, int | float) or isinstance(v, bool)]
    if bad:
        problems.append(f"{where}: {', '.join(map(str, bad))} must be numbers")
        return ()
    facts = sorted({"min_count", "max_count", "slots_per_node"} & set(raw))
    if facts:
        problems.append(f"{where}: {', '.join(facts)} come from the pool itself, not from scaling:")
        return ()
    try:
        ScalingParameters().with_overrides(raw)
    except (ValueError, TypeError) as exc:
        problems.append(f"{where}: {exc}")
        return ()
    return tuple(sorted((str(k), float(v)) for k, v in raw.items()))


def _unique(problems: list[str], source: str, what: str, names: list[str]) -> None:
    seen = {n for n in names if names.count(n) > 1}
    if seen:
        problems.append(f"{source}: {what} names must be unique, repeated: {', '.join(sorted(seen))}")


class _Reader:
    """Reads typed fields from a mapping, recording a problem (not raising) for each bad one."""

    def __init__(self, data: Any, where: str, problems: list[str]) -> None:
        self.data = data if isinstance(data, dict) else {}
        self.where = where
        self.problems = problems
        # A missing section was already reported by the parent: do not repeat it field by field.
        self.silent = data is None
        if data is not None and not isinstance(data, dict):
            problems.append(f"{where}: expected a mapping")

    def _get(self, key: str) -> Any:
        if key not in self.data:
            if self.silent:
                return None
            self.problems.append(f"{self.where}: missing {key!r}")
            return None
        return self.data[key]

    def str(self, key: str) -> str:
        value = self._get(key)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{self.where}: {key!r} must be a non-empty string")
            return ""
        return value

    def optional_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            self.problems.append(f"{self.where}: {key!r} must be a string or null")
            return None
        return value

    def int(self, key: str, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._get(key)
        if value is None:
            return 0
        if not isinstance(value, int) or isinstance(value, bool):
            self.problems.append(f"{self.where}: {key!r} must be an integer, got {value!r}")
            return 0
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.problems.append(f"{self.where}: {key!r} must be within [{minimum}, {maximum}], got {value}")
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self.str(key)
        if value and value not in options:
            self.problems.append(f"{self.where}: {key!r} must be one of {', '.join(options)}, got {value!r}")
        return value

    def list(self, key: str) -> list[Any]:
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problems.append(f"{self.where}: {key!r} must be a list")
            return []
        return value

    def mapping(self, key: str) -> Any:
        return self._get(key)
