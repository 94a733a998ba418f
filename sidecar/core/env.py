"""The names of the environment variables the sidecar reads that are not settings, and the prefix all share.

Each setting's own variable is `PREFIX` + its name (config.py). The others are declared here,
below both config.py and the relay, so that the configuration accepts them as known and the
code that reads them names them the same. Reads nothing itself.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "SIDECAR_"
# The YAML file of settings, as --config names it.
CONFIG_FILE: Final = "SIDECAR_CONFIG"
# Set (to anything but the empty string), the relay's wire machinery runs its pure-Python modules
# even where a compiled build is there, as AIOHTTP_NO_EXTENSIONS does for aiohttp.
NO_EXTENSIONS: Final = "SIDECAR_NO_EXTENSIONS"
# Every SIDECAR_ variable that is not a setting's.
NOT_SETTINGS: Final = frozenset({CONFIG_FILE, NO_EXTENSIONS})
