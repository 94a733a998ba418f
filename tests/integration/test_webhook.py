"""The injecting webhook as the API server meets it: a real `ai-sidecar webhook` process over real TLS,
real AdmissionReview v1 JSON, its JSONPatch applied by an independent RFC 6902 library."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import ipaddress
import json
import os
import pathlib
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import jsonpatch
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import REPO
from tests.support.kube import schema_errors
from tests.support.procs import HOST, free_port

pytestmark = pytest.mark.integration
CORPUS = REPO / "tests" / "unit" / "data" / "inject"
OWN_NAMESPACE = "ai-sidecar"


class Pki:
    """A test CA and the server certificates it signs, written where the webhook reads them."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.dir = directory
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ai-sidecar test CA")])
        now = datetime.datetime.now(datetime.UTC)
        minute = datetime.timedelta(minutes=1)
        self.ca = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - minute).not_valid_after(now + 60 * 24 * minute)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )  # fmt: skip
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file, self.key_file = directory / "tls.crt", directory / "tls.key"

    def issue(self) -> int:
        """Write a new server certificate and key (atomically, as the kubelet swaps a Secret); its serial."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        serial = x509.random_serial_number()
        minute = datetime.timedelta(minutes=1)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ai-sidecar-webhook.ai-sidecar.svc")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca.subject).public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - minute).not_valid_after(now + 60 * minute)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("ai-sidecar-webhook.ai-sidecar.svc"), x509.IPAddress(ipaddress.ip_address(HOST)),
            ]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )  # fmt: skip
        self._write(self.cert_file, cert.public_bytes(serialization.Encoding.PEM))
        self._write(
            self.key_file,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        return serial

    def _write(self, path: pathlib.Path, data: bytes) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    pki = Pki(tmp_path_factory.mktemp("pki"))
    pki.issue()
    return pki


@pytest.fixture(scope="module")
def webhook(pki: Pki) -> Iterator[int]:
    port = free_port()
    log = pki.dir / "webhook.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "webhook", "--host", HOST, "--port", str(port),
             "--tls-cert", str(pki.cert_file), "--tls-key", str(pki.key_file), "--reload-interval", "0.1",
             "--exclude-namespace", OWN_NAMESPACE],
            cwd=REPO, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _serves(pki, port):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        assert proc.wait(10) == 0, log.read_text()
        assert "Traceback" not in log.read_text()


def _serves(pki: Pki, port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"https://{HOST}:{port}/readyz", context=pki.client_context(), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
async def post(pki: Pki, webhook: int) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pki.client_context())) as http:

        async def send(review: Any, path: str = "/inject", raw: bytes | None = None) -> tuple[int, Any]:
            body = raw if raw is not None else json.dumps(review).encode()
            async with http.post(
                f"https://{HOST}:{webhook}{path}", data=body, headers={"Content-Type": "application/json"}
            ) as r:
                return r.status, await r.json()

        yield send


def review(pod: dict[str, Any], namespace: str = "vision", uid: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def templates(text: str) -> list[dict[str, Any]]:
    """Every pod template of a manifest stream, in order, as the API server would create pods."""
    found = []
    for doc in yaml.safe_load_all(text):
        for obj in doc.get("items", [doc]) if doc.get("kind") == "List" else [doc]:
            kind, spec = obj["kind"], obj.get("spec", {})
            if kind == "Pod":
                found.append({"metadata": obj["metadata"], "spec": spec})
            elif kind == "CronJob":
                found.append(spec["jobTemplate"]["spec"]["template"])
            elif "template" in spec:
                found.append(spec["template"])
    return found


def pod_from(template: dict[str, Any], name: str) -> dict[str, Any]:
    """The Pod a controller creates from a template: the template's metadata and spec, its own name."""
    metadata = {**copy.deepcopy(template.get("metadata", {})), "generateName": f"{name}-"}
    metadata.pop("name", None)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": copy.deepcopy(template["spec"])}


def cli(path: pathlib.Path, *flags: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "sidecar", "inject", *flags, str(path)],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return proc.stdout


def patched(pod: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    response = answer["response"]
    if "patch" not in response:
        return pod
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(pod, ops)
    return result


@pytest.mark.parametrize(
    ("path", "flags", "route"),
    [(p, (), "/inject") for p in sorted(CORPUS.glob("*.yaml"))]
    + [(CORPUS / "list.yaml", ("--all",), "/inject/namespace")],
    ids=lambda v: v.name if isinstance(v, pathlib.Path) else str(v),
)
async def test_the_webhook_and_the_cli_give_the_same_pods(post, path, flags, route):
    before = templates(path.read_text())
    after = templates(cli(path, *flags))
    assert len(before) == len(after) > 0
    for i, (template, expected) in enumerate(zip(before, after, strict=True)):
        pod = pod_from(template, f"pod{i}")
        request = review(pod)
        status, answer = await post(request, route)
        assert status == 200, answer
        assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
        assert answer["response"]["uid"] == request["request"]["uid"]
        assert answer["response"]["allowed"] is True
        result = patched(pod, answer)
        assert result["spec"] == expected["spec"]
        assert result["metadata"].get("annotations") == expected["metadata"].get("annotations")
        assert result["metadata"].get("labels") == expected["metadata"].get("labels")
        assert schema_errors(result) == ""
        if expected == template:  # not opted in, or injected already: no patch at all
            assert "patch" not in answer["response"]
        else:
            # Injecting the patched pod again is a no-op.
            _, again = await post(review(result), route)
            assert again["response"]["allowed"] is True and "patch" not in again["response"]


async def test_excluded_namespaces_are_never_injected(post):
    pod = pod_from(templates((CORPUS / "pod.yaml").read_text())[0], "p")
    for namespace in ("kube-system", OWN_NAMESPACE):
        status, answer = await post(review(pod, namespace=namespace), "/inject/namespace")
        assert status == 200
        assert answer["response"]["allowed"] is True and "patch" not in answer["response"]
    _, answer = await post(review(pod, namespace="vision"))
    assert "patch" in answer["response"]


async def test_a_pod_that_cannot_be_injected_is_refused_with_a_message(post):
    pod = pod_from(templates((CORPUS / "pod.yaml").read_text())[0], "digits")
    pod["spec"]["containers"].append({"name": "ai-sidecar", "image": "theirs:1"})
    status, answer = await post(review(pod))
    assert status == 200
    response = answer["response"]
    assert response["allowed"] is False and "patch" not in response
    assert response["status"]["code"] == 400
    message = response["status"]["message"]
    assert message.startswith("ai-sidecar cannot inject pod vision/digits-: the pod already has a container")
    bad = pod_from(templates((CORPUS / "pod.yaml").read_text())[0], "digits")
    bad["metadata"]["annotations"]["ai-sidecar.io/log-level"] = "LOUD"
    _, answer = await post(review(bad))
    assert answer["response"]["allowed"] is False
    assert "annotation ai-sidecar.io/log-level" in answer["response"]["status"]["message"]


async def test_a_classic_batch_pod_is_injected_with_a_warning(post):
    cron = templates((CORPUS / "batch.yaml").read_text())[1]
    _, answer = await post(review(pod_from(cron, "eval")))
    assert any("does not complete" in w for w in answer["response"]["warnings"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed AdmissionReview: the body is not JSON"),
        (b"[]", "the body is not a JSON object"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}).encode(),
         'kind AdmissionReview, got apiVersion "admission.k8s.io/v1beta1"'),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
         "request is missing or not an object"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}).encode(),
         "request.uid is missing"),
        (json.dumps(review({"spec": 1}) | {"request": {**review({})["request"], "object": "pod"}}).encode(),
         "request.object is not a Pod object"),
    ],
)  # fmt: skip
async def test_a_malformed_review_gets_400_with_a_message(post, body, message):
    status, answer = await post(None, raw=body)
    assert status == 400
    assert message in answer["error"]


async def _served_serial(pki: Pki, port: int) -> int:
    _, writer = await asyncio.open_connection(HOST, port, ssl=pki.client_context())
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return int(x509.load_der_x509_certificate(der).serial_number)
    finally:
        writer.close()
        await writer.wait_closed()


async def _until_serial(pki: Pki, port: int, serial: int, timeout: float = 10.0) -> None:
    # The webhook tells no one when it reloads: what it serves is the event, polled.
    async with asyncio.timeout(timeout):
        while await _served_serial(pki, port) != serial:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not(pki, webhook, post):
    first = pki.issue()
    await _until_serial(pki, webhook, first)
    second = pki.issue()
    assert second != first
    await _until_serial(pki, webhook, second)
    status, _ = await post(review(pod_from(templates((CORPUS / "pod.yaml").read_text())[0], "p")))
    assert status == 200
    # A key that does not match the certificate: the webhook keeps the pair it has.
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pki._write(pki.key_file, other)
    await asyncio.sleep(0.5)  # several reload intervals
    assert await _served_serial(pki, webhook) == second
    third = pki.issue()
    await _until_serial(pki, webhook, third)
