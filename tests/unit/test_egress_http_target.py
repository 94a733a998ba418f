"""Which service an HTTP egress request names (sidecar/egress/http_target.py)."""

from __future__ import annotations

import pytest

from sidecar.egress.http_target import Refusal, Target, http_target

PORT = 15080


def target(method: str, request_target: str, *hosts: str, listen_host: str = "127.0.0.1") -> Target | Refusal:
    return http_target(method, request_target, hosts, listen_host=listen_host, listen_port=PORT)


@pytest.mark.parametrize(
    "host",
    [None, "127.0.0.1:15080", "127.0.0.1", "localhost:15080", "LOCALHOST", "egress.localhost",
     "[::1]:15080", "10.1.2.3:15080", "localhost."],
)  # fmt: skip
def test_a_host_naming_the_listener_or_none_leaves_the_path_prefix_to_name_the_service(host):
    hosts = () if host is None else (host,)
    got = http_target("POST", "/ocr/v2/models/x/infer?a=1", hosts, listen_host="127.0.0.1", listen_port=PORT)
    assert got == Target("ocr", "/v2/models/x/infer?a=1", "path")


def test_the_listen_host_by_name_is_the_listener_too():
    got = target("GET", "/ocr/v2", "egress-host:15080", listen_host="egress-host")
    assert got == Target("ocr", "/v2", "path")


@pytest.mark.parametrize("host", ["ocr", "ocr:15080", "OCR", "ocr.", "ocr:1"])
def test_a_host_naming_a_service_names_it_and_the_whole_path_goes_to_it(host):
    assert target("GET", "/v2/models/x", host) == Target("ocr", "/v2/models/x", "host")


def test_the_host_wins_over_a_path_prefix_that_could_name_a_service_too():
    assert target("GET", "/digits/v2/models/x", "ocr") == Target("ocr", "/digits/v2/models/x", "host")


@pytest.mark.parametrize(
    ("request_target", "expected"),
    [
        ("http://ocr/v2/models/a%2Fb/infer?x=1", Target("ocr", "/v2/models/a%2Fb/infer?x=1", "proxy")),
        ("http://ocr:15080/v2", Target("ocr", "/v2", "proxy")),
        ("HTTP://Ocr./v2", Target("ocr", "/v2", "proxy")),
        ("http://ocr", Target("ocr", "/", "proxy")),
        ("http://ocr?x=1", Target("ocr", "/?x=1", "proxy")),
    ],
)
def test_an_absolute_form_target_names_the_service_by_its_host_port_ignored(request_target, expected):
    assert target("POST", request_target) == expected
    host = request_target.split("/")[2].split("?")[0]
    assert target("POST", request_target, host) == expected  # as clients send it, Host equal to the target


def test_an_absolute_form_target_naming_the_egress_itself_is_read_by_path():
    assert target("GET", "http://127.0.0.1:15080/ocr/v2", "127.0.0.1:15080") == Target("ocr", "/v2", "path")
    assert target("GET", "http://localhost:15080/ocr/v2") == Target("ocr", "/v2", "path")


@pytest.mark.parametrize(
    "request_target",
    ["http://127.0.0.1:9000/v2", "http://localhost/v2", "http://10.0.0.5/v2", "http://[::1]:8080/v2",
     "http://169.254.169.254/latest/meta-data"],
)  # fmt: skip
def test_an_absolute_form_target_naming_any_other_address_is_refused_as_no_service(request_target):
    got = target("GET", request_target)
    assert isinstance(got, Refusal) and got.status == 403
    assert "names an address, not a service" in got.message and request_target in got.message


def test_connect_is_refused_with_405_naming_it():
    got = target("CONNECT", "ocr:443", "ocr:443")
    assert isinstance(got, Refusal) and got.status == 405
    assert got.message.startswith("egress: CONNECT ocr:443 refused") and "tunnel" in got.message


@pytest.mark.parametrize(
    ("method", "request_target", "hosts", "status", "words"),
    [
        ("GET", "https://ocr/v2", ("ocr",), 400, "only http:// targets"),
        ("GET", "http://user:pw@ocr/v2", ("ocr",), 400, "user information"),
        ("GET", "http:///v2", (), 400, "names no host"),
        ("GET", "http://ocr/v2", ("digits",), 400, "ambiguous request: the target http://ocr/v2 names 'ocr'"),
        ("GET", "/v2", ("ocr", "digits"), 400, "2 Host headers"),
        ("GET", "*", ("ocr",), 400, "neither a path nor an http:// URL"),
        ("GET", "/", ("127.0.0.1",), 404, "name the service"),
        ("GET", "/?x=1", (), 404, "name the service"),
        ("GET", "/v2", ("o cr",), 400, "'o cr' is not a service name"),
        ("GET", "/v2", ("ocr:1:2",), 400, "is not a service name"),
        ("GET", "/dig%69ts/v2", (), 400, "'dig%69ts' is not a service name"),
        ("GET", "http://-ocr/v2", (), 400, "'-ocr' is not a service name"),
    ],
)
def test_malformed_or_ambiguous_requests_are_refused_with_a_client_error_naming_the_part(
    method, request_target, hosts, status, words
):
    got = http_target(method, request_target, hosts, listen_host="127.0.0.1", listen_port=PORT)
    assert isinstance(got, Refusal) and got.status == status
    assert words in got.message, got.message


def test_a_path_prefix_alone_goes_to_the_services_root():
    assert target("GET", "/ocr") == Target("ocr", "/", "path")
    assert target("GET", "/ocr?x=1") == Target("ocr", "/?x=1", "path")
    assert target("GET", "/ocr/") == Target("ocr", "/", "path")


def test_long_targets_are_cut_short_in_messages():
    got = target("GET", "https://ocr/" + "x" * 500)
    assert isinstance(got, Refusal) and len(got.message) < 300
