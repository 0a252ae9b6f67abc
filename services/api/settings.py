"""API gateway settings (``ABM_`` prefix)."""

from __future__ import annotations

from pydantic import Field

from services.kit.settings import CommonSettings


class ApiSettings(CommonSettings):
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_token_cache_s: float = Field(
        default=30.0, ge=0, description="Token lookup cache (revocation lag)."
    )
    api_detail_cache_mb: float = Field(
        default=64.0,
        ge=0,
        description="Memory for rendered account details, served to pollers without the "
        "database; kept fresh by PostgreSQL notifications (0, or SQLite: no cache).",
    )
    api_detail_listener_check_s: float = Field(
        default=1.0,
        gt=0,
        description="How often the change listener's connection is checked. A connection "
        "closed is noticed at once; one gone silent (a network cut) within twice this, "
        "which bounds how stale a detail can be served then; the cache is emptied then.",
    )
    api_page_default: int = Field(default=50, ge=1, le=500, description="Items per page by default")
    api_rate_limit_per_minute: int = Field(
        default=1200, ge=1, description="Sustained requests per minute per token."
    )
    api_rate_limit_burst: int = Field(default=120, ge=1, description="Requests a token may burst.")
    api_stream_poll_s: float = Field(
        default=0.25,
        gt=0,
        description="How often the streams' change tail reads the change log when no commit "
        "was announced (on PostgreSQL a commit wakes it at once; SQLite announces none).",
    )
    api_stream_buffer: int = Field(
        default=4096,
        ge=1,
        description="Changes the tail keeps in memory: streams within them are served from "
        "memory, streams further behind read the database until they catch up.",
    )
    api_write_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest wait for the broker to acknowledge a write."
    )
    api_webhooks_enabled: bool = Field(default=True, description="Run the webhook dispatcher.")
    api_webhook_poll_s: float = Field(default=0.5, gt=0)
    api_webhook_timeout_s: float = Field(default=5.0, gt=0, description="Per delivery attempt.")
    api_webhook_backoff_s: float = Field(default=2.0, gt=0, description="First retry delay.")
    api_webhook_max_backoff_s: float = Field(default=3600.0, gt=0)
    api_webhook_max_attempts: int = Field(default=12, ge=1)
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks reach loopback, private, link-local and other internal "
        "addresses (receivers on this machine or network); dev mode implies it. Off, a "
        "write token could probe the internal network through the delivery log.",
    )

    @property
    def webhooks_reach_private_targets(self) -> bool:
        """Whether webhook URLs may point into the internal network: when allowed, or in
        dev mode (`abm up`, whose receivers run on 127.0.0.1)."""
        return self.webhook_allow_private_targets or self.dev_mode
