"""Typed settings from environment variables (Azure app settings), validated once at start-up.

``Settings.from_env`` collects every problem and raises one ``ConfigError`` listing them all with
the expected form, so a misconfigured deployment fails fast with a readable message. Secret
settings are registered with the log redactor as soon as they are read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from shared import logs, tls
from shared.errors import ConfigError
from shared.platform import DEFAULT_CONFIG_DIR, ENVIRONMENTS

# Every setting the app reads: name -> (required, secret, description). The README's table and
# local.settings.sample.json are checked against this by a test, so the three never disagree.
#: Hosts of Office 365 connector ("incoming webhook") URLs, which Microsoft retired in Teams in 2026.
RETIRED_TEAMS_HOSTS = ("webhook.office.com", "outlook.office.com", "outlook.office365.com")

SETTINGS_DOC: dict[str, tuple[str, bool, str]] = {
    "PLATFORM_ENV": ("required", False, f"which environment this app manages: {', '.join(ENVIRONMENTS)}"),
    "PLATFORM_CONFIG_DIR": ("optional", False, "folder holding <env>/platform.yaml (default: infra/envs in the app)"),
    "PLATFORM_STORAGE_ACCOUNT": (
        "one of two", False, "storage account name for state and queues, reached with the managed identity",
    ),
    "PLATFORM_STORAGE_CONNECTION_STRING": (
        "one of two", True, "connection string for state and queues instead (local/Azurite)",
    ),
    "AZURE_CREDENTIAL": (
        "optional", False, "'default' (DefaultAzureCredential, managed identity in Azure) or 'static' (sandbox)",
    ),
    "ARM_ENDPOINT": ("optional", False, "Azure Resource Manager base URL (default https://management.azure.com)"),
    "KEYVAULT_URL": ("optional", False, "Key Vault URL (default https://<key_vault.name>.vault.azure.net)"),
    "CLOUDFLARE_BASE_URL": ("optional", False, "Cloudflare API base (default https://api.cloudflare.com/client/v4)"),
    "CLOUDFLARE_API_TOKEN": ("optional", True, "Cloudflare API token with Zone > SSL and Certificates > Edit"),
    "KUBERNETES_API_URL": ("optional", False, "Kubernetes API server URL (default: the AKS cluster's, via ARM)"),
    "GITLAB_URL": ("optional", False, "GitLab base URL (default: gitlab.url in platform.yaml)"),
    "GITLAB_TOKEN": ("optional", True, "GitLab project access token (api scope) for merge requests"),
    "GITLAB_WEBHOOK_SECRET": ("optional", True, "shared secret GitLab sends in X-Gitlab-Token"),
    "SLACK_SIGNING_SECRET": ("optional", True, "Slack app signing secret for ChatOps requests"),
    "TEAMS_WEBHOOK_SECRET": ("optional", True, "Teams outgoing webhook security token (base64) for ChatOps requests"),
    "CHATOPS_ACCESS_FILE": ("optional", False, "who may do what in chat (default infra/chatops-access.yaml)"),
    "CHATOPS_APPROVAL_MINUTES": ("optional", False, "minutes a production approval request stays open (default 15)"),
    "CHAT_NOTIFY_SLACK_WEBHOOK_URL": ("optional", True, "Slack incoming webhook URL for notifications"),
    "CHAT_NOTIFY_TEAMS_WEBHOOK_URL": ("optional", True, "Teams Workflows webhook URL for notifications and ChatOps "
                                      "answers (Office 365 connector URLs are refused: retired)"),
    "TLS_CA_BUNDLE": ("optional", False, "CA bundle (PEM path) to trust instead of the system's (the sandbox CA)"),
    "TLS_EXTRA_CA_PEM": ("optional", False, "CA certificates (PEM text) trusted in addition to the public roots (or "
                         "TLS_CA_BUNDLE): the cluster's internal CA, a Key Vault reference in Azure"),
    "SDK_MAX_RETRIES": ("optional", False, "retries inside each SDK call before our own retry policy (default 3)"),
    "HTTP_TIMEOUT_SECONDS": ("optional", False, "timeout for one call to an external API (default 30)"),
    "LOG_LEVEL": ("optional", False, "DEBUG, INFO, WARNING or ERROR (default INFO)"),
    "AUDIT_RETENTION_DAYS": (
        "optional", False, "days the audit log keeps a record; the hourly housekeeping deletes older (default 400)",
    ),
    "MCP_MUTATING_TOOLS": ("optional", False, "'true': the MCP server (/api/mcp) also lists and runs the changing "
                           "tools (scale, rotate, drift_mr, pause/resume autoscaling); default false: read-only"),
    "DRIFT_DRY_RUN": ("optional", False, "'true': drift checks only report (no merge request, no reconcile); "
                      "default false"),
    "KUBERNETES_VERSION_SOAK_DAYS": ("optional", False, "days dev-uaenorth runs a new Kubernetes minor before the "
                                     "other environments' bump is proposed (default 7)"),
    "OPENCOST_URL": ("optional", False, "OpenCost's API (Service opencost:9003 in monitoring) for `platformctl cost` "
                     "and the monthly cost summary; unset: no cost reports"),
    "OPENCOST_AUDIENCE": ("optional", False, "Entra ID audience (App ID URI) of the token OpenCost's internal route "
                          "requires (platform.yaml cost.opencost.audience); unset: no token sent (port-forward)"),
}


@dataclass(frozen=True)
class Settings:
    env: str
    config_dir: Path
    #: Exactly one of these two is set.
    storage_account: str | None
    storage_connection_string: str | None = field(repr=False)
    credential_mode: str  # "default" | "static"
    arm_endpoint: str
    keyvault_url: str | None
    cloudflare_base_url: str
    cloudflare_api_token: str | None = field(repr=False)
    kubernetes_api_url: str | None = None
    gitlab_url: str | None = None
    gitlab_token: str | None = field(default=None, repr=False)
    gitlab_webhook_secret: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    teams_webhook_secret: str | None = field(default=None, repr=False)
    #: None: infra/chatops-access.yaml in the app.
    chatops_access_file: Path | None = None
    chatops_approval_minutes: float = 15.0
    chat_notify_slack_webhook_url: str | None = field(default=None, repr=False)
    chat_notify_teams_webhook_url: str | None = field(default=None, repr=False)
    tls_ca_bundle: str | None = None
    #: Normalised PEM of CA certificates trusted on top of the roots (shared/tls.py); None: none.
    tls_extra_ca_pem: str | None = field(default=None, repr=False)
    #: Retries the SDK makes on its own for one call; our retry policy wraps that.
    sdk_max_retries: int = 3
    #: Seconds for one HTTP call to an external API.
    http_timeout: float = 30.0
    log_level: str = "INFO"
    #: Days an audit record is kept before housekeeping deletes it.
    audit_retention_days: int = 400
    #: Drift checks report only: no merge request, no Flux reconcile request, nothing recorded.
    drift_dry_run: bool = False
    #: The MCP server lists its changing tools only when this is on (README "MCP server").
    mcp_mutating_tools: bool = False
    #: Days dev-uaenorth runs a new Kubernetes minor before the others are proposed it.
    kubernetes_version_soak_days: float = 7.0
    #: OpenCost's allocation API; None: cost reports are off.
    opencost_url: str | None = None
    #: The audience of the Entra ID token sent to OpenCost (its internal Gateway route); None: no token.
    opencost_audience: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        def url(name: str, default: str | None) -> str | None:
            value = get(name) or default
            if value is not None:
                parsed = urlparse(value)
                if parsed.scheme not in ("http", "https") or not parsed.netloc:
                    # A webhook URL is a credential: never echo a secret setting's value.
                    shown = "a value that is not one" if SETTINGS_DOC.get(name, ("", False))[1] else repr(value)
                    problems.append(f"{name}: expected an http(s) URL, got {shown}")
                elif name == "CHAT_NOTIFY_TEAMS_WEBHOOK_URL" and (parsed.hostname or "").endswith(RETIRED_TEAMS_HOSTS):
                    problems.append(f"{name}: an Office 365 connector webhook ({parsed.hostname}); Microsoft retired "
                                    "them in 2026. In the channel, create a Workflows webhook ('Send webhook alerts "
                                    "to a channel') and set its URL")
            return value.rstrip("/") if value else value

        def number(name: str, default: float, cast: type, low: float, high: float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = cast(raw)
            except ValueError:
                problems.append(f"{name}: expected a number in [{low}, {high}], got {raw!r}")
                return default
            if not low <= value <= high:
                problems.append(f"{name}: expected a number in [{low}, {high}], got {raw!r}")
            return value

        platform_env = get("PLATFORM_ENV")
        if platform_env is None:
            problems.append(f"PLATFORM_ENV: required, one of {', '.join(ENVIRONMENTS)}")
        elif platform_env not in ENVIRONMENTS:
            problems.append(f"PLATFORM_ENV: expected one of {', '.join(ENVIRONMENTS)}, got {platform_env!r}")

        config_dir = Path(get("PLATFORM_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
        if not config_dir.is_dir():
            problems.append(f"PLATFORM_CONFIG_DIR: {config_dir} is not a folder")

        account = get("PLATFORM_STORAGE_ACCOUNT")
        connection = get("PLATFORM_STORAGE_CONNECTION_STRING")
        if bool(account) == bool(connection):
            problems.append(
                "PLATFORM_STORAGE_ACCOUNT or PLATFORM_STORAGE_CONNECTION_STRING: set exactly one "
                "(an account name in Azure, a connection string such as UseDevelopmentStorage=true locally)"
            )
        if account and not (3 <= len(account) <= 24 and account.isalnum() and account.islower()):
            problems.append(f"PLATFORM_STORAGE_ACCOUNT: expected 3-24 lower-case letters and digits, got {account!r}")

        mode = get("AZURE_CREDENTIAL") or "default"
        if mode not in ("default", "static"):
            problems.append(f"AZURE_CREDENTIAL: expected 'default' or 'static', got {mode!r}")

        ca = get("TLS_CA_BUNDLE")
        if ca and not Path(ca).is_file():
            problems.append(f"TLS_CA_BUNDLE: {ca} is not a file")
        extra_ca = get("TLS_EXTRA_CA_PEM")
        if extra_ca == tls.PLACEHOLDER or (extra_ca or "").startswith("@Microsoft.KeyVault("):
            # Terraform's value until external-secrets pushes the internal CA, or a Key Vault reference App
            # Service could not resolve (it then passes the reference text): calls to internal hosts fail TLS
            # (a TemporaryError, logged) while everything else runs; refusing to start would stop the whole app.
            extra_ca = None
        elif extra_ca:
            try:
                extra_ca = tls.parse_extra_ca_pem(extra_ca)
            except ValueError as exc:
                problems.append(f"TLS_EXTRA_CA_PEM: {exc}")
                extra_ca = None

        teams_secret = get("TEAMS_WEBHOOK_SECRET")
        if teams_secret:
            import base64
            import binascii

            try:
                base64.b64decode(teams_secret, validate=True)
            except (binascii.Error, ValueError):
                problems.append("TEAMS_WEBHOOK_SECRET: expected the base64 security token Teams showed when the "
                                "outgoing webhook was created")
        access_file = get("CHATOPS_ACCESS_FILE")
        if access_file and not Path(access_file).is_file():
            problems.append(f"CHATOPS_ACCESS_FILE: {access_file} is not a file")

        level = (get("LOG_LEVEL") or "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {level!r}")

        settings = cls(
            env=platform_env or "",
            config_dir=config_dir,
            storage_account=account,
            storage_connection_string=connection,
            credential_mode=mode,
            arm_endpoint=url("ARM_ENDPOINT", "https://management.azure.com") or "",
            keyvault_url=url("KEYVAULT_URL", None),
            cloudflare_base_url=url("CLOUDFLARE_BASE_URL", "https://api.cloudflare.com/client/v4") or "",
            cloudflare_api_token=get("CLOUDFLARE_API_TOKEN"),
            kubernetes_api_url=url("KUBERNETES_API_URL", None),
            gitlab_url=url("GITLAB_URL", None),
            gitlab_token=get("GITLAB_TOKEN"),
            gitlab_webhook_secret=get("GITLAB_WEBHOOK_SECRET"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            teams_webhook_secret=teams_secret,
            chatops_access_file=Path(access_file) if access_file else None,
            chatops_approval_minutes=float(number("CHATOPS_APPROVAL_MINUTES", 15.0, float, 1, 1440)),
            chat_notify_slack_webhook_url=url("CHAT_NOTIFY_SLACK_WEBHOOK_URL", None),
            chat_notify_teams_webhook_url=url("CHAT_NOTIFY_TEAMS_WEBHOOK_URL", None),
            tls_ca_bundle=ca,
            tls_extra_ca_pem=extra_ca,
            sdk_max_retries=int(number("SDK_MAX_RETRIES", 3, int, 0, 10)),
            http_timeout=float(number("HTTP_TIMEOUT_SECONDS", 30.0, float, 1, 230)),
            log_level=level,
            audit_retention_days=int(number("AUDIT_RETENTION_DAYS", 400, int, 1, 3650)),
            drift_dry_run=(get("DRIFT_DRY_RUN") or "false").lower() in ("1", "true", "yes"),
            mcp_mutating_tools=(get("MCP_MUTATING_TOOLS") or "false").lower() in ("1", "true", "yes"),
            kubernetes_version_soak_days=float(number("KUBERNETES_VERSION_SOAK_DAYS", 7.0, float, 0, 365)),
            opencost_url=url("OPENCOST_URL", None),
            opencost_audience=get("OPENCOST_AUDIENCE"),
        )
        for secret in (connection, settings.cloudflare_api_token, settings.gitlab_token,
                       settings.gitlab_webhook_secret, settings.slack_signing_secret, settings.teams_webhook_secret,
                       settings.chat_notify_slack_webhook_url, settings.chat_notify_teams_webhook_url):
            logs.register_secret(secret)
        if problems:
            raise ConfigError(problems)
        return settings

    def configured(self) -> dict[str, bool]:
        """Which optional integrations have what they need (for health); never the values."""
        return {
            "storage": True,
            "cloudflare": bool(self.cloudflare_api_token),
            "gitlab": bool(self.gitlab_token),
            "gitlab_webhooks": bool(self.gitlab_webhook_secret),
            "slack": bool(self.slack_signing_secret),
            "teams": bool(self.teams_webhook_secret),
            "chat_notify": bool(self.chat_notify_slack_webhook_url or self.chat_notify_teams_webhook_url),
        }
