"""Start the digits model and an ai-sidecar as local processes on free ports (demo, bench, tests)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

REPO = pathlib.Path(__file__).resolve().parents[2]
DIGITS_SERVER = REPO / "examples" / "python" / "digits_server.py"
HOST = "127.0.0.1"
# sidecar/core/env.py's build switch (this module runs without the sidecar package on its path).
NO_EXTENSIONS = "SIDECAR_NO_EXTENSIONS"


def _log_file(prefix: str) -> pathlib.Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
    os.close(fd)  # the child opens it itself
    return pathlib.Path(name)


# Ports handed to servers come from below the kernel's ephemeral range: outgoing connections take
# their local ports from that range, so one of them cannot take a port between the check here and
# the server's bind (as happened with port-0 probes: "address already in use" at start-up).
_LOWEST_PORT = 10000
_pick = random.SystemRandom()


def _ephemeral_low() -> int:
    try:
        return int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on HOST no one listens on now, outside the ephemeral range when there is room."""
    low = _ephemeral_low()
    if low - _LOWEST_PORT >= 1000:
        for _ in range(100):
            port = _pick.randrange(_LOWEST_PORT, low)
            if _bindable(port):
                return port
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log_path: pathlib.Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout:
            self.popen.stdout.close()
        return self.popen.returncode


def _read_line(proc: subprocess.Popen[bytes], prefix: str, timeout: float, log: pathlib.Path) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text()}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
    raise TimeoutError(f"no line starting {prefix!r} within {timeout}s:\n{log.read_text()}")


LISTENING = "digits model listening on "


def start_listening(
    argv: list[str],
    *,
    name: str,
    port_key: str = "grpc",
    startup_timeout: float = 30.0,
    ready_prefix: str = LISTENING,
) -> Proc:
    """Start a model server that prints `digits model listening on HOST:PORT` once it serves
    (every example does, in every language; a server that is no example prints its own
    `ready_prefix` before HOST:PORT); its stderr goes to a log file."""
    log = _log_file(f"{name}-")
    with log.open("ab") as err:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, cwd=REPO)
    proc = Proc(popen, log)
    try:
        line = _read_line(popen, ready_prefix, startup_timeout, log)
    except BaseException:
        proc.stop()
        raise
    proc.ports[port_key] = int(line.rsplit(":", 1)[1])
    return proc


def start_model(*flags: str, port: int = 0, startup_timeout: float = 30.0) -> Proc:
    """The Python digits model on HOST:port (0 picks a free one)."""
    argv = [sys.executable, str(DIGITS_SERVER), "--host", HOST, "--port", str(port), *flags]
    return start_listening(argv, name="digits", startup_timeout=startup_timeout)


def start_sidecar(
    model_port: int,
    *flags: str,
    wait_ready: bool = True,
    app_name: str = "digits",
    env: dict[str, str] | None = None,
    startup_timeout: float = 30.0,
    command: Sequence[str] | None = None,
) -> Proc:
    """A sidecar in front of the model on HOST:model_port, on free ports. `command` runs it
    (default: this interpreter's `python -m sidecar`, i.e. the tree's code), e.g. an installed
    `ai-sidecar` console script."""
    for attempt in range(_START_ATTEMPTS):
        proc = _launch_sidecar(model_port, flags, app_name, env, command)
        try:
            wait_http(proc, "/readyz" if wait_ready else "/livez", startup_timeout)
        except RuntimeError:
            # A port picked free was taken before the sidecar bound it: pick others, once more.
            if attempt + 1 == _START_ATTEMPTS or "address already in use" not in proc.log():
                raise
            continue
        return proc
    raise AssertionError("unreachable")


_START_ATTEMPTS = 3


def _launch_sidecar(
    model_port: int,
    flags: tuple[str, ...],
    app_name: str,
    env: dict[str, str] | None,
    command: Sequence[str] | None,
) -> Proc:
    grpc_port, http_port, admin_port = free_port(), free_port(), free_port()
    egress_grpc, egress_http = free_port(), free_port()
    log = _log_file("sidecar-")
    settings = {
        "app-name": app_name,
        "model-address": f"{HOST}:{model_port}",
        "listen-host": HOST,
        "grpc-port": grpc_port,
        "http-port": http_port,
        "admin-port": admin_port,
        "egress-grpc-port": egress_grpc,
        "egress-http-port": egress_http,
        "probe-interval": "0.2",
        "probe-timeout": "0.5",
        "drain-delay": "0",  # flags given by the caller come later and win
    }
    args = [*(command or (sys.executable, "-m", "sidecar")), "run"]
    for key, value in settings.items():
        args += [f"--{key}", str(value)]
    args += flags
    # The caller's settings never leak in; its build switch does (scripts/test.sh's pure pass).
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_") or k == NO_EXTENSIONS}
    full_env.update(env or {})
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(args, stdout=out, stderr=out, cwd=REPO, env=full_env)
    ports = {
        "grpc": grpc_port,
        "http": http_port,
        "admin": admin_port,
        "egress_grpc": egress_grpc,
        "egress_http": egress_http,
    }
    return Proc(popen, log, ports)


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_http(proc: Proc, path: str, timeout: float, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"sidecar exited with {proc.popen.returncode}:\n{proc.log()}")
        with contextlib.suppress(OSError):
            last = http_get(proc.ports["http"], path, timeout=1.0)
            if last[0] == status:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{path} never answered {status} (last {last!r}):\n{proc.log()}")


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()
