"""The environment variables that are not settings (sidecar/core/env.py), and the relay's build switch."""

import os
import subprocess
import sys

import pytest

from sidecar.config import load_config
from sidecar.core import env
from sidecar.core.errors import ConfigError
from tests.support import REPO

REQUIRED = ["--app-name", "digits", "--model-address", "127.0.0.1:5000"]


def test_the_relay_switch_is_a_known_variable_and_a_near_miss_is_not():
    config = load_config(REQUIRED, {env.NO_EXTENSIONS: "1", env.CONFIG_FILE: ""})
    assert config.app_name == "digits"
    with pytest.raises(ConfigError, match="unknown environment variable SIDECAR_NO_EXTENSION"):
        load_config(REQUIRED, {"SIDECAR_NO_EXTENSION": "1"})


def test_the_switch_is_read_at_import_and_named_in_what_the_build_says():
    # Whether a compiled build is there or not, the switch forces the pure modules; which build
    # runs without it: tests/unit/test_h2_build.py.
    environ = {k: v for k, v in os.environ.items() if not k.startswith(env.PREFIX)}
    environ[env.NO_EXTENSIONS] = "1"
    code = "from sidecar.h2 import build; print(build.describe())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pure Python (SIDECAR_NO_EXTENSIONS is set)"
