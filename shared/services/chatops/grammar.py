"""The command language Slack and Teams share. Pure: text in, a ``Command`` or a ``CommandError`` out.

    help
    status [env]                          certs [env]            drift [env]          scan [env]
    scale <env> <pool> <n>|auto [for <duration>]
    rotate <env> <cert>                   drift mr <env>
    pause autoscaling <env>               resume autoscaling <env>
    audit <target>                        approve <id>

Words are separated by blanks; case does not matter except in names (pools, certificates, targets).
Environments are named in full (``dev-uaenorth``): a mutating command always names its environment, so a
change is never made to an environment by default. Durations: ``30m``, ``2h``, ``1d`` (at most a day).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shared.errors import BadInputError
from shared.platform import ENVIRONMENTS

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
#: An override from chat lasts this long unless ``for <duration>`` says otherwise; never longer than the cap.
DEFAULT_OVERRIDE_SECONDS = 3600
MAX_OVERRIDE_SECONDS = 86400
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}$")
_APPROVAL_ID = re.compile(r"^[a-z0-9]{6,32}$")


@dataclass(frozen=True)
class Verb:
    usage: str
    summary: str
    #: The least role that may run it (None: anyone known, e.g. help).
    role: str | None
    #: Changes the platform: needs an operator, and a second operator's approval where the access file says.
    mutating: bool = False
    #: Answered at once (cheap, no external call) rather than through the queue.
    inline: bool = False


VERBS: dict[str, Verb] = {
    "help": Verb("help", "this list", None, inline=True),
    "status": Verb("status [env]", "cluster, GPU pools, certificates, open drift, last scan", VIEWER),
    "scale": Verb("scale <env> <pool> <n>|auto [for <duration>]",
                  "pin a GPU pool at n nodes for a while (within its bounds), or hand it back to the policy",
                  OPERATOR, mutating=True),
    "certs": Verb("certs [env]", "origin certificates: days left and what the rotation will do", VIEWER),
    "rotate": Verb("rotate <env> <cert>", "check one certificate now and rotate it when due", OPERATOR,
                   mutating=True),
    "drift": Verb("drift [env]", "what differs between git and the live platform", VIEWER),
    "drift mr": Verb("drift mr <env>", "open or update the merge request adopting the drift in git", OPERATOR,
                     mutating=True),
    "scan": Verb("scan [env]", "run the compliance scan and summarise its findings", VIEWER),
    "pause autoscaling": Verb("pause autoscaling <env>", "stop GPU autoscaling in an environment (kill switch)",
                              OPERATOR, mutating=True),
    "resume autoscaling": Verb("resume autoscaling <env>", "let GPU autoscaling act again", OPERATOR,
                               mutating=True),
    "audit": Verb("audit <target>", "the newest audit records for a target, and whether its chain verifies",
                  VIEWER),
    "approve": Verb("approve <id>", "approve a production change another operator asked for", OPERATOR),
}


@dataclass(frozen=True)
class Command:
    verb: str  # a key of VERBS
    env: str
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def spec(self) -> Verb:
        return VERBS[self.verb]

    def describe(self) -> str:
        """The command as a person would type it (for approvals and the audit trail)."""
        return self.text


class CommandError(BadInputError):
    """The text is not a command: the message says what is wrong and how it is written."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=400, code="UnknownCommand")


def help_text(env: str) -> str:
    width = max(len(v.usage) for v in VERBS.values())
    lines = [f"Commands (this bot manages {env}; env defaults to it where optional):"]
    lines += [f"  {v.usage:<{width}}  {v.summary}" for v in VERBS.values()]
    lines.append("Durations: 30m, 2h, 1d (at most 1d). Production changes wait for a second operator's approval.")
    return "\n".join(lines)


def parse(text: str, *, default_env: str) -> Command:
    """Parse one command; ``CommandError`` with the usage for anything unknown or malformed."""
    normalized = " ".join((text or "").split())
    words = normalized.split(" ") if normalized else []
    if not words or words[0].lower() in ("help", "?", "-h", "--help"):
        if len(words) > 1:
            raise CommandError(f"help takes no arguments. Usage: {VERBS['help'].usage}")
        return Command("help", default_env, {}, "help")
    head = words[0].lower()
    rest = words[1:]
    if head == "drift" and rest and rest[0].lower() == "mr":
        return _one_env("drift mr", rest[1:], normalized, required=True, default_env=default_env)
    if head in ("pause", "resume"):
        verb = f"{head} autoscaling"
        if not rest or rest[0].lower() != "autoscaling":
            raise CommandError(f"{head} what? Usage: {VERBS[verb].usage}")
        return _one_env(verb, rest[1:], normalized, required=True, default_env=default_env)
    if head in ("status", "certs", "drift", "scan"):
        return _one_env(head, rest, normalized, required=False, default_env=default_env)
    if head == "scale":
        return _scale(rest, normalized)
    if head == "rotate":
        if len(rest) != 2:
            raise CommandError(f"rotate needs an environment and a certificate. Usage: {VERBS['rotate'].usage}")
        env = _env(rest[0], "rotate")
        return Command("rotate", env, {"certificate": _name(rest[1], "certificate", "rotate")}, normalized)
    if head == "audit":
        if len(rest) != 1 or not _TARGET.match(rest[0]):
            raise CommandError(f"audit needs one target such as nodepool/dev-uaenorth/h100. "
                               f"Usage: {VERBS['audit'].usage}")
        return Command("audit", default_env, {"target": rest[0]}, normalized)
    if head == "approve":
        if len(rest) != 1 or not _APPROVAL_ID.match(rest[0].lower()):
            raise CommandError(f"approve needs the request id shown with the request. Usage: {VERBS['approve'].usage}")
        return Command("approve", default_env, {"id": rest[0].lower()}, normalized)
    raise CommandError(f"unknown command {words[0]!r}. Try `help`.")


def _one_env(verb: str, rest: list[str], text: str, *, required: bool, default_env: str) -> Command:
    if len(rest) > 1 or (required and not rest):
        raise CommandError(f"{verb} takes {'an environment' if required else 'at most an environment'}. "
                           f"Usage: {VERBS[verb].usage}")
    env = _env(rest[0], verb) if rest else default_env
    return Command(verb, env, {}, text)


def _scale(rest: list[str], text: str) -> Command:
    usage = f"Usage: {VERBS['scale'].usage}"
    if len(rest) not in (3, 5):
        raise CommandError(f"scale needs an environment, a pool and a node count or auto. {usage}")
    env = _env(rest[0], "scale")
    pool = _name(rest[1], "pool", "scale")
    raw = rest[2].lower()
    if raw == "auto":
        count: int | None = None
    elif raw.isdigit() and len(raw) <= 4:
        count = int(raw)
    else:
        raise CommandError(f"scale: {rest[2]!r} is not a node count or auto. {usage}")
    seconds = DEFAULT_OVERRIDE_SECONDS
    if len(rest) == 5:
        if rest[3].lower() != "for":
            raise CommandError(f"scale: expected `for <duration>` after the count. {usage}")
        if count is None:
            raise CommandError("scale ... auto hands the pool back to the policy at once: it takes no duration")
        seconds = parse_duration(rest[4])
    return Command("scale", env, {"pool": pool, "count": count, "seconds": seconds}, text)


def parse_duration(text: str) -> int:
    units = {"m": 60, "h": 3600, "d": 86400}
    t = text.lower()
    if len(t) >= 2 and t[:-1].isdigit() and t[-1] in units and int(t[:-1]) > 0:
        seconds = int(t[:-1]) * units[t[-1]]
        if seconds <= MAX_OVERRIDE_SECONDS:
            return seconds
        raise CommandError(f"{text}: an override from chat lasts at most 1d")
    raise CommandError(f"{text!r} is not a duration: use 30m, 2h or 1d")


def _env(word: str, verb: str) -> str:
    env = word.lower()
    if env not in ENVIRONMENTS:
        raise CommandError(f"{verb}: {word!r} is not an environment ({', '.join(ENVIRONMENTS)}). "
                           f"Usage: {VERBS[verb].usage}")
    return env


def _name(word: str, what: str, verb: str) -> str:
    if not _NAME.match(word):
        raise CommandError(f"{verb}: {word!r} is not a {what} name. Usage: {VERBS[verb].usage}")
    return word
