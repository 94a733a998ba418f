"""nginx as the reference gRPC proxy: a grpc_pass config in a temp dir, nginx in the foreground.

Knows nothing about load or measurement. Run bench/setup.sh first if nginx is missing.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence

from local_stack import HOST, Proc, free_port

# One worker, as the sidecar is one process. Client side: nginx closes a connection after
# keepalive_requests calls (1000 by default since 1.19.7, HTTP/2 included), which would make the
# load generator reconnect every second at 1000 RPS, so the limit is lifted. Upstream side:
# nginx's grpc module carries one call per upstream connection (no multiplexing), so `keepalive`
# is the idle connections kept per worker and must cover the concurrency used.
CONFIG = """\
# Written by bench/nginx_proxy.py.
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    upstream model {{
        server {host}:{model_port};
        keepalive 128;
        keepalive_requests 10000000;
        keepalive_timeout 600s;
    }}
    server {{
        listen {host}:{port} http2;
        location / {{
            grpc_pass grpc://model;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed: run bench/setup.sh")
    return found


def version() -> str:
    out = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=True)
    return out.stderr.strip().removeprefix("nginx version: ")


def start_nginx(
    model_port: int, startup_timeout: float = 10.0, wrapper: Sequence[str] = (), user: str = ""
) -> Proc:
    """nginx on a free loopback port proxying gRPC to `model_port`; its pid is the master's (or that
    of `wrapper`, a command nginx's argv is appended to, such as valgrind's). `user`: the worker's
    (nginx's `user` directive; by default a master started as root drops it to nobody)."""
    prefix = pathlib.Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    # The worker drops root for nobody when nginx starts as root; let it reach its temp paths.
    prefix.chmod(0o755)
    port = free_port()
    conf = prefix / "nginx.conf"
    config = CONFIG.format(prefix=prefix, host=HOST, port=port, model_port=model_port)
    conf.write_text(f"user {user};\n{config}" if user else config)
    # nginx's own error log and anything it prints go to one file, which Proc.log() reads.
    log = prefix / "error.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            # -e: the error log before the config is read, else nginx opens /var/log/nginx's.
            [*wrapper, nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", str(log)],
            stdout=out,
            stderr=out,
        )
    proc = Proc(popen, log, {"grpc": port})
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"nginx exited with {popen.returncode}:\n{proc.log()}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.stop()
    raise TimeoutError(
        f"nginx did not listen on {HOST}:{port} in {startup_timeout}s:\n{proc.log()}"
    )
