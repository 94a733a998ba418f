"""The injecting webhook's HTTPS server (aiohttp): POST /inject and /inject/namespace, /livez, /readyz.

An adapter: it decodes nothing itself (review.py does), maps a malformed review to 400 with its
message, and serves TLS from a certificate and key it reloads when their files change (cert-manager
renews a Secret; the kubelet swaps the mounted files). Knows nothing about pods.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pathlib
import ssl
from collections.abc import Awaitable, Callable, Collection
from typing import Final

from aiohttp import web

from sidecar.inject.review import MalformedReview, answer_review
from sidecar.inject.settings import InjectDefaults

log = logging.getLogger("sidecar.webhook")

# The API server sends one object (at most about 1.5 MiB in etcd) and its old version.
MAX_BODY: Final = 8 * 1024 * 1024
RELOAD_INTERVAL: Final = 5.0


class ReloadingCertificate:
    """One SSLContext whose certificate and key follow two files.

    New handshakes use the new pair once `check` has seen the files change; connections already
    open keep theirs. A pair that does not load (half-written, key and certificate not matching)
    is logged and skipped, and the previous one stays in use.
    """

    def __init__(self, cert: pathlib.Path, key: pathlib.Path) -> None:
        self._cert, self._key = cert, key
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._seen = self._fingerprint()
        self.context.load_cert_chain(cert, key)
        self.reloads = 0

    def _fingerprint(self) -> bytes:
        digest = hashlib.sha256()
        for path in (self._cert, self._key):
            digest.update(path.read_bytes())
        return digest.digest()

    def check(self) -> bool:
        """Reload if the files changed; True if a new pair is now in use."""
        try:
            seen = self._fingerprint()
        except OSError as e:
            log.error("cannot read the webhook's certificate: %s", e)
            return False
        if seen == self._seen:
            return False
        try:
            # Load into a scratch context first: the live one must never hold half a pair.
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self._cert, self._key)
            self.context.load_cert_chain(self._cert, self._key)
        except (ssl.SSLError, OSError) as e:
            log.error("keeping the current certificate: %s and %s do not load: %s", self._cert, self._key, e)
            return False
        self._seen = seen
        self.reloads += 1
        log.info("reloaded the webhook's certificate from %s", self._cert)
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()


class Webhook:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        certificate: ReloadingCertificate,
        defaults: InjectDefaults,
        excluded_namespaces: Collection[str],
        reload_interval: float = RELOAD_INTERVAL,
    ) -> None:
        self._host, self._requested_port, self._port = host, port, 0
        self._certificate = certificate
        self._defaults = defaults
        self._excluded = tuple(excluded_namespaces)
        self._reload_interval = reload_interval
        self._watch: asyncio.Task[None] | None = None
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/inject", self._inject(namespace_opted_in=False))
        app.router.add_post("/inject/namespace", self._inject(namespace_opted_in=True))
        app.router.add_get("/livez", self._ok)
        app.router.add_get("/readyz", self._ok)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        await self._runner.setup()
        context = self._certificate.context
        await web.TCPSite(self._runner, self._host, self._requested_port, ssl_context=context).start()
        self._port = int(self._runner.addresses[0][1])
        self._watch = asyncio.create_task(self._certificate.watch(self._reload_interval), name="cert-reload")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self._runner.cleanup()

    def _inject(self, *, namespace_opted_in: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            if request.content_type != "application/json":
                return _error(415, f"Content-Type must be application/json, not {request.content_type}")
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return _error(413, f"the review is larger than {MAX_BODY} bytes")
            try:
                answer = answer_review(
                    body,
                    self._defaults,
                    excluded_namespaces=self._excluded,
                    namespace_opted_in=namespace_opted_in,
                )
            except MalformedReview as e:
                return _error(400, f"malformed AdmissionReview: {e}")
            return web.json_response(answer)

        return handle

    async def _ok(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def serve_webhook(webhook: Webhook, stop: asyncio.Event) -> int:
    await webhook.start()
    log.info("ai-sidecar webhook serving HTTPS on port %d", webhook.port)
    try:
        await stop.wait()
    finally:
        await webhook.stop()
    return 0
