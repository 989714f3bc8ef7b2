"""The GitOps repository on GitLab: read files, commit changes, open or update merge requests.

Built on ``python-gitlab``. Choices and why:
- The SDK's own retries are off: ``retry_transient_errors=False`` stops 5xx retries, and
  ``obey_rate_limit=False`` on every call stops the default of sleeping ``Retry-After`` up to ten
  times inside one call on 429 (a Function would sit blocked for minutes). Our retry policy
  handles ``TemporaryError.retry_after`` instead. ``python-gitlab`` does not expose response
  headers on its exceptions, so a requests response hook keeps the last ones per thread.
- ``open_or_update_merge_request`` is idempotent like Renovate: one fixed branch per concern, the
  open MR for it is updated, a 409 from a concurrent creator is resolved by re-reading.
- Commits and merge-request creation are not idempotent: after an ambiguous failure (a timeout or a
  connection lost after sending, a 5xx) they raise ``OutcomeUnknownError``, never re-sent by a
  retry, unless the first attempt can be found and adopted: a branch head that is our commit (same
  message, on top of the head we read before sending), or the open merge request for the branch.
- ``commit(last_commit_id=...)``: the commit the caller read the branch at. It goes on every
  update/delete/move action as GitLab's per-file optimistic lock, so GitLab refuses the commit
  atomically if one of those files changed after it (-> ``ConflictError``).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

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

AUTH_REMEDIATION = (
    "check GITLAB_TOKEN is a project access token with the api scope and at least the Developer role on the "
    "GitOps project")
# GitLab answers these 400s for a lost race, not for a malformed request.
_CONFLICT_400 = ("has changed since you started editing", "already exists")


@dataclass(frozen=True)
class FileAction:
    action: Literal["create", "update", "delete", "move"]
    file_path: str
    content: str | None = None
    previous_path: str | None = None  # for "move"
    encoding: Literal["text", "base64"] = "text"


@dataclass(frozen=True)
class Branch:
    name: str
    commit_id: str
    protected: bool = False


@dataclass(frozen=True)
class Commit:
    id: str
    short_id: str
    title: str
    branch: str
    web_url: str


@dataclass(frozen=True)
class CommitInfo:
    """Who made a commit: tells the bot's own commits from a human's."""

    id: str
    author_name: str
    author_email: str
    parent_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class MergeRequest:
    iid: int
    title: str
    description: str
    state: str
    source_branch: str
    target_branch: str
    labels: tuple[str, ...]
    web_url: str
    sha: str | None = None


class GitRepo(Protocol):
    def read_file(self, path: str, ref: str) -> str | None: ...

    def branch(self, name: str) -> Branch | None: ...

    def commit(self, branch: str, message: str, actions: list[FileAction], start_branch: str | None = None,
               last_commit_id: str | None = None, *, force: bool = False,
               author: tuple[str, str] | None = None) -> Commit: ...

    def commits_between(self, base: str, head: str) -> list[CommitInfo]: ...

    def last_changed(self, path: str, ref: str) -> dt.datetime | None: ...

    def find_open_merge_request(self, source_branch: str, target_branch: str) -> MergeRequest | None: ...

    def open_or_update_merge_request(self, source_branch: str, target_branch: str, title: str, description: str,
                                     labels: list[str] | tuple[str, ...]) -> MergeRequest: ...

    def probe(self) -> str: ...


class GitLabRepo:
    """``GitRepo`` on ``gitlab.Gitlab``; the client is made on first use."""

    def __init__(self, url: str, token: str | None, project: str, http: HttpOptions | None = None) -> None:
        self._url = url.rstrip("/")
        self._token = token
        self._project_path = project
        self._http = http or HttpOptions()
        self._lock = threading.Lock()
        self._local = threading.local()  # last response headers, per thread (for Retry-After)
        self._project: Any = None

    def _remember_headers(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self._local.headers = response.headers
        return response

    def _proj(self) -> Any:
        if not self._token:
            raise PermanentError("GitLab: GITLAB_TOKEN is not set", code="NotConfigured", remediation=AUTH_REMEDIATION)
        with self._lock:
            if self._project is None:
                import gitlab

                class _Gitlab(gitlab.Gitlab):
                    def http_request(self, *args: Any, **kwargs: Any) -> Any:
                        kwargs["obey_rate_limit"] = False  # a 429 becomes TemporaryError(retry_after) at once
                        return super().http_request(*args, **kwargs)

                gl = _Gitlab(self._url, private_token=self._token, retry_transient_errors=False,
                             ssl_verify=self._http.verify, timeout=self._http.timeout)
                gl.session.hooks["response"].append(self._remember_headers)
                # lazy: no request until the first real call.
                self._project = gl.projects.get(self._project_path, lazy=True)
            return self._project

    def _do(self, what: str, call: Any, *, creates: bool = False) -> Any:
        """Run ``call(project)``, mapping errors; ``creates``: a non-idempotent POST (ambiguity matters)."""
        project = self._proj()
        self._local.headers = None
        try:
            return call(project)
        except Exception as exc:
            mapped = _map_error(exc, f"GitLab: {what}", getattr(self._local, "headers", None))
            if mapped is exc:
                raise  # ours, or our own bug: as it is, with its traceback
            if creates and _ambiguous(exc):
                raise OutcomeUnknownError(f"{mapped} (the request was sent and may have been applied)",
                                          code="OutcomeUnknown") from exc
            raise mapped from exc

    # -- operations ---------------------------------------------------------------------------

    def read_file(self, path: str, ref: str) -> str | None:
        try:
            data = self._do(f"read {path}@{ref}", lambda p: p.files.raw(file_path=path, ref=ref))
        except NotFoundError:
            return None
        return data.decode("utf-8") if isinstance(data, bytes) else str(data)

    def branch(self, name: str) -> Branch | None:
        try:
            b = self._do(f"read branch {name}", lambda p: p.branches.get(name))
        except NotFoundError:
            return None
        return Branch(name=b.name, commit_id=b.commit["id"], protected=bool(getattr(b, "protected", False)))

    def commit(self, branch: str, message: str, actions: list[FileAction], start_branch: str | None = None,
               last_commit_id: str | None = None, *, force: bool = False,
               author: tuple[str, str] | None = None) -> Commit:
        """``force``: replace ``branch`` with one new commit on ``start_branch`` (GitLab's ``force``).
        ``author``: (name, email) recorded on the commit, so that our own commits are recognisable."""
        payload: dict[str, Any] = {"branch": branch, "commit_message": message, "actions": []}
        # The head before sending: to create the branch, and to recognise our commit after an ambiguity.
        before = self.branch(branch)
        parent = before.commit_id if before else None
        if author:
            payload["author_name"], payload["author_email"] = author
        if force and start_branch and start_branch != branch:
            # One fresh commit on start_branch replaces the branch: that commit's parent is start_branch's head.
            payload["start_branch"], payload["force"] = start_branch, True
            base = self.branch(start_branch)
            parent = base.commit_id if base else None
        # GitLab refuses start_branch when the branch exists (without force): only send it to create one.
        elif start_branch and start_branch != branch and before is None:
            payload["start_branch"] = start_branch
        for a in actions:
            item: dict[str, Any] = {"action": a.action, "file_path": a.file_path}
            if a.content is not None:
                item["content"], item["encoding"] = a.content, a.encoding
            if a.previous_path:
                item["previous_path"] = a.previous_path
            if last_commit_id and a.action in ("update", "delete", "move"):
                item["last_commit_id"] = last_commit_id
            payload["actions"].append(item)
        try:
            c = self._do(f"commit to {branch}", lambda p: p.commits.create(payload), creates=True)
        except OutcomeUnknownError:
            adopted = self.find_commit(branch, message, parent)
            if adopted is None:
                raise
            return adopted
        return Commit(id=c.id, short_id=c.short_id, title=c.title, branch=branch, web_url=c.web_url)

    def last_changed(self, path: str, ref: str) -> dt.datetime | None:
        """When the last commit touching ``path`` on ``ref`` was made (None if the file does not exist)."""
        try:
            meta = self._do(f"read {path}@{ref}", lambda p: p.files.get(file_path=path, ref=ref))
        except NotFoundError:
            return None
        commit = self._do(f"read commit {meta.last_commit_id}", lambda p: p.commits.get(meta.last_commit_id))
        return dt.datetime.fromisoformat(commit.committed_date.replace("Z", "+00:00"))

    def commits_between(self, base: str, head: str) -> list[CommitInfo]:
        """Commits on ``head`` that ``base`` does not have, oldest first (the compare API)."""
        data = self._do(f"compare {base}...{head}", lambda p: p.repository_compare(base, head))
        return [CommitInfo(id=c["id"], author_name=c.get("author_name") or "",
                           author_email=c.get("author_email") or "", parent_ids=tuple(c.get("parent_ids") or ()))
                for c in (data.get("commits") or ())]

    def find_commit(self, branch: str, message: str, parent: str | None) -> Commit | None:
        """The branch head if it is a commit with ``message`` made on top of ``parent`` (None: the
        branch was new), i.e. the commit an ambiguous attempt made; None otherwise."""
        try:
            b = self._do(f"read branch {branch}", lambda p: p.branches.get(branch))
        except NotFoundError:
            return None
        head = b.commit
        on_top = head.get("id") != parent and (parent is None or parent in (head.get("parent_ids") or []))
        if not on_top or (head.get("message") or "").strip() != message.strip():
            return None
        return Commit(id=head["id"], short_id=head.get("short_id") or head["id"][:8], title=head.get("title") or "",
                      branch=branch, web_url=head.get("web_url") or "")

    def find_open_merge_request(self, source_branch: str, target_branch: str) -> MergeRequest | None:
        found = self._do(
            f"find the open merge request {source_branch} -> {target_branch}",
            lambda p: p.mergerequests.list(state="opened", source_branch=source_branch,
                                           target_branch=target_branch, get_all=True),
        )
        return _merge_request(found[0].attributes) if found else None

    def open_or_update_merge_request(self, source_branch: str, target_branch: str, title: str, description: str,
                                     labels: list[str] | tuple[str, ...]) -> MergeRequest:
        existing = self.find_open_merge_request(source_branch, target_branch)
        if existing is None:
            try:
                created = self._do(f"open a merge request {source_branch} -> {target_branch}",
                                   lambda p: p.mergerequests.create({
                                       "source_branch": source_branch, "target_branch": target_branch,
                                       "title": title, "description": description, "labels": list(labels),
                                       "remove_source_branch": True}), creates=True)
                return _merge_request(created.attributes)
            except (ConflictError, OutcomeUnknownError):
                # Someone opened it between our look-up and our create, or our own create's answer was
                # lost: the open merge request for the branch is the one to adopt and update.
                existing = self.find_open_merge_request(source_branch, target_branch)
                if existing is None:
                    raise
        if (existing.title, existing.description, set(existing.labels)) == (title, description, set(labels)):
            return existing
        data = self._do(f"update merge request !{existing.iid}",
                        lambda p: p.mergerequests.update(existing.iid, {
                            "title": title, "description": description, "labels": list(labels)}))
        return _merge_request(data)

    def probe(self) -> str:
        p = self._do("read the project", lambda p: p.manager.get(self._project_path))
        return f"GitLab project {p.path_with_namespace} (default branch {p.default_branch}) at {self._url}"


def _merge_request(data: dict[str, Any]) -> MergeRequest:
    labels = data.get("labels") or []
    if isinstance(labels, str):
        labels = [x for x in labels.split(",") if x]
    return MergeRequest(
        iid=int(data["iid"]), title=data.get("title") or "", description=data.get("description") or "",
        state=data.get("state") or "", source_branch=data["source_branch"], target_branch=data["target_branch"],
        labels=tuple(labels), web_url=data.get("web_url") or "", sha=data.get("sha"),
    )


def _ambiguous(exc: Exception) -> bool:
    """Whether a failed POST may have been applied: sent, and no answer proving it was not."""
    import gitlab
    import requests
    from urllib3.exceptions import ConnectTimeoutError

    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
        return not isinstance(reason, ConnectTimeoutError)  # NewConnectionError (refused) is one too
    if isinstance(exc, requests.exceptions.RequestException):
        return True  # read timeout, chunked encoding error: the request went out
    return isinstance(exc, gitlab.exceptions.GitlabError) and (exc.response_code or 0) >= 500


def _map_error(exc: Exception, what: str, headers: Any = None) -> Exception:
    """Translate python-gitlab / requests exceptions into our tree (the seam)."""
    import gitlab
    import requests

    if isinstance(exc, PlatformError) or not isinstance(exc, requests.exceptions.RequestException
                                                          | gitlab.exceptions.GitlabError):
        return exc  # ours, or our own bug: propagates as it is
    if isinstance(exc, requests.exceptions.SSLError):
        return PermanentError(redact_text(f"{what}: TLS verification failed"), code="TlsError",
                              remediation="check TLS_CA_BUNDLE trusts the GitLab server's certificate")
    if isinstance(exc, requests.exceptions.RequestException):
        return TemporaryError(redact_text(f"{what}: cannot reach GitLab ({type(exc).__name__})"),
                              code="ServiceUnreachable")
    status = exc.response_code
    detail = exc.error_message
    if isinstance(detail, list):
        detail = "; ".join(map(str, detail))
    elif isinstance(detail, dict):
        detail = "; ".join(f"{k}: {v}" for k, v in detail.items())
    detail = str(detail)
    # GitLab messages often start with the status already ("404 Project Not Found").
    prefix = "" if status is None or detail.startswith(str(status)) else f"{status} "
    message = redact_text(f"{what}: {prefix}{detail}")
    code = f"HTTP{status}" if status else type(exc).__name__
    if status is None:
        return TemporaryError(message, code=code)
    if status in (401, 403):
        return PermanentError(message, code=code, remediation=AUTH_REMEDIATION)
    if status == 404:
        return NotFoundError(message, code=code, remediation="check gitlab.project in platform.yaml and the ref")
    if status in (409, 412) or (status == 400 and any(s in str(detail) for s in _CONFLICT_400)):
        return ConflictError(message, code=code,
                             remediation="the branch or merge request changed concurrently; re-read and retry")
    if status == 429 or status >= 500:
        return TemporaryError(message, code=code, retry_after=retry_after_seconds(headers))
    return PermanentError(message, code=code, remediation="GitLab refused the request as invalid; see the message")


def build(ctx: Context) -> GitLabRepo:
    s, gl = ctx.settings, ctx.platform.gitlab
    return GitLabRepo(s.gitlab_url or gl.url, s.gitlab_token, gl.project, ctx.http)
