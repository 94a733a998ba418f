"""The local stack (real model and sidecar processes) as the tests use it."""

import sys

from tests.support import REPO

sys.path.insert(0, str(REPO / "examples" / "python"))

from local_stack import (
    HOST,
    LISTENING,
    Proc,
    free_port,
    http_get,
    running,
    start_listening,
    start_model,
    start_sidecar,
    wait_http,
)

__all__ = [
    "HOST",
    "LISTENING",
    "Proc",
    "free_port",
    "http_get",
    "running",
    "start_listening",
    "start_model",
    "start_sidecar",
    "wait_http",
]
