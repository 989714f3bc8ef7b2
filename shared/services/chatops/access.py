"""Who may do what in chat, per environment: one file in git (``infra/chatops-access.yaml``), deny by default.

Principals are chat identities as the chats send them: ``slack:<team_id>/<user_id>`` (a Slack user is only
unique within its workspace) and ``teams:<AAD object id>``. Groups are named lists of principals in the
same file (Slack slash commands carry no group membership; Teams outgoing webhooks neither). A grant gives
a principal or ``group:<name>`` a role in some environments (``"*"``: all); a principal's role in an
environment is the highest it is granted there. Roles nest: admin ⊇ operator ⊇ viewer.

``approval_required`` lists the environments whose mutating commands wait for a second operator.

Pure apart from ``load`` (which reads and caches the file by modification time). ``validate`` lists every
problem at once, with the file's path, as ``ConfigError``; a broken file therefore denies everything.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.errors import ConfigError
from shared.platform import APP_ROOT, ENVIRONMENTS
from shared.services.chatops.grammar import ROLES

DEFAULT_ACCESS_FILE = APP_ROOT / "infra" / "chatops-access.yaml"
_PRINCIPAL = re.compile(r"^(slack:[A-Z0-9]{2,20}/[A-Z0-9]{2,20}|teams:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
                        r"[0-9a-f]{4}-[0-9a-f]{12})$")
_GROUP = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Grant:
    who: str  # a principal or group:<name>
    role: str
    environments: tuple[str, ...]  # ("*",) for all


@dataclass(frozen=True)
class AccessPolicy:
    groups: dict[str, frozenset[str]]
    grants: tuple[Grant, ...]
    approval_required: frozenset[str]
    source: str = ""

    def role_of(self, principal: str, env: str) -> str | None:
        """The highest role ``principal`` holds in ``env``; None: no access (deny by default)."""
        mine = {f"group:{g}" for g, members in self.groups.items() if principal in members} | {principal}
        held = [g.role for g in self.grants if g.who in mine and ("*" in g.environments or env in g.environments)]
        return max(held, key=ROLES.index) if held else None

    def known(self, principal: str) -> bool:
        """Whether the principal holds any role anywhere (unknown users get the polite refusal)."""
        return any(self.role_of(principal, env) for env in ENVIRONMENTS)

    def needs_approval(self, env: str) -> bool:
        return env in self.approval_required


def allows(role: str | None, needed: str | None) -> bool:
    """Whether ``role`` is at least ``needed`` (None needed: any known user)."""
    if needed is None:
        return True
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def validate(raw: Any, source: str = "chatops-access.yaml") -> AccessPolicy:
    """The policy from the parsed YAML, or ``ConfigError`` listing every problem."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: expected a mapping with groups, grants and approval_required"])
    unknown = set(raw) - {"version", "groups", "grants", "approval_required"}
    if unknown:
        problems.append(f"{source}: unknown keys {sorted(unknown)}")
    if raw.get("version") != 1:
        problems.append(f"{source}: version: expected 1")
    groups: dict[str, frozenset[str]] = {}
    for name, members in (raw.get("groups") or {}).items():
        if not isinstance(name, str) or not _GROUP.match(name):
            problems.append(f"{source}: groups: {name!r} is not a group name (lower-case letters, digits, hyphens)")
            continue
        if not isinstance(members, list):
            problems.append(f"{source}: groups.{name}: expected a list of principals")
            continue
        for m in members:
            if not isinstance(m, str) or not _PRINCIPAL.match(m):
                problems.append(f"{source}: groups.{name}: {m!r} is not slack:<team>/<user> or teams:<aad object id>")
        groups[name] = frozenset(m for m in members if isinstance(m, str))
    grants: list[Grant] = []
    for i, g in enumerate(raw.get("grants") or []):
        where = f"{source}: grants[{i}]"
        if not isinstance(g, dict) or set(g) != {"who", "role", "environments"}:
            problems.append(f"{where}: expected exactly who, role and environments")
            continue
        who, role, envs = g["who"], g["role"], g["environments"]
        if isinstance(who, str) and who.startswith("group:"):
            if who[6:] not in groups:
                problems.append(f"{where}: {who} is not defined under groups")
        elif not isinstance(who, str) or not _PRINCIPAL.match(who):
            problems.append(f"{where}: who {who!r} is not group:<name>, slack:<team>/<user> or teams:<aad object id>")
        if role not in ROLES:
            problems.append(f"{where}: role {role!r}: expected one of {', '.join(ROLES)}")
        if not isinstance(envs, list) or not envs or any(e != "*" and e not in ENVIRONMENTS for e in envs):
            problems.append(f"{where}: environments: expected a list of {', '.join(ENVIRONMENTS)} or \"*\"")
            continue
        grants.append(Grant(str(who), str(role), tuple(envs)))
    approval = raw.get("approval_required") or []
    if not isinstance(approval, list) or any(e not in ENVIRONMENTS for e in approval):
        problems.append(f"{source}: approval_required: expected a list of {', '.join(ENVIRONMENTS)}")
        approval = []
    if problems:
        raise ConfigError(problems)
    return AccessPolicy(groups, tuple(grants), frozenset(approval), source)


_cache: dict[Path, tuple[float, AccessPolicy]] = {}
_lock = threading.Lock()


def load(path: Path | None = None) -> AccessPolicy:
    """The policy in ``path`` (default: the file in git), re-read when the file changes."""
    path = Path(path or DEFAULT_ACCESS_FILE)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise ConfigError([f"chat access file {path} is missing: nobody may use the chat commands"]) from None
    with _lock:
        cached = _cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not YAML: {exc}"]) from None
    policy = validate(raw, str(path))
    with _lock:
        _cache[path] = (mtime, policy)
    return policy
