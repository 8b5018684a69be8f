"""The one settings object of a tokenmill server, built from CLI flags and the catalogue (tokenmill.yaml)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from tokenmill.catalog.entry import ModelEntry
from tokenmill.moderation.config import ModerationConfig


class ConfigError(ValueError):
    pass


@dataclass(slots=True)
class ServeSettings:
    models: list[ModelEntry]  # the catalogue: from --config, or the one model the flags describe
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_queued_requests: int = 256
    log_level: str = "info"
    admin_key: str | None = None  # guards /admin/ (default: api_key)
    database_url: str | None = None  # tenants, keys and the ledger (default: SQLite in TOKENMILL_HOME)
    ledger: bool = True  # write a usage record per request
    redis_url: str | None = None  # shared rate-limit counters for several API processes (default: in-process)
    engine_stand_in_tokens: int = 0  # > 0: no model, an instant stand-in answering this many tokens (overhead benchmark)
    moderation: ModerationConfig | None = None  # None: prompts and outputs are not moderated
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse settings that are unsafe or cannot work, saying what to change."""
        if not (self.api_key or self.admin_key) and not is_loopback(self.host):
            raise ConfigError(f"refusing to listen on {self.host} without an API key: anyone who can reach it could use "
                              "the server. Pass --api-key KEY (or set TOKENMILL_API_KEY), or listen on 127.0.0.1.")
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port must be in 1..65535, got {self.port}")
        if not self.models:
            raise ConfigError("no model to serve: pass --model or a --config with a 'models:' list")
        for entry in self.models:
            if entry.replicas < 1:
                raise ConfigError(f"model {entry.name!r}: replicas must be at least 1")
        if self.max_queued_requests < 0:
            raise ConfigError(f"--max-queued-requests must be 0 or more, got {self.max_queued_requests}")


def is_loopback(host: str) -> bool:
    """True if host names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False
