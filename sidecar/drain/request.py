"""Asks a running sidecar to drain, over its loopback admin listener: what `ai-sidecar drain` does.

Knows the admin API's path and the settings that place the listener, nothing of the drain itself.
Blocking (urllib): it runs as a short-lived preStop process, never inside the sidecar's loop.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping

from sidecar.config import SETTINGS
from sidecar.config_values import Invalid
from sidecar.core.errors import ConfigError

_DEFAULTS = {s.name: s for s in SETTINGS}


def admin_address(environ: Mapping[str, str]) -> str:
    """HOST:PORT of this pod's sidecar admin listener, from the same SIDECAR_* variables `run` reads."""
    values = []
    for name in ("admin_host", "admin_port"):
        setting = _DEFAULTS[name]
        raw = environ.get(setting.env, str(setting.default))
        try:
            values.append(setting.kind.parse(raw))
        except Invalid as e:
            raise ConfigError(f"{setting.env}: {e}") from None
    host, port = str(values[0]), int(values[1])
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def request_drain(address: str, *, wait: bool) -> str:
    """POST /admin/drain; with `wait`, block until the sidecar answers that the drain is done."""
    url = f"http://{address}/admin/drain" + ("?wait=true" if wait else "")
    request = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=None if wait else 10.0) as reply:
            return str(reply.read().decode(errors="replace"))
    except urllib.error.HTTPError as e:
        raise OSError(f"answered {e.code}: {e.read().decode(errors='replace')}") from None
