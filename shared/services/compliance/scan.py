"""One compliance scan: gather (cluster, Kyverno reports, rendered gitops, checkov), evaluate, keep history.

- ``run_scan(ctx, env=, now=)``: the timer's and ``platformctl scan``'s entry point. Reads the live cluster
  through the Kubernetes adapter (sources ``cluster`` and ``kyverno``), optionally the repository (``gitops``:
  ``kubectl kustomize`` of the environment's overlays; ``checkov``: ``infra/`` offline), classifies against
  the stored history and the exceptions file, records, and alerts on new high/critical findings.
- ``last_scan(ctx, env=)``: the last recorded scan, rebuilt from the table (no scan runs).
- ``scan_manifests(paths, ...)``: the same cluster rules over YAML files or folders, offline, nothing stored.
- ``sarif(report)``: SARIF 2.1.0.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.errors import ConfigError, NotFoundError, PlatformError
from shared.services.compliance import history as h
from shared.services.compliance import rules as r
from shared.services.compliance.findings import (
    BLOCKING_SEVERITIES,
    CHECKOV,
    CLUSTER,
    CRITICAL,
    EXCEPTION,
    FIXED,
    GITOPS,
    HIGH,
    INFO,
    KYVERNO,
    LOW,
    MEDIUM,
    NEW,
    Finding,
    ReportedFinding,
    ScanReport,
    dedupe,
    iso,
    parse_iso,
    without_history,
)

log = logging.getLogger("platform_core.compliance")
REPO_ROOT = Path(__file__).resolve().parents[3]
#: Logged (at ERROR, with these words first) when a scan finds a new high or critical finding: the Azure
#: Monitor alert ``alert-compliance-new-high-*`` (infra/modules/monitoring/alerts.tf) fires on it.
CODE_NEW_HIGH = "COMPLIANCE_NEW_HIGH"

#: What the live scan lists: (apiVersion, plural, kind). A kind the cluster does not serve (404: no CRD) is
#: simply absent; any other error makes the source unavailable (its earlier findings are kept as they were).
CLUSTER_KINDS: tuple[tuple[str, str, str], ...] = (
    ("v1", "namespaces", "Namespace"), ("v1", "nodes", "Node"), ("v1", "pods", "Pod"),
    ("apps/v1", "deployments", "Deployment"), ("apps/v1", "statefulsets", "StatefulSet"),
    ("apps/v1", "daemonsets", "DaemonSet"), ("apps/v1", "replicasets", "ReplicaSet"),
    ("batch/v1", "jobs", "Job"), ("batch/v1", "cronjobs", "CronJob"),
    ("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy"), ("networking.k8s.io/v1", "ingresses", "Ingress"),
    ("gateway.networking.k8s.io/v1", "gateways", "Gateway"),
    ("gateway.networking.k8s.io/v1", "httproutes", "HTTPRoute"),
    ("source.toolkit.fluxcd.io/v1", "gitrepositories", "GitRepository"),
    ("kustomize.toolkit.fluxcd.io/v1", "kustomizations", "Kustomization"),
    ("helm.toolkit.fluxcd.io/v2", "helmreleases", "HelmRelease"),
)
#: Kyverno's reports: wgpolicyk8s.io (Kyverno up to 1.14) and openreports.io (its successor).
REPORT_KINDS: tuple[tuple[str, str, str], ...] = (
    ("wgpolicyk8s.io/v1alpha2", "policyreports", "PolicyReport"),
    ("wgpolicyk8s.io/v1alpha2", "clusterpolicyreports", "ClusterPolicyReport"),
    ("openreports.io/v1alpha1", "reports", "Report"),
    ("openreports.io/v1alpha1", "clusterreports", "ClusterReport"),
)
#: The gitops layers whose ``<layer>/<env>`` overlay is rendered and checked (clusters/ holds Flux objects only).
GITOPS_LAYERS = ("infrastructure/controllers", "infrastructure/configs", "apps")


# -- facts and exceptions --------------------------------------------------------------------------------


def load_platform(env: str, config_dir: Path | str | None = None) -> dict[str, Any]:
    import yaml

    base = Path(config_dir) if config_dir else REPO_ROOT / "infra" / "envs"
    path = base / env / "platform.yaml"
    if not path.exists():
        raise ConfigError([f"{path}: no platform file for environment {env!r}"])
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def exceptions_path(config_dir: Path | str | None = None) -> Path:
    """``infra/compliance-exceptions.yaml``, next to ``infra/envs`` (deployed with the app like platform.yaml)."""
    base = Path(config_dir) if config_dir else REPO_ROOT / "infra" / "envs"
    return base.parent / h.EXCEPTIONS_FILE


# -- gather ----------------------------------------------------------------------------------------------


def _listed(cluster: Any, kinds: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for api_version, plural, kind in kinds:
        try:
            items = cluster.list(api_version, plural)
        except NotFoundError:
            continue  # not served (the CRD is not installed): nothing of that kind
        for item in items:
            # List items carry no kind/apiVersion (the list does): restore them for the rules.
            out.append({**item, "apiVersion": api_version, "kind": kind})
    return out


def gather_cluster(cluster: Any) -> tuple[list[dict[str, Any]], list[tuple[str, str]], list[str], list[str]]:
    """Objects read from the cluster, unavailable sources, the sources read, and the resource prefixes whose
    findings could not be judged this time (``secret/`` when TLS Secrets may not be read)."""
    objects: list[dict[str, Any]] = []
    unavailable: list[tuple[str, str]] = []
    read: list[str] = []
    unread: list[str] = []
    try:
        objects = _listed(cluster, CLUSTER_KINDS)
        read.append(CLUSTER)
    except PlatformError as error:
        unavailable.append((CLUSTER, f"{error.code}: {error}"))
        objects = []
    # Only the TLS Secrets that Ingresses and Gateways reference, one by one; the key is dropped at once.
    refs = sorted({ref for o in objects if o["kind"] in ("Ingress", "Gateway") for ref in r._tls_secret_refs(o)})
    try:
        for ns, name in refs:
            secret = cluster.get("v1", "secrets", name, ns)
            if secret is not None:
                data = {k: v for k, v in (secret.get("data") or {}).items() if k == "tls.crt"}
                objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": secret.get("metadata") or {},
                                "type": secret.get("type"), "data": data})
    except PlatformError as error:
        # Without the Secrets, certificate expiry cannot be judged (and "missing" would be a false finding).
        unavailable.append(("certificates", f"{error.code}: {error}"))
        unread.append("secret/")
    try:
        objects.extend(_listed(cluster, REPORT_KINDS))
        read.append(KYVERNO)
    except PlatformError as error:
        unavailable.append((KYVERNO, f"{error.code}: {error}"))
    return objects, unavailable, read, unread


# -- manifests (offline) -----------------------------------------------------------------------------------


def _documents(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict):
        if data.get("kind", "").endswith("List") and isinstance(data.get("items"), list):
            for item in data["items"]:
                yield from _documents(item)
        elif data.get("kind"):
            yield data


def _location(file: Path) -> str:
    """A relative path under the working directory (a SARIF ``uri`` against the checkout), else a file URI."""
    resolved = file.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_uri()


def read_manifests(paths: Sequence[str | Path]) -> list[tuple[str, dict[str, Any]]]:
    """``(file, object)`` from YAML/JSON files or folders (recursively), multi-document, ``*List`` expanded.
    A missing path or a file that does not parse is a BadInputError naming it."""
    import yaml

    from shared.errors import BadInputError

    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise BadInputError(f"--manifests: {path} does not exist")
    out = []
    for file in files:
        try:
            # libyaml's loader when PyYAML has it: rendered overlays run to megabytes.
            docs = list(yaml.load_all(file.read_text(encoding="utf-8"),
                                      Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise BadInputError(f"--manifests: {file} is not valid YAML: {exc}") from None
        location = _location(file)
        for doc in docs:
            out.extend((location, obj) for obj in _documents(doc))
    return out


def evaluate_located(located: Sequence[tuple[str, dict[str, Any]]], facts: r.PlatformFacts, now: dt.datetime,
                     source: str) -> list[Finding]:
    """Evaluate objects that come from files; each finding remembers the file its resource came from."""
    where: dict[str, str] = {}
    for location, obj in located:
        view = r.pod_view(obj)
        where.setdefault(view.resource if view else r.resource_name(obj), location)
        if obj.get("kind") == "Namespace":
            where.setdefault(f"namespace/{(obj.get('metadata') or {}).get('name')}", location)
    found = r.evaluate([obj for _, obj in located], facts, now, source=source, owned_by_controllers=False)
    out = []
    for f in found:
        loc = where.get(f.resource)
        if loc is None and f.resource.startswith("namespace/"):
            ns = f.resource.split("/", 1)[1]
            loc = next((w for res, w in where.items() if f"/{ns}/" in res), "")
        out.append(Finding(f.source, f.rule, f.severity, f.resource, f.message, f.remediation, loc or ""))
    return out


def scan_manifests(paths: Sequence[str | Path], *, env: str | None, now: dt.datetime,
                   config_dir: Path | str | None = None) -> ScanReport:
    """``platformctl scan --manifests``: no cluster, no settings, nothing stored. With ``env`` the platform
    rules that need platform.yaml (registry, serving workloads) apply; without it they are skipped."""
    facts = r.platform_facts(load_platform(env, config_dir)) if env else r.PlatformFacts()
    findings = dedupe(evaluate_located(read_manifests(paths), facts, now, GITOPS))
    exceptions = h.load_exceptions(exceptions_path(config_dir))
    reported = h.classify({}, findings, exceptions, env=env or "", now=now, scanned_sources=()).reported
    return ScanReport(env or "-", now, reported, (GITOPS,))


def render_gitops(env: str, root: Path = REPO_ROOT) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    """``kubectl kustomize gitops/<layer>/<env>`` for each layer; (located objects, unavailable)."""
    import yaml

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return [], [(GITOPS, "kubectl not found on PATH: the gitops overlays cannot be rendered")]
    located: list[tuple[str, dict[str, Any]]] = []
    for layer in GITOPS_LAYERS:
        overlay = root / "gitops" / layer / env
        if not overlay.is_dir():
            continue
        proc = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120,
                              check=False)
        if proc.returncode != 0:
            return [], [(GITOPS, f"kubectl kustomize gitops/{layer}/{env} failed: {proc.stderr.strip()[:300]}")]
        rel = f"gitops/{layer}/{env}"
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        located += [(rel, obj) for doc in yaml.load_all(proc.stdout, Loader=loader) for obj in _documents(doc)]
    return located, []


# -- checkov (IaC) -----------------------------------------------------------------------------------------

#: checkov reports no severity offline (it comes from the Prisma API); the platform's own ranking of the
#: checks that matter most for AKS and Key Vault (``reference/compliance.md``), the rest medium.
CHECKOV_HIGH = frozenset({"CKV_AZURE_6", "CKV_AZURE_7", "CKV_AZURE_115", "CKV_AZURE_116", "CKV_AZURE_117",
                          "CKV_AZURE_141", "CKV_AZURE_42", "CKV_AZURE_110", "CKV_AZURE_111", "CKV_AZURE_189"})


def checkov_executable(root: Path = REPO_ROOT) -> str | None:
    """The pinned checkov of ``make infra-check`` (``.venv-checkov``), else one on PATH."""
    pinned = root / ".venv-checkov" / "bin" / "checkov"
    return str(pinned) if pinned.exists() else shutil.which("checkov")


def checkov_command(executable: str, directory: Path) -> list[str]:
    """Offline (``--skip-download``), inline ``checkov:skip`` comments honoured (checkov's default)."""
    return [executable, "--directory", str(directory), "--framework", "terraform", "secrets", "--skip-download",
            "--compact", "--output", "json", "--skip-path", r"\.terraform"]


def checkov_findings(report: Any, base: str = "infra") -> list[Finding]:
    """Failed checks of checkov's JSON output (one report or a list, one per framework) as findings."""
    reports = report if isinstance(report, list) else [report]
    out = []
    for rep in reports:
        if not isinstance(rep, Mapping):
            continue
        for check in (rep.get("results") or {}).get("failed_checks") or ():
            severity = str(check.get("severity") or "").lower()
            if severity not in (CRITICAL, HIGH, MEDIUM, LOW, INFO):
                severity = HIGH if check.get("check_id") in CHECKOV_HIGH else MEDIUM
            file_path = str(check.get("file_path") or "").lstrip("/")
            lines = check.get("file_line_range") or [0]
            location = f"{base}/{file_path}" if file_path else base
            out.append(Finding(CHECKOV, str(check.get("check_id")), severity,
                               f"{location}:{check.get('resource')}",
                               f"{check.get('check_name') or check.get('check_id')}"[:1500],
                               str(check.get("guideline") or "fix the resource, or skip the check inline with "
                                   "`# checkov:skip=<ID>:<reason>`"),
                               f"{location}#L{lines[0]}" if lines and lines[0] else location))
    return out


def run_checkov(root: Path = REPO_ROOT, timeout: int = 900) -> tuple[list[Finding], list[tuple[str, str]]]:
    executable = checkov_executable(root)
    if executable is None:
        return [], [(CHECKOV, "checkov is not installed: `make .venv-checkov/.installed` (see infra/infra.mk)")]
    proc = subprocess.run(checkov_command(executable, root / "infra"), capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    if proc.returncode not in (0, 1):
        return [], [(CHECKOV, f"checkov exited {proc.returncode}: {proc.stderr.strip()[-300:]}")]
    try:
        return checkov_findings(json.loads(proc.stdout)), []
    except ValueError:
        return [], [(CHECKOV, "checkov printed no JSON report")]


# -- the scan ------------------------------------------------------------------------------------------------


def _stored_rows(storage: Any, env: str) -> dict[str, dict[str, Any]]:
    from shared.state import from_table_key, table_key

    rows = storage.query(h.FINDINGS_TABLE, "PartitionKey eq @pk", {"pk": table_key(env)})
    return {from_table_key(row["RowKey"]): row for row in rows if from_table_key(row["RowKey"]) != h.SCAN_ROW}


def _write_rows(storage: Any, env: str, rows: Mapping[str, dict[str, Any]], meta: dict[str, Any]) -> None:
    """The changed findings and the scan row, in entity group transactions (a few requests per scan)."""
    from shared.state import table_key

    entities = []
    for fid, row in [*rows.items(), (h.SCAN_ROW, meta)]:
        entity = {k: v for k, v in row.items() if not k.startswith("_") and k != "Timestamp"}
        entity.update(PartitionKey=table_key(env), RowKey=table_key(fid))
        entities.append(entity)
    storage.upsert_batch(h.FINDINGS_TABLE, entities)


def run_scan(ctx: Any, *, env: str, now: dt.datetime, gitops: bool = False, iac: bool = False,
             pools: bool = True, record: bool = True, notify: bool = True,
             actor: str = "compliance_scan") -> ScanReport:
    """Scan ``env`` (the context's environment): cluster, Kyverno and (``pools``) the AKS agent pools through ARM
    always; ``gitops``/``iac`` on request."""
    if env != ctx.platform.name:
        raise ConfigError([f"this app manages {ctx.platform.name}, not {env}: run the scan with --env "
                           f"{ctx.platform.name} or settings for {env}"])
    config_dir = ctx.settings.config_dir
    facts = r.platform_facts(load_platform(env, config_dir))
    exceptions = h.load_exceptions(exceptions_path(config_dir))
    objects, unavailable, read, unread = gather_cluster(ctx.cluster)
    findings: list[Finding] = [f for f in r.evaluate(objects, facts, now, source=CLUSTER)
                               if not any(f.resource.startswith(prefix) for prefix in unread)]
    if pools:
        try:
            findings += r.pool_findings(ctx.node_pools.list(), facts)
        except PlatformError as error:
            unavailable.append(("arm", f"{error.code}: {error}"))
            unread.append("nodepool/")
    if gitops:
        located, missing = render_gitops(env)
        unavailable += missing
        if not missing:
            findings += evaluate_located(located, facts, now, GITOPS)
            read.append(GITOPS)
    if iac:
        found, missing = run_checkov()
        unavailable += missing
        if not missing:
            findings += found
            read.append(CHECKOV)
    findings += h.expired_exception_findings(exceptions, env, now)
    read.append(EXCEPTION)
    findings = dedupe(findings)
    stored = _stored_rows(ctx.storage, env)  # read even with record=False: statuses say what is new
    classified = h.classify(stored, findings, exceptions, env=env, now=now, scanned_sources=read,
                            unread_resources=unread)
    report = ScanReport(env, now, classified.reported, tuple(read), tuple(unavailable))
    if record:
        # Alert before recording: a write that fails makes the next scan alert again (at least once, never lost).
        alert_new_high(ctx, report, notify=notify)
        _write_rows(ctx.storage, env, classified.rows,
                    {"scanned_at": iso(now), "sources": ",".join(read),
                     "unavailable": json.dumps(unavailable)[:4000]})
        ctx.state.audit(actor=actor, action="compliance_scan", target=f"compliance/{env}",
                        reason="scheduled or requested compliance scan", outcome="succeeded",
                        inputs={"sources": read, "unavailable": [s for s, _ in unavailable],
                                "summary": report.summary()})
    return report


def alert_new_high(ctx: Any, report: ScanReport, *, notify: bool = True) -> list[ReportedFinding]:
    """New high/critical findings: one ERROR log line each (the Azure Monitor alert fires on the code), and the
    chat summary posted once when ``chat_notify`` exists and a channel is configured."""
    fresh = [f for f in report.findings if f.status == NEW and f.finding.severity in BLOCKING_SEVERITIES]
    for item in fresh:
        f = item.finding
        log.error("%s: %s %s %s on %s: %s", CODE_NEW_HIGH, report.env, f.severity, f.rule, f.resource, f.message,
                  extra={"code": CODE_NEW_HIGH, "env": report.env, "finding": f.id, "rule": f.rule,
                         "severity": f.severity, "resource": f.resource, "source": f.source})
    if fresh and notify:
        try:
            from shared.services import chat_notify  # type: ignore[attr-defined]
        except ImportError:
            chat_notify = None
        if chat_notify is not None:
            try:
                chat_notify.post(ctx, report.chat_summary(), env=report.env)
            except Exception:  # a chat outage must not fail the scan; logged
                log.warning("compliance: posting the chat summary failed", exc_info=True)
    return fresh


def last_scan(ctx: Any, *, env: str) -> ScanReport | None:
    """The last recorded scan of ``env``, rebuilt from the table; None before the first."""
    from shared.state import table_key

    meta = ctx.storage.get(h.FINDINGS_TABLE, table_key(env), table_key(h.SCAN_ROW))
    if meta is None or not meta.get("scanned_at"):
        return None
    scanned_at = parse_iso(meta["scanned_at"])
    rows = _stored_rows(ctx.storage, env)
    try:
        unavailable = tuple(tuple(x) for x in json.loads(meta.get("unavailable") or "[]"))
    except ValueError:
        unavailable = ()
    return ScanReport(env, scanned_at, h.report_from_rows(rows, scanned_at),
                      tuple(s for s in str(meta.get("sources") or "").split(",") if s), unavailable)  # type: ignore[arg-type]


# -- SARIF 2.1.0 ------------------------------------------------------------------------------------------------

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVELS = {CRITICAL: "error", HIGH: "error", MEDIUM: "warning", LOW: "note", INFO: "note"}
_BASELINE = {NEW: "new", "persisting": "unchanged", FIXED: "absent", "excepted": "unchanged"}


def sarif(report: ScanReport) -> dict[str, Any]:
    """The report as one SARIF 2.1.0 run. Fixed findings are ``baselineState: absent``; excepted ones carry an
    external suppression with the exception's owner and reason."""
    from shared import __version__

    known = {rule.id: rule for rule in r.rules_table()}
    rule_ids = sorted({item.finding.rule for item in report.findings})
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    descriptors = []
    for rule_id in rule_ids:
        rule = known.get(rule_id)
        descriptor: dict[str, Any] = {"id": rule_id, "shortDescription": {"text": rule.title if rule else rule_id}}
        if rule is not None:
            descriptor["help"] = {"text": rule.remediation}
            descriptor["properties"] = {"severity": rule.severity, "profile": rule.profile or "platform"}
            if rule.source.startswith("http"):
                descriptor["helpUri"] = rule.source
        descriptors.append(descriptor)
    results = []
    for item in report.findings:
        f = item.finding
        result: dict[str, Any] = {
            "ruleId": f.rule, "ruleIndex": index[f.rule], "level": _LEVELS.get(f.severity, "warning"),
            "message": {"text": f"{f.resource}: {f.message}"},
            "baselineState": _BASELINE.get(item.status, "new"),
            "partialFingerprints": {"platformCoreFindingId/v1": f.id},
            "properties": {"source": f.source, "severity": f.severity, "resource": f.resource, "status": item.status,
                           "first_seen": iso(item.first_seen), "last_seen": iso(item.last_seen),
                           "remediation": f.remediation},
        }
        if f.location:
            path, _, line = f.location.partition("#L")
            physical: dict[str, Any] = {"artifactLocation": {"uri": path, "uriBaseId": "REPO_ROOT"}}
            if line.isdigit() and int(line) > 0:
                physical["region"] = {"startLine": int(line)}
            result["locations"] = [{"physicalLocation": physical,
                                    "logicalLocations": [{"fullyQualifiedName": f.resource}]}]
        else:
            result["locations"] = [{"logicalLocations": [{"fullyQualifiedName": f.resource}]}]
        if item.status == "excepted":
            result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": item.exception}]
        results.append(result)
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "platform-core-compliance", "version": __version__,
                            "informationUri": "https://gitlab.example.com/platform/platform-core",
                            "rules": descriptors}},
        "originalUriBaseIds": {"REPO_ROOT": {"description": {"text": "the platform-core repository root"}}},
        "invocations": [{"executionSuccessful": not report.unavailable,
                         "endTimeUtc": iso(report.scanned_at),
                         "toolExecutionNotifications": [{"level": "warning", "message": {"text": f"{s}: {e}"}}
                                                        for s, e in report.unavailable]}],
        "properties": {"env": report.env, "summary": report.summary()},
        "results": results,
    }]}


__all__ = ["ScanReport", "last_scan", "run_scan", "sarif", "scan_manifests", "without_history"]
