"""Propose a git change the same way for every capability: drift adoption, a pool's bounds, a scaling
parameter, an image tag, a Kubernetes version bump.

The shape (like Renovate's), whatever the capability:

- one fixed branch per environment and topic: ``platform-bot/<topic>/<env>``;
- one fresh commit on the current default branch (GitLab's ``force`` commit from ``start_branch``),
  so the merge request always shows exactly the change, rebased, and never a pile of fix-ups;
- ONE merge request per branch, opened or updated (title, description with a table, labels);
- a branch a human has committed to is left alone: the commits between the default branch and ours
  are checked against the bot identity, and any other author stops the bot;
- destructive changes and anything for ``prd-uaenorth`` carry ``needs-review`` and are never marked
  for automatic merging.

``plan_change`` is pure (snapshot in, plan out); ``propose`` gathers the snapshot through the GitLab
adapter and acts under ``actuation.mutate`` (leased, retried, audited; a dry run changes nothing).
Re-running is safe after any failure, including an ambiguous one: the next run re-reads the branch
and either finds the change already there (no new commit) or replaces it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from shared.adapters.gitlab import CommitInfo, FileAction, MergeRequest

PRODUCTION = "prd-uaenorth"
BOT_NAME = "Platform Core bot"
LABEL_BOT = "platform-bot"
LABEL_REVIEW = "needs-review"
LABEL_DESTRUCTIVE = "destructive"
LABEL_AUTO_MERGE = "auto-merge"

# Reason codes of a plan.
NO_CHANGE = "NoChange"             # git already says what the change would say
HUMAN_ON_BRANCH = "HumanOnBranch"  # someone else committed to our branch: hands off
UP_TO_DATE = "UpToDate"            # our branch already holds exactly this change on the current base
NEW_BRANCH = "NewBranch"           # first proposal for this topic
REFRESHED = "Refreshed"            # the base moved or the change differs: one fresh commit replaces ours


def branch_name(topic: str, env: str) -> str:
    return f"platform-bot/{topic}/{env}"


def bot_email(gitlab_url: str) -> str:
    """The address the bot's commits carry (GitLab records author_email as sent)."""
    host = urlparse(gitlab_url).hostname or "gitlab.invalid"
    return f"platform-bot@noreply.{host}"


@dataclass(frozen=True)
class FileChange:
    """``edit(current)`` returns the new content (``None`` deletes; ``current`` is None for a new file)."""

    path: str
    edit: Callable[[str | None], str | None]


@dataclass(frozen=True)
class ChangeRequest:
    env: str
    topic: str
    title: str
    summary: str                                  # markdown, the description's first paragraph
    changes: tuple[FileChange, ...]
    columns: tuple[str, ...] = ()                 # the description's table
    rows: tuple[tuple[str, ...], ...] = ()
    labels: tuple[str, ...] = ()
    destructive: bool = False
    auto_merge: bool = False                      # asked for; refused for prd-uaenorth and destructive changes


@dataclass(frozen=True)
class BranchSnapshot:
    """What the GitLab adapter told us, reduced to what the decision needs."""

    base_head: str
    base_files: Mapping[str, str | None]          # path -> content on the default branch
    branch_exists: bool = False
    branch_commits: tuple[CommitInfo, ...] = ()   # on our branch, not on the default branch, oldest first
    branch_files: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ChangePlan:
    reason: str
    message: str
    branch: str
    commit: bool                                  # make one fresh commit on the default branch
    merge_request: bool                           # open or update the merge request
    actions: tuple[FileAction, ...] = ()
    labels: tuple[str, ...] = ()
    description: str = ""
    auto_merge: bool = False


@dataclass(frozen=True)
class ChangeOutcome:
    plan: ChangePlan
    merge_request: MergeRequest | None = None
    commit_id: str | None = None
    dry_run: bool = False


def labels_for(request: ChangeRequest) -> tuple[str, ...]:
    labels = [LABEL_BOT, f"topic::{request.topic}", f"env::{request.env}", *request.labels]
    if request.destructive:
        labels += [LABEL_DESTRUCTIVE, LABEL_REVIEW]
    if request.env == PRODUCTION:
        labels.append(LABEL_REVIEW)
    if may_auto_merge(request):
        labels.append(LABEL_AUTO_MERGE)
    return tuple(dict.fromkeys(labels))


def may_auto_merge(request: ChangeRequest) -> bool:
    return request.auto_merge and not request.destructive and request.env != PRODUCTION


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def describe(request: ChangeRequest, branch: str) -> str:
    """The merge request description: deterministic, so an unchanged proposal is an unchanged MR."""
    parts = [request.summary.strip(), ""]
    if request.columns and request.rows:
        parts.append("| " + " | ".join(map(_cell, request.columns)) + " |")
        parts.append("|" + "---|" * len(request.columns))
        parts += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in request.rows]
        parts.append("")
    if request.destructive:
        parts.append("**Destructive**: applying this recreates nodes. Review it; it is never merged automatically.")
    elif request.env == PRODUCTION:
        parts.append("**Production**: review required; never merged automatically.")
    parts.append(f"_Opened by {BOT_NAME} on `{branch}`. The bot replaces its own commit on each run and stops "
                 "touching the branch once anyone else commits to it._")
    return "\n".join(parts).strip() + "\n"


def plan_change(request: ChangeRequest, snapshot: BranchSnapshot, *, bot: str) -> ChangePlan:
    """Decide what to do (pure): nothing, hands off, refresh the MR only, or one fresh commit + MR."""
    branch = branch_name(request.topic, request.env)
    actions: list[FileAction] = []
    wanted: dict[str, str | None] = {}
    for change in request.changes:
        current = snapshot.base_files.get(change.path)
        new = change.edit(current)
        wanted[change.path] = new
        if new == current:
            continue
        if new is None:
            actions.append(FileAction("delete", change.path))
        else:
            actions.append(FileAction("create" if current is None else "update", change.path, new))
    labels, description = labels_for(request), describe(request, branch)
    common = {"branch": branch, "labels": labels, "description": description,
              "auto_merge": may_auto_merge(request)}
    if not actions:
        return ChangePlan(NO_CHANGE, f"{request.env}: git already matches ({request.topic}); nothing to propose",
                          commit=False, merge_request=False, **common)
    humans = sorted({c.author_email or c.author_name for c in snapshot.branch_commits if c.author_email != bot})
    if humans:
        return ChangePlan(HUMAN_ON_BRANCH, f"{branch} has commits by {', '.join(humans)}: left alone (the bot never "
                                           "force-pushes a branch a human has committed to)",
                          commit=False, merge_request=False, **common)
    current_on_base = (len(snapshot.branch_commits) == 1
                       and snapshot.branch_commits[0].parent_ids == (snapshot.base_head,))
    if snapshot.branch_exists and current_on_base and all(
            snapshot.branch_files.get(p) == content for p, content in wanted.items()):
        return ChangePlan(UP_TO_DATE, f"{branch} already holds this change on the current {request.env} base",
                          commit=False, merge_request=True, actions=tuple(actions), **common)
    reason = REFRESHED if snapshot.branch_exists else NEW_BRANCH
    return ChangePlan(reason, f"one fresh commit on the default branch to {branch} ({len(actions)} file(s))",
                      commit=True, merge_request=True, actions=tuple(actions), **common)


def snapshot_branch(git: Any, request: ChangeRequest, default_branch: str) -> BranchSnapshot:
    """Read the default branch, our branch and the commits between them through the GitLab adapter."""
    base = git.branch(default_branch)
    if base is None:
        from shared.errors import PermanentError

        raise PermanentError(f"GitLab: default branch {default_branch} not found", code="NoDefaultBranch",
                             remediation="check gitlab.default_branch in platform.yaml")
    paths = [c.path for c in request.changes]
    base_files = {p: git.read_file(p, base.commit_id) for p in paths}
    name = branch_name(request.topic, request.env)
    ours = git.branch(name)
    if ours is None:
        return BranchSnapshot(base.commit_id, base_files)
    commits = tuple(git.commits_between(base.commit_id, ours.commit_id))
    branch_files = {p: git.read_file(p, ours.commit_id) for p in paths}
    return BranchSnapshot(base.commit_id, base_files, True, commits, branch_files)


def propose(ctx: Any, request: ChangeRequest, *, dry_run: bool = True, actor: str = "gitops_change",
            reason: str = "", policy: Any = None) -> ChangeOutcome:
    """Gather, decide, act: open or update the one merge request for ``request``'s env and topic.

    ``policy`` (a ``RetryPolicy``) bounds the retries of the commit and merge request; a caller on a
    short timer passes ``NO_RETRY`` and tries again on its next run instead of waiting here."""
    from shared.services.actuation import mutate

    gl = ctx.platform.gitlab
    git = ctx.git
    bot = bot_email(ctx.settings.gitlab_url or gl.url)
    snapshot = snapshot_branch(git, request, gl.default_branch)
    plan = plan_change(request, snapshot, bot=bot)
    if not (plan.commit or plan.merge_request):
        return ChangeOutcome(plan, dry_run=dry_run)
    inputs = {"branch": plan.branch, "reason": plan.reason, "files": [a.file_path for a in plan.actions],
              "labels": list(plan.labels), "base": snapshot.base_head}

    def act() -> tuple[MergeRequest, str | None]:
        commit_id = None
        if plan.commit:
            commit = git.commit(plan.branch, _commit_message(request), list(plan.actions),
                                start_branch=gl.default_branch, force=True, author=(BOT_NAME, bot))
            commit_id = commit.id
        mr = git.open_or_update_merge_request(plan.branch, gl.default_branch, request.title, plan.description,
                                              list(plan.labels))
        return mr, commit_id

    retries = {} if policy is None else {"policy": policy}
    result = mutate(ctx, actor=actor, action="propose_git_change", target=f"gitops/{request.env}/{request.topic}",
                    reason=reason or plan.reason, inputs=inputs, change=act, dry_run=dry_run, **retries)
    if result is None:
        return ChangeOutcome(plan, dry_run=True)
    mr, commit_id = result
    return ChangeOutcome(plan, merge_request=mr, commit_id=commit_id)


def _commit_message(request: ChangeRequest) -> str:
    return f"{request.title}\n\n{request.summary.strip()}\n"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Helper for callers: columns and rows as the strings ``ChangeRequest`` keeps."""
    return tuple(columns), tuple(tuple(str(c) for c in row) for row in rows)
