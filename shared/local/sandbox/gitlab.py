"""GitLab REST emulator (``/api/v4``): one project with a real in-memory git history.

Served: the project (by id or url-encoded path), repository files (metadata and raw, at a branch
or a commit), branches (list, get, create, delete), commits (get, list, and the multi-action create
with ``start_branch``, ``force`` and per-action ``last_commit_id``), merge requests (create, list
with filters and GitLab's pagination headers, get, update/close/reopen).

Routing works on the *raw* path: GitLab ids are url-encoded (``platform%2Fplatform-core``,
``gitops%2Fclusters%2F...%2Fkustomization.yaml``, ``platform-bot%2Fdrift%2F...``), and decoding first
would make ``/`` inside an id indistinguishable from a path separator.

Behaviour copied from GitLab on purpose:
- a second open MR for the same source/target -> 409 ``{"message": ["Another open merge request
  already exists for this source branch: !N"]}``;
- ``last_commit_id`` on an action is an optimistic lock: refused (400) when the file changed after
  that commit; an id the repository does not know is ignored (GitLab >= 16.x behaves so);
- ``start_branch`` with an existing ``branch`` and no ``force`` -> 400 "A branch called ... already exists".
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

from shared.local.sandbox.base import Emulator, HttpError, Request, Response, iso, utc_now
from shared.local.sandbox.declared import REPO_ROOT, repository_files
from shared.platform import PlatformEnvironment

BOT = {"id": 2, "username": "platform-bot", "name": "Platform Core bot", "state": "active",
       "web_url": "", "avatar_url": None}


@dataclass
class GitCommit:
    id: str
    parent_ids: list[str]
    tree: dict[str, bytes]
    message: str
    author_name: str
    author_email: str
    created_at: str
    changed: set[str] = field(default_factory=set)
    stats: dict[str, int] = field(default_factory=dict)


class GitLabEmulator(Emulator):
    name = "gitlab"

    def __init__(self, platform: PlatformEnvironment, *, token: str = "sandbox-gitlab-token",  # noqa: S107
                 project_id: int = 42, files: dict[str, str] | None = None,
                 repository_root: Path = REPO_ROOT) -> None:
        self.platform = platform
        #: The checkout whose gitops/ and infra/ trees seed the project (unless ``files`` is given).
        self.repository_root = Path(repository_root)
        self.token = token
        self.project_id = project_id
        self.project_path = platform.gitlab.project
        self.default_branch = platform.gitlab.default_branch
        self.commits: dict[str, GitCommit] = {}
        self.branches: dict[str, str] = {}
        self.merge_requests: dict[int, dict[str, Any]] = {}
        self._counter = itertools.count(1)
        self._mr_ids = itertools.count(1001)
        #: Where pushes and merges are announced (a project webhook), and the secret it sends.
        self.webhook_url: str | None = None
        self.webhook_token = "sandbox-gitlab-webhook-secret"  # noqa: S105 - a sandbox value
        self.deliveries: list[tuple[str, int]] = []
        super().__init__()
        self._seed: dict[str, str | None] = dict(files) if files is not None else self._seed_files()
        self.reset()

    def reset(self) -> None:
        """Back to the seeded project (history, branches, merge requests, faults, request log), same port."""
        with self.lock:
            self.commits.clear()
            self.branches.clear()
            self.merge_requests.clear()
            self._counter = itertools.count(1)
            self._mr_ids = itertools.count(1001)
            self.faults.clear()
            self.requests.clear()
            self.push(self.default_branch, self._seed, "Initial GitOps layout", create_branch=True)

    def settings_env(self) -> dict[str, str]:
        return {"GITLAB_URL": self.base_url, "GITLAB_TOKEN": self.token, "GITLAB_WEBHOOK_SECRET": self.webhook_token}

    # -- helpers for tests and the sandbox ----------------------------------------------------

    def push(self, branch: str, files: dict[str, str | None], message: str = "Change by a human",
             *, author: str = "Jane Doe", create_branch: bool = False) -> str:
        """Commit directly (as a human's ``git push`` would): ``None`` content deletes the file."""
        with self.lock:
            head = self.branches.get(branch)
            if head is None and not create_branch:
                raise KeyError(branch)
            tree = dict(self.commits[head].tree) if head else {}
            changed = set()
            for path, content in files.items():
                changed.add(path)
                if content is None:
                    tree.pop(path, None)
                else:
                    tree[path] = content.encode()
            commit = self._new_commit([head] if head else [], tree, message, author,
                                      f"{author.split()[0].lower()}@example.com", changed)
            self.branches[branch] = commit.id
        self._announce("Push Hook", self._push_hook(branch, head, commit))
        return commit.id

    # -- webhooks (docs.gitlab.com/user/project/integrations/webhook_events) ----------------------

    def _push_hook(self, branch: str, before: str | None, commit: GitCommit) -> dict[str, Any]:
        return {
            "object_kind": "push", "event_name": "push", "before": before or "0" * 40, "after": commit.id,
            "ref": f"refs/heads/{branch}", "checkout_sha": commit.id, "user_name": commit.author_name,
            "user_email": commit.author_email, "project_id": self.project_id,
            "project": {"id": self.project_id, "path_with_namespace": self.project_path,
                        "default_branch": self.default_branch, "web_url": self.web_url},
            "commits": [{"id": commit.id, "message": commit.message, "title": commit.message.split("\n")[0],
                         "timestamp": commit.created_at, "author": {"name": commit.author_name,
                                                                    "email": commit.author_email},
                         "added": [], "modified": sorted(commit.changed), "removed": []}],
            "total_commits_count": 1, "repository": {"name": self.project_path.rsplit("/", 1)[-1]},
        }

    def _announce(self, event: str, payload: dict[str, Any]) -> None:
        """POST the hook as GitLab does (X-Gitlab-Event, X-Gitlab-Token, event UUID), off the caller's thread."""
        url = self.webhook_url
        if not url:
            return
        import threading
        import uuid

        import requests

        def deliver() -> None:
            headers = {"X-Gitlab-Event": event, "X-Gitlab-Token": self.webhook_token,
                       "X-Gitlab-Event-UUID": str(uuid.uuid4()), "Idempotency-Key": str(uuid.uuid4()),
                       "X-Gitlab-Instance": self.base_url, "User-Agent": "GitLab/17.11.2"}
            try:
                status = requests.post(url, json=payload, headers=headers, timeout=10).status_code
            except requests.RequestException:  # a failing hook is recorded, as GitLab shows it in the hook's log
                status = 0
            with self.lock:
                self.deliveries.append((event, status))

        threading.Thread(target=deliver, name="gitlab-webhook", daemon=True).start()

    def _control(self, request: Request) -> Response:
        """Besides faults: ``POST /_sandbox/push`` ``{"branch": "main", "files": {"path": "content"},
        "author": "Jane Doe"}`` commits as a human's ``git push`` would (and announces it to the webhook);
        ``POST /_sandbox/merge`` ``{"iid": 1}`` merges a merge request; ``POST /_sandbox/webhook``
        ``{"url": "..."}`` sets where events go."""
        body = request.json() if request.method == "POST" else None
        if request.path == "/_sandbox/push" and isinstance(body, dict) and isinstance(body.get("files"), dict):
            sha = self.push(body.get("branch") or self.default_branch, body["files"],
                            body.get("message") or "Change by a human", author=body.get("author") or "Jane Doe")
            return Response(201, {"id": sha})
        if request.path == "/_sandbox/merge" and isinstance(body, dict):
            self.merge(int(body.get("iid", 0)))
            return Response(200, {"merged": body.get("iid")})
        if request.path == "/_sandbox/webhook" and isinstance(body, dict):
            self.webhook_url = body.get("url") or None
            return Response(200, {"url": self.webhook_url})
        return super()._control(request)

    def head(self, branch: str) -> str:
        with self.lock:
            return self.branches[branch]

    def file(self, branch: str, path: str) -> str | None:
        with self.lock:
            data = self.commits[self.branches[branch]].tree.get(path)
            return data.decode() if data is not None else None

    def merge(self, iid: int) -> None:
        """Merge an MR as a maintainer would (fast-forward the target to the source head)."""
        with self.lock:
            mr = self.merge_requests[iid]
            self.branches[mr["target_branch"]] = self.branches[mr["source_branch"]]
            mr.update(state="merged", merged_at=iso(utc_now()), updated_at=iso(utc_now()))
            payload = {"object_kind": "merge_request", "event_type": "merge_request",
                       "project": {"id": self.project_id, "path_with_namespace": self.project_path,
                                   "default_branch": self.default_branch},
                       "object_attributes": {**self._mr_json(mr), "action": "merge",
                                             "merge_commit_sha": self.branches[mr["target_branch"]]}}
        self._announce("Merge Request Hook", payload)

    def _seed_files(self) -> dict[str, str | None]:
        """The project's tree as the repository holds it: the real ``gitops/`` and ``infra/`` of this checkout."""
        return dict(repository_files(self.repository_root))

    # -- envelope, auth -----------------------------------------------------------------------

    def error_body(self, status: int, code: str, message: str) -> Any:
        # GitLab answers {"message": "..."} (or a list/dict of messages), validation as {"error": "..."}.
        if code == "error":
            return {"error": message}
        if code == "list":
            return {"message": [message]}
        if status == 404 and not message.startswith("404"):
            return {"message": "404 Not Found"}  # GitLab never explains a 404 further
        return {"message": message}

    def authenticate(self, request: Request) -> Response | None:
        supplied = request.header("private-token")
        auth = request.header("authorization") or ""
        if supplied is None and auth.lower().startswith("bearer "):
            supplied = auth[7:].strip()
        if supplied != self.token:
            return Response(401, {"message": "401 Unauthorized"})
        return None

    # -- routing on the raw path --------------------------------------------------------------

    _TABLE: tuple[tuple[str, tuple[str, ...], str], ...] = (
        ("GET", ("version",), "version"),
        ("GET", ("user",), "user"),
        ("GET", ("projects", "*"), "get_project"),
        ("GET", ("projects", "*", "repository", "files", "*", "raw"), "raw_file"),
        ("GET", ("projects", "*", "repository", "files", "*"), "file_metadata"),
        ("HEAD", ("projects", "*", "repository", "files", "*"), "file_metadata"),
        ("GET", ("projects", "*", "repository", "branches"), "list_branches"),
        ("POST", ("projects", "*", "repository", "branches"), "create_branch"),
        ("GET", ("projects", "*", "repository", "branches", "*"), "get_branch"),
        ("DELETE", ("projects", "*", "repository", "branches", "*"), "delete_branch"),
        ("GET", ("projects", "*", "repository", "commits"), "list_commits"),
        ("POST", ("projects", "*", "repository", "commits"), "create_commit"),
        ("GET", ("projects", "*", "repository", "commits", "*"), "get_commit"),
        ("GET", ("projects", "*", "repository", "compare"), "compare"),
        ("GET", ("projects", "*", "merge_requests"), "list_merge_requests"),
        ("POST", ("projects", "*", "merge_requests"), "create_merge_request"),
        ("GET", ("projects", "*", "merge_requests", "*"), "get_merge_request"),
        ("PUT", ("projects", "*", "merge_requests", "*"), "update_merge_request"),
    )

    def routes(self) -> None:
        for method in ("GET", "POST", "PUT", "DELETE", "HEAD"):
            self.route(method, r"/api/v4/.*", self._api)

    def _api(self, request: Request) -> Response:
        raw = request.headers.get(":raw-path", request.path)
        segments = [unquote(s) for s in raw.split("/")[3:]]  # drop "", "api", "v4"
        known_shape = False
        for method, shape, handler in self._TABLE:
            if len(shape) != len(segments) or any(p != "*" and p != s for p, s in zip(shape, segments, strict=True)):
                continue
            known_shape = True
            if method != request.method:
                continue
            args = [s for p, s in zip(shape, segments, strict=True) if p == "*"]
            if shape[0] == "projects":
                self._project(args[0])
                args = args[1:]
            return getattr(self, handler)(request, *args)
        if known_shape:
            raise HttpError(405, "MethodNotAllowed", "405 Method Not Allowed")
        raise HttpError(404, "NotFound", "404 Not Found")

    def _project(self, ref: str) -> None:
        if ref != str(self.project_id) and ref.lower() != self.project_path.lower():
            raise HttpError(404, "NotFound", "404 Project Not Found")

    # -- rendering ----------------------------------------------------------------------------

    @property
    def web_url(self) -> str:
        return f"{self.base_url}/{self.project_path}"

    def _commit_json(self, commit: GitCommit) -> dict[str, Any]:
        title = commit.message.split("\n", 1)[0]
        return {
            "id": commit.id, "short_id": commit.id[:8], "title": title, "message": commit.message,
            "author_name": commit.author_name, "author_email": commit.author_email,
            "authored_date": commit.created_at, "committer_name": commit.author_name,
            "committer_email": commit.author_email, "committed_date": commit.created_at,
            "created_at": commit.created_at, "parent_ids": list(commit.parent_ids),
            "web_url": f"{self.web_url}/-/commit/{commit.id}", "trailers": {}, "extended_trailers": {},
            "stats": dict(commit.stats) or {"additions": 0, "deletions": 0, "total": 0},
            "status": None, "project_id": self.project_id, "last_pipeline": None,
        }

    def _branch_json(self, name: str) -> dict[str, Any]:
        return {
            "name": name, "commit": self._commit_json(self.commits[self.branches[name]]),
            "merged": False, "protected": name == self.default_branch, "default": name == self.default_branch,
            "developers_can_push": name != self.default_branch, "developers_can_merge": False, "can_push": True,
            "web_url": f"{self.web_url}/-/tree/{name}",
        }

    def _mr_json(self, mr: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(mr)
        out["sha"] = self.branches.get(mr["source_branch"], mr.get("sha"))
        out["draft"] = out["work_in_progress"] = mr["title"].lower().startswith(("draft:", "[draft]"))
        return out

    def _paged(self, request: Request, items: list[Any]) -> Response:
        try:
            page = max(1, int(request.query.get("page", 1)))
            per_page = min(100, max(1, int(request.query.get("per_page", 20))))
        except ValueError:
            raise HttpError(400, "error", "page and per_page must be integers") from None
        total_pages = max(1, (len(items) + per_page - 1) // per_page)
        chunk = items[(page - 1) * per_page: page * per_page]
        raw = request.headers.get(":raw-path", request.path)

        def link(n: int) -> str:
            return f"{self.base_url}{raw}?{urlencode({**request.query, 'page': n, 'per_page': per_page})}"

        links = [f'<{link(page + 1)}>; rel="next"'] if page < total_pages else []
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        links += [f'<{link(1)}>; rel="first"', f'<{link(total_pages)}>; rel="last"']
        headers = {
            "X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items)),
            "X-Total-Pages": str(total_pages), "X-Next-Page": str(page + 1) if page < total_pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "", "Link": ", ".join(links),
        }
        return Response(200, chunk, headers)

    # -- git ----------------------------------------------------------------------------------

    def _new_commit(self, parents: list[str], tree: dict[str, bytes], message: str, author: str, email: str,
                    changed: set[str], stats: dict[str, int] | None = None) -> GitCommit:
        digest = hashlib.sha1(  # noqa: S324 - a git-like id, not security  # nosec B324
            f"{parents}{sorted((p, hashlib.sha1(c).hexdigest()) for p, c in tree.items())}"  # noqa: S324 - git-like id  # nosec B324
            f"{message}{next(self._counter)}".encode()).hexdigest()
        commit = GitCommit(digest, parents, tree, message, author, email, iso(utc_now()), changed, stats or {})
        self.commits[digest] = commit
        return commit

    def _resolve(self, ref: str | None) -> GitCommit:
        if not ref:
            raise HttpError(400, "error", "ref is missing")
        if ref in self.branches:
            return self.commits[self.branches[ref]]
        matches = [c for sha, c in self.commits.items() if len(ref) >= 7 and sha.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise HttpError(404, "NotFound", "404 Commit Not Found")

    def _ancestors(self, sha: str) -> list[str]:
        """``sha`` and every commit reachable from it, newest first."""
        seen, queue = [], [sha]
        while queue:
            current = queue.pop(0)
            if current in seen or current not in self.commits:
                continue
            seen.append(current)
            queue.extend(self.commits[current].parent_ids)
        return seen

    def _last_commit_for(self, head: str, path: str) -> str | None:
        return next((sha for sha in self._ancestors(head) if path in self.commits[sha].changed), None)

    # -- handlers: misc -----------------------------------------------------------------------

    def version(self, request: Request) -> Response:
        return Response(200, {"version": "17.11.2-ee", "revision": "0a1b2c3d4e5", "enterprise": True})

    def user(self, request: Request) -> Response:
        return Response(200, {**BOT, "web_url": f"{self.base_url}/platform-bot", "bot": True})

    def get_project(self, request: Request) -> Response:
        namespace, _, path = self.project_path.rpartition("/")
        return Response(200, {
            "id": self.project_id, "name": path, "path": path, "path_with_namespace": self.project_path,
            "name_with_namespace": f"{namespace} / {path}", "default_branch": self.default_branch,
            "web_url": self.web_url, "http_url_to_repo": f"{self.web_url}.git",
            "ssh_url_to_repo": f"git@{self.base_url.split('://')[1]}:{self.project_path}.git",
            "namespace": {"id": 7, "name": namespace, "path": namespace, "kind": "group", "full_path": namespace},
            "visibility": "private", "archived": False, "empty_repo": not self.branches,
            "merge_method": "ff", "only_allow_merge_if_pipeline_succeeds": True,
        })

    # -- handlers: files ----------------------------------------------------------------------

    def raw_file(self, request: Request, path: str) -> Response:
        commit = self._resolve(request.query.get("ref") or self.default_branch)
        data = commit.tree.get(path)
        if data is None:
            raise HttpError(404, "NotFound", "404 File Not Found")
        return Response(200, data, {"Content-Type": "text/plain; charset=utf-8",
                                    "X-Gitlab-File-Path": path, "X-Gitlab-Commit-Id": commit.id})

    def file_metadata(self, request: Request, path: str) -> Response:
        ref = request.query.get("ref")
        commit = self._resolve(ref)
        data = commit.tree.get(path)
        if data is None:
            raise HttpError(404, "NotFound", "404 File Not Found")
        return Response(200, {
            "file_name": path.rsplit("/", 1)[-1], "file_path": path, "size": len(data), "encoding": "base64",
            "content": base64.b64encode(data).decode(), "content_sha256": hashlib.sha256(data).hexdigest(),
            "ref": ref, "blob_id": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),  # noqa: S324 - git blob id  # nosec B324
            "commit_id": commit.id, "last_commit_id": self._last_commit_for(commit.id, path),
            "execute_filemode": False,
        })

    # -- handlers: branches -------------------------------------------------------------------

    def list_branches(self, request: Request) -> Response:
        search = request.query.get("search", "")
        names = sorted(n for n in self.branches if search in n)
        return self._paged(request, [self._branch_json(n) for n in names])

    def get_branch(self, request: Request, name: str) -> Response:
        if name not in self.branches:
            raise HttpError(404, "NotFound", "404 Branch Not Found")
        return Response(200, self._branch_json(name))

    def create_branch(self, request: Request) -> Response:
        body = {**request.query, **(request.json() or {})}
        name, ref = body.get("branch"), body.get("ref")
        if not name:
            raise HttpError(400, "error", "branch is missing")
        if not ref:
            raise HttpError(400, "error", "ref is missing")
        if name in self.branches:
            raise HttpError(400, "message", "Branch already exists")
        try:
            commit = self._resolve(ref)
        except HttpError:
            raise HttpError(400, "message", "Invalid reference name: " + ref) from None
        self.branches[name] = commit.id
        return Response(201, self._branch_json(name))

    def delete_branch(self, request: Request, name: str) -> Response:
        if name not in self.branches:
            raise HttpError(404, "NotFound", "404 Branch Not Found")
        if name == self.default_branch:
            raise HttpError(400, "message", "The default branch of a project cannot be deleted.")
        del self.branches[name]
        return Response(204)

    # -- handlers: commits --------------------------------------------------------------------

    def get_commit(self, request: Request, sha: str) -> Response:
        return Response(200, self._commit_json(self._resolve(sha)))

    def list_commits(self, request: Request) -> Response:
        head = self._resolve(request.query.get("ref_name") or self.default_branch)
        return self._paged(request, [self._commit_json(self.commits[s]) for s in self._ancestors(head.id)])

    def compare(self, request: Request) -> Response:
        """``GET /projects/:id/repository/compare?from=&to=``: the commits of ``to`` not reachable from
        ``from`` (oldest first) and the files they changed
        (docs.gitlab.com/api/repositories/#compare-branches-tags-or-commits)."""
        base, head = self._resolve(request.query.get("from")), self._resolve(request.query.get("to"))
        known = set(self._ancestors(base.id))
        fresh = [sha for sha in self._ancestors(head.id) if sha not in known]
        fresh.reverse()
        changed = sorted({p for sha in fresh for p in self.commits[sha].changed})
        diffs = [{"old_path": p, "new_path": p, "a_mode": "100644", "b_mode": "100644", "diff": "",
                  "new_file": p not in base.tree, "renamed_file": False, "deleted_file": p not in head.tree}
                 for p in changed]
        return Response(200, {
            "commit": self._commit_json(head) if fresh else None,
            "commits": [self._commit_json(self.commits[sha]) for sha in fresh], "diffs": diffs,
            "compare_timeout": False, "compare_same_ref": base.id == head.id,
            "web_url": f"{self.web_url}/-/compare/{base.id}...{head.id}"})

    def create_commit(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "error", "the body must be a JSON object")
        for required in ("branch", "commit_message", "actions"):
            if not body.get(required):
                raise HttpError(400, "error", f"{required} is missing")
        branch, start_branch, force = body["branch"], body.get("start_branch"), bool(body.get("force"))
        if start_branch and start_branch != branch and branch in self.branches and not force:
            raise HttpError(400, "message", f"A branch called '{branch}' already exists. "
                                            "Switch to that branch in order to make changes")
        if start_branch and (start_branch != branch or branch not in self.branches):
            if start_branch not in self.branches:
                raise HttpError(400, "message", "Invalid start branch name")
            base_sha = self.branches[start_branch]
        elif branch in self.branches:
            base_sha = self.branches[branch]
        else:
            raise HttpError(400, "message", "You can only create or edit files when you are on a branch")

        tree = dict(self.commits[base_sha].tree)
        changed: set[str] = set()
        additions = deletions = 0
        for i, action in enumerate(body["actions"]):
            if not isinstance(action, dict) or not action.get("file_path"):
                raise HttpError(400, "error", f"actions[{i}][file_path] is missing")
            kind, path = action.get("action"), action["file_path"]
            if kind not in ("create", "update", "delete", "move", "chmod"):
                raise HttpError(400, "error", f"actions[{i}][action] does not have a valid value")
            self._check_lock(base_sha, action.get("previous_path") if kind == "move" else path,
                             action.get("last_commit_id"))
            content = self._content(action, i)
            if kind == "create":
                if path in tree:
                    raise HttpError(400, "message", "A file with this name already exists")
                tree[path] = content or b""
            elif kind == "update":
                if path not in tree:
                    raise HttpError(400, "message", "A file with this name doesn't exist")
                deletions += tree[path].count(b"\n")
                tree[path] = content or b""
            elif kind == "delete":
                if path not in tree:
                    raise HttpError(400, "message", "A file with this name doesn't exist")
                deletions += tree.pop(path).count(b"\n")
            elif kind == "move":
                previous = action.get("previous_path")
                if not previous or previous not in tree:
                    raise HttpError(400, "message", "A file with this name doesn't exist")
                if path in tree:
                    raise HttpError(400, "message", "A file with this name already exists")
                old = tree.pop(previous)
                tree[path] = content if content is not None else old
                changed.add(previous)
            changed.add(path)
            additions += (tree.get(path) or b"").count(b"\n") if kind != "delete" else 0
        commit = self._new_commit(
            [base_sha], tree, body["commit_message"], body.get("author_name") or BOT["name"],
            body.get("author_email") or "platform-bot@example.com", changed,
            {"additions": additions, "deletions": deletions, "total": additions + deletions})
        self.branches[branch] = commit.id
        return Response(201, self._commit_json(commit))

    def _check_lock(self, base_sha: str, path: str | None, last_commit_id: str | None) -> None:
        if not last_commit_id or not path or last_commit_id not in self.commits:
            return  # GitLab ignores an id the repository does not contain
        last = self._last_commit_for(base_sha, path)
        if last is not None and last not in self._ancestors(last_commit_id):
            raise HttpError(400, "message", f"The file has changed since you started editing it: {path}")

    @staticmethod
    def _content(action: dict[str, Any], index: int) -> bytes | None:
        content = action.get("content")
        if content is None:
            return None
        if action.get("encoding", "text") == "base64":
            try:
                return base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise HttpError(400, "error", f"actions[{index}][content] is not valid base64") from None
        if action.get("encoding", "text") != "text":
            raise HttpError(400, "error", f"actions[{index}][encoding] does not have a valid value")
        return str(content).encode()

    # -- handlers: merge requests -------------------------------------------------------------

    @staticmethod
    def _labels(value: Any) -> list[str]:
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).split(",")
        return [s.strip() for s in items if str(s).strip()]

    def _open_for(self, source: str, target: str) -> dict[str, Any] | None:
        return next((mr for mr in self.merge_requests.values() if mr["state"] == "opened"
                     and mr["source_branch"] == source and mr["target_branch"] == target), None)

    def create_merge_request(self, request: Request) -> Response:
        body = {**request.query, **(request.json() or {})}
        for required in ("source_branch", "target_branch", "title"):
            if not body.get(required):
                raise HttpError(400, "error", f"{required} is missing")
        source, target = body["source_branch"], body["target_branch"]
        if source == target:
            raise HttpError(400, "list", "You can't use same project/branch for source and target")
        for name, what in ((source, "Source"), (target, "Target")):
            if name not in self.branches:
                raise HttpError(400, "list", f'{what} branch "{name}" does not exist')
        existing = self._open_for(source, target)
        if existing is not None:
            raise HttpError(409, "list", f"Another open merge request already exists for this source branch: "
                                         f"!{existing['iid']}")
        iid = max(self.merge_requests, default=0) + 1
        now = iso(utc_now())
        mr = {
            "id": next(self._mr_ids), "iid": iid, "project_id": self.project_id, "title": body["title"],
            "description": body.get("description") or "", "state": "opened", "source_branch": source,
            "target_branch": target, "source_project_id": self.project_id, "target_project_id": self.project_id,
            "labels": self._labels(body.get("labels")), "author": {**BOT}, "assignees": [], "reviewers": [],
            "created_at": now, "updated_at": now, "merged_at": None, "closed_at": None,
            "merge_status": "can_be_merged", "detailed_merge_status": "mergeable", "has_conflicts": False,
            "remove_source_branch": bool(body.get("remove_source_branch")),
            "force_remove_source_branch": bool(body.get("remove_source_branch")),
            "squash": bool(body.get("squash")), "merge_when_pipeline_succeeds": False,
            "web_url": f"{self.web_url}/-/merge_requests/{iid}",
            "references": {"short": f"!{iid}", "relative": f"!{iid}", "full": f"{self.project_path}!{iid}"},
        }
        self.merge_requests[iid] = mr
        return Response(201, self._mr_json(mr))

    def list_merge_requests(self, request: Request) -> Response:
        q = request.query
        state = q.get("state", "all")
        labels = set(self._labels(q.get("labels")))
        found = [
            mr for mr in self.merge_requests.values()
            if (state == "all" or mr["state"] == state)
            and (not q.get("source_branch") or mr["source_branch"] == q["source_branch"])
            and (not q.get("target_branch") or mr["target_branch"] == q["target_branch"])
            and labels <= set(mr["labels"])
        ]
        found.sort(key=lambda mr: mr["iid"], reverse=q.get("sort", "desc") == "desc")
        return self._paged(request, [self._mr_json(mr) for mr in found])

    def _mr(self, iid: str) -> dict[str, Any]:
        mr = self.merge_requests.get(int(iid)) if iid.isdigit() else None
        if mr is None:
            raise HttpError(404, "NotFound", "404 Not found")
        return mr

    def get_merge_request(self, request: Request, iid: str) -> Response:
        return Response(200, self._mr_json(self._mr(iid)))

    def update_merge_request(self, request: Request, iid: str) -> Response:
        mr = self._mr(iid)
        body = {**request.query, **(request.json() or {})}
        updated = dict(mr)
        for key in ("title", "description", "target_branch"):
            if body.get(key) is not None:
                updated[key] = body[key]
        if "labels" in body:
            updated["labels"] = self._labels(body["labels"])
        if body.get("add_labels"):
            updated["labels"] = updated["labels"] + [x for x in self._labels(body["add_labels"])
                                                     if x not in updated["labels"]]
        if body.get("remove_labels"):
            updated["labels"] = [x for x in updated["labels"] if x not in self._labels(body["remove_labels"])]
        if "remove_source_branch" in body:
            updated["force_remove_source_branch"] = bool(body["remove_source_branch"])
        event = body.get("state_event")
        if event == "close" and mr["state"] == "opened":
            updated.update(state="closed", closed_at=iso(utc_now()))
        elif event == "reopen" and mr["state"] == "closed":
            other = self._open_for(updated["source_branch"], updated["target_branch"])
            if other is not None:
                raise HttpError(409, "list", f"Another open merge request already exists for this source "
                                             f"branch: !{other['iid']}")
            updated.update(state="opened", closed_at=None)
        elif event not in (None, "close", "reopen"):
            raise HttpError(400, "error", "state_event does not have a valid value")
        if updated != mr:
            updated["updated_at"] = iso(utc_now())
            self.merge_requests[mr["iid"]] = updated
        return Response(200, self._mr_json(updated))
