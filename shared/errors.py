"""The error tree, shaped by what the caller can do about it.

- ``TemporaryError``: try again later; ``retry_after`` says when (seconds), if the far side told us.
- ``OutcomeUnknownError`` (a ``TemporaryError``): a non-idempotent call may or may not have been
  applied; reconcile (find and adopt what it created) before sending it again. Never retried blindly.
- ``PermanentError``: retrying will not help; ``remediation`` tells a human what to change.
- ``BadInputError``: the request itself is wrong (malformed event, bad signature, unknown command);
  nothing was changed and the sender should fix it. Maps to 4xx.
- ``ConfigError``: the app's own settings are wrong; raised once at start-up listing every problem.

Adapters translate SDK exceptions into these at the seam (see ``shared.adapters``); nothing above
the adapters catches an SDK exception type.
"""

from __future__ import annotations


class PlatformError(Exception):
    """Base of every error this project raises on purpose."""

    #: A short machine-readable code, e.g. ``"OperationNotAllowed"``; shown in audit records.
    code: str = "PlatformError"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class TemporaryError(PlatformError):
    """The operation may succeed later (throttling, an operation in progress, a 5xx, a timeout)."""

    code = "Temporary"

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        #: Seconds the far side asked us to wait, or None to use our own backoff.
        self.retry_after = retry_after


class OutcomeUnknownError(TemporaryError):
    """A non-idempotent request was sent and may have been applied: the client timed out, the
    connection was lost after sending, or the server answered 5xx to a create.

    Never re-send blindly (``shared.retry.retry`` does not retry it): reconcile first, i.e. look for
    what the first attempt created and adopt it; send again only once it is known not to exist.
    """

    code = "OutcomeUnknown"


class PermanentError(PlatformError):
    """Retrying will not help: a human or a config change is needed."""

    code = "Permanent"

    def __init__(self, message: str, *, remediation: str = "", code: str | None = None) -> None:
        super().__init__(message, code=code)
        #: What a platform engineer should do about it, in one or two sentences.
        self.remediation = remediation

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} Remediation: {self.remediation}" if self.remediation else base


class NotFoundError(PermanentError):
    """The thing asked for does not exist (404). Callers often treat this as a normal answer."""

    code = "NotFound"


class ConflictError(PermanentError):
    """A precondition failed: the resource changed under us (412) or already exists (409)."""

    code = "Conflict"


class BadInputError(PlatformError):
    """The input (event, webhook, command) is malformed or unauthenticated; nothing was changed."""

    code = "BadInput"

    def __init__(self, message: str, *, status: int = 400, code: str | None = None) -> None:
        super().__init__(message, code=code)
        #: The HTTP status to answer with (400, 401, 403, 404, 413, 415, 422).
        self.status = status


class ConfigError(PlatformError):
    """The app's settings or platform files are invalid. Lists every problem at once."""

    code = "ConfigError"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")
