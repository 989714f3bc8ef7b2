"""What this repository declares, read from its files, so that the sandbox is the estate Azure gets.

- ``flux_objects(env)``: the Flux objects a cluster of that environment holds. The GitRepository and the
  root Kustomization come from ``infra/modules/aks/flux.tf`` (``azurerm_kubernetes_flux_configuration``:
  the AKS Flux extension names the GitRepository after the configuration and each Kustomization
  ``<configuration>-<kustomization>``), with ``var.flux`` resolved the way ``infra/modules/platform``
  passes it from ``platform.yaml``; the Kustomizations it applies come from ``gitops/clusters/<env>/*.yaml``;
  what each Kustomization applies (its inventory, HelmRepositories, HelmReleases, Deployments,
  Namespaces) comes from walking the kustomize tree at its ``spec.path`` (``resources`` only: patches are
  not applied, so objects carry their base spec).
- ``repository_files()``: the ``gitops/`` and ``infra/`` trees, as the GitLab project holds them.

Nothing is hard-coded: rename a Kustomization, a path or the Flux configuration and the sandbox follows
(and ``tests/integration/test_emulators.py`` checks the seeds against these files). python-hcl2 is a dev
dependency: this module is local tooling (``shared/local`` is not deployed) and imports it lazily.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
FLUX_TF = Path("infra/modules/aks/flux.tf")
FLUX_VARIABLES_TF = Path("infra/modules/aks/variables.tf")
PLATFORM_MODULE_TF = Path("infra/modules/platform/main.tf")
SEEDED_TREES = ("gitops", "infra")
FLUX_NAMESPACE_DEFAULT = "flux-system"

GITREPOSITORY = ("source.toolkit.fluxcd.io/v1", "gitrepositories")
KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/v1", "kustomizations")
#: Kinds kustomize never puts in a namespace (its built-in list, plus the cluster-scoped CRDs used here).
CLUSTER_SCOPED = frozenset({
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
    "StorageClass", "IngressClass", "PersistentVolume", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "ClusterIssuer", "ClusterPolicy", "ClusterSecretStore",
    "ClusterExternalSecret", "GatewayClass", "ValidatingPolicy", "MutatingPolicy", "GeneratingPolicy",
    "DeletingPolicy", "ImageValidatingPolicy", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
})


@dataclass(frozen=True)
class Declared:
    """One object as the repository declares it, with what its Kustomization applies (if it is one)."""

    api_version: str
    kind: str
    body: dict[str, Any]
    #: For a Kustomization: every object its path builds, as (namespace, name, group, kind).
    inventory: tuple[tuple[str, str, str, str], ...] = ()
    #: For a Kustomization: the objects its path builds, as declared (base specs, patches not applied).
    applies: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"].get("namespace", ""))


def _hcl(path: Path, *headers: str) -> dict[str, Any]:
    """A .tf file parsed with python-hcl2; with ``headers`` (regexes such as ``variable "flux"``), only those
    top-level blocks, cut out of the text first: parsing a whole module costs seconds."""
    import hcl2  # dev dependency (requirements-dev.txt): the sandbox runs from the dev venv only

    text = path.read_text(encoding="utf-8")
    if headers:
        text = "\n".join(_block_text(text, header) for header in headers)
    return hcl2.loads(text, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True,
                                                                           explicit_blocks=False))


def _block_text(text: str, header: str) -> str:
    """The text of the first top-level block whose first line matches ``header``, braces balanced."""
    match = re.search(rf"^{header}\s*\{{", text, re.MULTILINE)
    if match is None:
        return ""
    depth = 0
    for index in range(match.end() - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[match.start():index + 1]
    return text[match.start():]


def _blocks(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """{label: body} of every block of a kind (``resource`` blocks keyed by "type.name")."""
    out: dict[str, dict[str, Any]] = {}
    for entry in doc.get(kind, []):
        for label, body in entry.items():
            if kind == "resource":
                for name, inner in body.items():
                    out[f"{label}.{name}"] = inner
            else:
                out[label] = body
    return out


class _Terraform:
    """Just enough HCL evaluation to resolve ``var.flux.*`` as infra/modules/platform sets it."""

    _REF = re.compile(r"\$\{([^{}]*)\}")

    def __init__(self, root: Path, env: str) -> None:
        import yaml

        self.platform = yaml.safe_load((root / "infra" / "envs" / env / "platform.yaml").read_text())
        # infra/modules/platform reads the file as var.platform; the environment name is its folder.
        module = _hcl(root / PLATFORM_MODULE_TF, "locals", r'module\s+"[^"]+"')
        self.locals: dict[str, Any] = {}
        for entry in module.get("locals", []):
            self.locals.update(entry)
        aks = next((body for label, body in _blocks(module, "module").items()
                    if str(body.get("source", "")).rstrip("/").endswith("/aks")), None)
        if aks is None:  # not the first module block: cut out every module block and look again
            blocks = re.findall(r'^module\s+"[^"]+"', (root / PLATFORM_MODULE_TF).read_text(), re.MULTILINE)
            module = _hcl(root / PLATFORM_MODULE_TF, *(re.escape(b) for b in blocks))
            aks = next(body for label, body in _blocks(module, "module").items()
                       if str(body.get("source", "")).rstrip("/").endswith("/aks"))
        self.flux_given: dict[str, Any] = dict(aks.get("flux") or {})
        variables = _hcl(root / FLUX_VARIABLES_TF, r'variable\s+"flux"')
        self.flux_type = str(_blocks(variables, "variable")["flux"].get("type", ""))

    def flux(self, key: str) -> Any:
        if key in self.flux_given:
            return self.evaluate(self.flux_given[key])
        default = re.search(rf"\b{key}\s*=\s*optional\([^,()]+,\s*([^()]+?)\)", self.flux_type)
        if default is None:
            return None
        value = default.group(1).strip().strip('"')
        return int(value) if value.isdigit() else value

    def evaluate(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        whole = self._REF.fullmatch(value)
        if whole:
            return self._expression(whole.group(1).strip())
        return self._REF.sub(lambda m: str(self._expression(m.group(1).strip())), value)

    def _expression(self, text: str) -> Any:
        call = re.fullmatch(r'trimsuffix\((.+),\s*"([^"]*)"\)', text)
        if call:
            return str(self._expression(call.group(1).strip())).removesuffix(call.group(2))
        if text.startswith("local.p."):
            node: Any = self.platform
            for part in text.removeprefix("local.p.").split("."):
                node = node[part]
            return node
        if text.startswith("local."):
            return self.evaluate(self.locals[text.removeprefix("local.")])
        if text.startswith("var.flux."):
            return self.flux(text.removeprefix("var.flux."))
        raise ValueError(f"cannot evaluate {text!r} here")


def _interval(seconds: Any) -> str:
    """Flux's duration form for a number of seconds (120 -> '2m0s')."""
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{rest}s"


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def kustomize_resources(root: Path, path: str) -> list[dict[str, Any]]:
    """Every object a kustomize folder lists under ``resources`` (recursively), namespace overrides applied."""
    import yaml

    folder = (root / path).resolve()
    kustomization = next((folder / n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")
                          if (folder / n).exists()), None)
    if kustomization is None:
        return []
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ten times faster
    spec = yaml.load(kustomization.read_text(), Loader=loader) or {}  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)  # nosec B506
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources") or []:
        if "://" in str(entry):
            continue  # a remote base: not in this repository
        target = (folder / entry).resolve()
        if target.is_dir():
            objects.extend(kustomize_resources(root, str(target.relative_to(root))))
        elif target.is_file():
            objects.extend(d for d in yaml.load_all(target.read_text(), Loader=loader)
                           if isinstance(d, dict) and d.get("kind"))
    namespace = spec.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = namespace
    return objects


def _inventory(objects: list[dict[str, Any]]) -> tuple[tuple[str, str, str, str], ...]:
    return tuple((o["metadata"].get("namespace", ""), o["metadata"]["name"], _group(o["apiVersion"]), o["kind"])
                 for o in objects)


def flux_objects(env: str, root: Path = REPO_ROOT) -> list[Declared]:
    """The GitRepository and Kustomizations a cluster of ``env`` holds, root first, as declared."""
    import copy

    return copy.deepcopy(_flux_objects(env, Path(root).resolve()))


@functools.lru_cache(maxsize=8)
def _flux_objects(env: str, root: Path) -> list[Declared]:
    import yaml

    terraform = _Terraform(root, env)
    configs = [body for label, body in _blocks(_hcl(root / FLUX_TF), "resource").items()
               if label.startswith("azurerm_kubernetes_flux_configuration.")]
    out: list[Declared] = []
    for config in configs:
        name = terraform.evaluate(config["name"])
        namespace = terraform.evaluate(config.get("namespace") or FLUX_NAMESPACE_DEFAULT)
        git = (config.get("git_repository") or [{}])[0]
        source_spec: dict[str, Any] = {
            "url": terraform.evaluate(git["url"]),
            "ref": {terraform.evaluate(git.get("reference_type", "branch")):
                    terraform.evaluate(git["reference_value"])},
            "interval": _interval(terraform.evaluate(git.get("sync_interval_in_seconds", 600))),
            "timeout": f"{int(terraform.evaluate(git.get('timeout_in_seconds', 600)))}s",
        }
        secret = terraform.evaluate(git.get("local_auth_reference"))
        if secret:
            source_spec["secretRef"] = {"name": secret}
        out.append(Declared(GITREPOSITORY[0], "GitRepository",
                            {"metadata": {"name": name, "namespace": namespace}, "spec": source_spec}))
        source_ref = {"kind": "GitRepository", "name": name}
        for k in config.get("kustomizations") or []:
            path = str(terraform.evaluate(k.get("path", "./")))
            spec = {"interval": _interval(terraform.evaluate(k.get("sync_interval_in_seconds", 600))),
                    "path": "./" + path.removeprefix("./"), "prune": bool(k.get("garbage_collection_enabled")),
                    "sourceRef": source_ref, "force": bool(k.get("recreating_enabled", False))}
            flux_group = _group(KUSTOMIZATION[0])
            children = [d for d in kustomize_resources(root, path)
                        if d.get("kind") == "Kustomization" and _group(d.get("apiVersion", "")) == flux_group]
            # The AKS extension names each Kustomization "<configuration>-<kustomization>".
            root_name = f"{name}-{terraform.evaluate(k['name'])}"
            root_ks = Declared(KUSTOMIZATION[0], "Kustomization",
                               {"metadata": {"name": root_name, "namespace": namespace}, "spec": spec},
                               inventory=_inventory(children), applies=tuple(children))
            out.append(root_ks)
            for child in children:
                body = yaml.safe_load(yaml.safe_dump(child))  # a private copy
                body["metadata"].setdefault("namespace", namespace)
                applied = kustomize_resources(root, str(body["spec"]["path"]).removeprefix("./"))
                out.append(Declared(body["apiVersion"], "Kustomization", body,
                                    inventory=_inventory(applied), applies=tuple(applied)))
    return out


def repository_files(root: Path = REPO_ROOT, trees: tuple[str, ...] = SEEDED_TREES) -> dict[str, str]:
    """Every text file git would hold under these trees (ignored and binary files left out), by path."""
    import subprocess

    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "--", *trees],
                                capture_output=True, text=True, check=True, timeout=30).stdout.split("\n")
        paths = sorted(p for p in listed if p and (root / p).is_file())
    except (OSError, subprocess.SubprocessError):
        paths = sorted(str(p.relative_to(root)) for t in trees for p in (root / t).rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    files: dict[str, str] = {}
    for path in paths:
        try:
            files[path] = (root / path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary content is not served by the emulator's text API
    return files


@dataclass(frozen=True)
class DeclaredPool:
    """A non-GPU agent pool as ``infra/modules/aks`` makes it from ``platform.yaml``'s ``cluster`` section
    (``cluster.tf``'s ``default_node_pool`` and ``node_pools.tf``'s ``cpu``): both autoscaled between the
    file's bounds, across ``cluster.zones``, AzureLinux on ephemeral OS disks. The system pool is tainted
    ``CriticalAddonsOnly`` (``only_critical_addons_enabled``); the CPU pool carries ``<prefix>/workload:
    general``. ``tests/integration/test_emulators.py`` checks this shape against the Terraform."""

    name: str
    mode: str                       # System | User
    vm_size: str
    min_count: int
    max_count: int
    zones: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[str, ...] = ()


SYSTEM_TAINT = "CriticalAddonsOnly=true:NoSchedule"


def cluster_pools(env: str, root: Path = REPO_ROOT) -> tuple[DeclaredPool, ...]:
    """The system and CPU pools ``infra/envs/<env>/platform.yaml`` declares (empty if there is no such file)."""
    import yaml

    path = root / "infra" / "envs" / env / "platform.yaml"
    if not path.is_file():
        return ()
    cluster = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("cluster") or {}
    zones = tuple(str(z) for z in cluster.get("zones") or ())
    prefix = str(cluster.get("node_label_prefix") or "")
    pools = []
    system = cluster.get("system_pool") or {}
    if system:
        pools.append(DeclaredPool("system", "System", str(system["vm_size"]), int(system["min_count"]),
                                  int(system["max_count"]), zones, taints=(SYSTEM_TAINT,)))
    cpu = cluster.get("cpu_pool") or {}
    if cpu:
        pools.append(DeclaredPool("cpu", "User", str(cpu["vm_size"]), int(cpu["min_count"]), int(cpu["max_count"]),
                                  zones, labels=((f"{prefix}/workload", "general"),) if prefix else ()))
    return tuple(pools)
