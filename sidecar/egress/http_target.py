"""Which service an HTTP egress request names, and what path it asks that service for. Pure: no I/O.

Three ways to name the service, decided by the request's syntax alone, never
by what discovery holds (so a service that is briefly absent gets a clear
"unknown service", not its path read a different way):

1. Absolute form, as a client with a proxy setting sends it (RFC 9112
   section 3.2.2; curl -x, HTTP_PROXY, Java's -Dhttp.proxyHost):
   `GET http://ocr[:port]/v2/... HTTP/1.1`. The target's host names the
   service and its port is ignored, as Envoy ignores the port of an
   authority. A Host header naming another host is refused as ambiguous.
   A target naming the egress listener itself (a loopback or listen address
   with the listener's port: a client whose proxy setting covers its calls
   to the egress too) is read as origin form. Any other address, and any
   scheme but http, is refused: the egress proxies to services known to
   discovery, never to arbitrary hosts.
2. Origin form with a Host header naming a service (`Host: ocr`,
   `Host: ocr:15080`): the Host names the service, and the whole path goes
   to it as is.
3. Origin form with a Host naming the listener (an IP literal, `localhost`
   or a `*.localhost` name, the listen host), or with no Host at all:
   `/{service}/{path}`, the path's first segment names the service and the
   rest goes to it, as Spring Cloud's sidecar did.

So when both a path prefix and a Host could name a service, the Host wins
whenever it names anything but the listener: `GET /digits/v2 HTTP/1.1` with
`Host: ocr` goes to service "ocr", path `/digits/v2`. CONNECT is refused:
the egress opens no tunnels. Paths and queries cross percent-encoded as
received.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final, Literal

# Eureka application names as Spring Cloud derives them from spring.application.name.
_SERVICE_NAME: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")
_ABSOLUTE: Final = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)$")
# Shown in errors: what a client sent, cut short.
_SHOWN: Final = 80

Form = Literal["path", "host", "proxy"]


@dataclass(frozen=True, slots=True)
class Target:
    service: str
    # What goes to the instance: the path and query, percent-encoded as received, from "/".
    path: str
    # How the service was named: by path prefix, by the Host header, or by an absolute-form target.
    form: Form


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request that names no service the egress may route to: an HTTP status and why."""

    status: int
    message: str


def http_target(
    method: str, target: str, hosts: tuple[str, ...], *, listen_host: str, listen_port: int
) -> Target | Refusal:
    """Read the service and upstream path from a request line and its Host header values."""
    if method.upper() == "CONNECT":
        return Refusal(
            405,
            f"egress: CONNECT {_shown(target)} refused: the HTTP egress opens no tunnels; send plain "
            "http:// requests to a service by name (http://SERVICE/path through the proxy setting)",
        )
    if len(hosts) > 1:
        return Refusal(400, f"egress: {len(hosts)} Host headers; a request has one (RFC 9112 section 3.2)")
    host = hosts[0] if hosts else None
    if target.startswith("/"):
        return _origin_form(target, host, listen_host)
    absolute = _ABSOLUTE.match(target)
    if absolute is None:
        return Refusal(400, f"egress: request target {_shown(target)} is neither a path nor an http:// URL")
    return _absolute_form(absolute, host, listen_host, listen_port)


def _origin_form(target: str, host: str | None, listen_host: str) -> Target | Refusal:
    name = _host_part(host) if host is not None else None
    if name is None or _names_listener(name, listen_host):
        return _by_path(target)
    return _named(name, target, "host", f"Host header {_shown(host or '')}")


def _absolute_form(
    absolute: re.Match[str], host: str | None, listen_host: str, listen_port: int
) -> Target | Refusal:
    url = _shown(absolute.group(0))
    if absolute["scheme"].lower() != "http":
        return Refusal(
            400,
            f"egress: {url}: only http:// targets are proxied (TLS to an instance is its sidecar's "
            "business); call http://SERVICE/path",
        )
    authority = absolute["authority"]
    if "@" in authority:
        return Refusal(400, f"egress: {url}: user information in a request target is not accepted")
    name = _host_part(authority)
    if not name:
        return Refusal(400, f"egress: {url} names no host")
    path = absolute["rest"] or "/"
    if not path.startswith("/"):  # "http://ocr?x=1": the path is empty, the query stays
        path = "/" + path
    named = _host_part(host) if host is not None else None
    if named is not None and named != name:
        return Refusal(
            400,
            f"egress: ambiguous request: the target {url} names {name!r} and the Host header names {named!r}",
        )
    if _names_listener(name, listen_host):
        if _port_part(authority) == listen_port:
            return _by_path(path)  # a proxy setting that also covers calls to the egress itself
        return Refusal(
            403,
            f"egress: {url} names an address, not a service: the egress proxies only to services known "
            "to discovery",
        )
    return _named(name, path, "proxy", f"request target {url}")


def _by_path(target: str) -> Target | Refusal:
    service, slash, rest = target[1:].partition("/")
    if not service or service.startswith("?"):
        return Refusal(
            404,
            "egress: name the service: /{service}/{path} on the egress address, a Host header naming "
            "it, or http://{service}/{path} through a proxy setting",
        )
    service, question, query = service.partition("?")
    path = "/" + rest if slash else "/"
    if question:
        path += "?" + query
    return _named(service, path, "path", f"path {_shown(target)}")


def _named(name: str, path: str, form: Form, source: str) -> Target | Refusal:
    if not _SERVICE_NAME.match(name):
        return Refusal(400, f"egress: {source}: {_shown(name)!r} is not a service name")
    return Target(name.lower(), path, form)


def _host_part(authority: str) -> str | None:
    """The host of `host[:port]` or `[v6]:port`, lower case, without a trailing dot; None if malformed."""
    authority = authority.strip()
    if authority.startswith("["):
        end = authority.find("]")
        return authority[1:end].lower() if end > 0 else None
    host = authority.rpartition(":")[0] if authority.count(":") == 1 else authority
    return host.lower().rstrip(".")


def _port_part(authority: str) -> int:
    tail = authority.rpartition("]")[2] if authority.startswith("[") else authority
    port = tail.rpartition(":")[2] if ":" in tail else ""
    return int(port) if port.isdigit() else 80


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _names_listener(name: str, listen_host: str) -> bool:
    """True for an address or loopback name: one the client dialled, never a service's name."""
    return (
        _is_address(name)
        or name == "localhost"
        or name.endswith(".localhost")  # RFC 6761 section 6.3
        or name == listen_host.lower().strip("[]")
    )


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
