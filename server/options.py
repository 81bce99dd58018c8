"""What the HTTP server takes from the settings: its view of `Settings`, read once."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings

# Room for a multipart envelope around the largest upload.
MULTIPART_ROOM = 1024 * 1024


@dataclass(frozen=True)
class ServerOptions:
    """Keys, Host and Origin rules, the body limit and where `citeqa serve` listens."""

    api_keys: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    cors_origins: tuple[str, ...]
    allow_open: bool
    max_body_bytes: int
    host: str
    port: int
    shutdown_grace: float

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {self.max_body_bytes}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be within 1..65535, got {self.port}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerOptions:
        """The options as the settings give them; a keys setting that yields no key raises
        `ConfigurationError` here (fail closed), not in the first request."""
        return cls(api_keys=tuple(settings.allowed_api_keys()),
                   allowed_hosts=tuple(settings.allowed_host_names()),
                   cors_origins=tuple(settings.allowed_origins()),
                   allow_open=settings.allow_open,
                   max_body_bytes=settings.max_upload_bytes + MULTIPART_ROOM,
                   host=settings.host, port=settings.port,
                   shutdown_grace=settings.shutdown_grace)
