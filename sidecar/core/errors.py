"""The errors ai-sidecar raises across its own layers. Adapters translate third-party errors into these."""

from __future__ import annotations

from sidecar.core.status import Code


class SidecarError(Exception):
    """A call failed with a status the caller should see, and a message naming what was wrong."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"SidecarError({self.code.name}, {self.message!r})"


class ConfigError(Exception):
    """Configuration is invalid; the message names the key and what is wrong with it."""
