"""Captured messages and the CloudEvents made of them, in KServe's inference logger's format, and the
three ways an event is written: HTTP binary mode, Kafka binary mode, and structured JSON (a file).

What the request path keeps of a message is a `Captured` record: a reference to bytes the call
already holds (or one copy, cut at the size limit) and a few numbers; every string of the event is
made later, off the call path, by `build`. Knows nothing about I/O.

The attributes are KServe's (pkg/logger): type `org.kubeflow.serving.inference.request` or
`.response`, one `id` shared by a call's request and response (the caller's `ce-id` header if it
sent one, as KServe's agent reads it), `source`, and the extensions `inferenceservicename`,
`namespace`, `component`, `endpoint` and `metadata` (the call's metadata as a JSON object of lists).
This sidecar adds, where they apply: `sequence` (a stream's message number; the id is then
`<call id>-<n>`, unique per event), `truncated` and `payloadbytes` (a payload cut at the limit),
`jsonheaderlength` (a REST body with binary tensors, `application/octet-stream`: its JSON's bytes).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Final

from sidecar.capture.policy import EventIdentity, Redaction
from sidecar.core.call import Metadata

SPEC_VERSION: Final = "1.0"
REQUEST_TYPE: Final = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE: Final = "org.kubeflow.serving.inference.response"
JSON: Final = "application/json"
BINARY_REST: Final = "application/octet-stream"  # a REST body whose tensors follow its JSON as bytes


def protobuf_type(message_type: str) -> str:
    """The content type of a protobuf message's bytes, naming its type (the convention protobuf's
    HTTP users share: application/x-protobuf with a messageType parameter)."""
    return f'application/x-protobuf; messageType="{message_type}"'


@dataclass(slots=True)
class CallIds:
    """One captured call: its id (the caller's, or made from a number off the call path), and what
    its events share, made once by the first of them."""

    given: str  # the caller's ce-id, or ""
    number: int
    metadata: str = ""  # the metadata extension, once made

    def id(self, prefix: str) -> str:
        return self.given or f"{prefix}{self.number:012x}"


@dataclass(slots=True)
class Captured:
    """One message of a captured call as the request path hands it over: no parsing, no strings made."""

    call: CallIds
    request: bool
    data: bytes
    offset: int  # bytes of `data` before the message (a gRPC frame prefix); 0 for most transports
    content_type: str
    at: float  # wall-clock seconds when it crossed
    metadata: Metadata
    redaction: Redaction
    seq: int = -1  # message number within a stream; -1 for a unary call
    size: int = 0  # the message's length; more than len(data) - offset when cut
    # A REST body with binary tensors (Triton's extension): the bytes of JSON before them; else -1.
    json_length: int = -1

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data) - self.offset


@dataclass(frozen=True, slots=True)
class CloudEvent:
    attributes: dict[str, str]  # every context attribute but datacontenttype, extensions included
    content_type: str
    data: bytes


def build(c: Captured, identity: EventIdentity, id_prefix: str, body: bytes) -> CloudEvent:
    """The event of a captured message, whose (redacted) payload is `body`."""
    call_id = c.call.id(id_prefix)
    attributes = {
        "specversion": SPEC_VERSION,
        "id": call_id if c.seq < 0 else f"{call_id}-{c.seq}",
        "source": identity.source,
        "type": REQUEST_TYPE if c.request else RESPONSE_TYPE,
        "time": _rfc3339(c.at),
        "inferenceservicename": identity.inference_service,
        "namespace": identity.namespace,
        "component": identity.component,
        "endpoint": identity.endpoint,
        "metadata": c.call.metadata or _shared_metadata(c),
    }
    if c.seq >= 0:
        attributes["sequence"] = str(c.seq)
    if c.truncated:
        attributes["truncated"] = "true"
        attributes["payloadbytes"] = str(c.size)
    if c.json_length >= 0:
        attributes["jsonheaderlength"] = str(c.json_length)  # Inference-Header-Content-Length
    return CloudEvent(attributes, c.content_type, body)


def _shared_metadata(c: Captured) -> str:
    c.call.metadata = metadata_json(c.metadata, c.redaction)
    return c.call.metadata


def metadata_json(metadata: Metadata, redaction: Redaction) -> str:
    """KServe's `metadata` extension: {key: [values]} of the call's metadata, redacted keys left out.
    Binary (-bin) values are base64, as gRPC carries them in HTTP/2."""
    out: dict[str, list[str]] = {}
    for key, value in metadata:
        if key in redaction.metadata or key == "ce-id":
            continue
        text = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        out.setdefault(key, []).append(text)
    # ASCII (non-ASCII as \u escapes): an HTTP header carries it as it is, as KServe's does.
    return json.dumps(out, separators=(",", ":"))


def _rfc3339(at: float) -> str:
    seconds = int(at)
    micros = int((at - seconds) * 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{micros:06d}Z"


# HTTP binary mode (CloudEvents HTTP binding 3.1.3): each attribute a `ce-` header, the data the body.
# Values go as they are when they are printable ASCII, as KServe's agent (CloudEvents' Go SDK) sends
# them and as consumers (the Python SDK among them) read them; only a value an HTTP header could not
# carry is percent-encoded, as the binding's 1.0.2 text asks.
_HEADER_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


def http_headers(event: CloudEvent) -> dict[str, str]:
    headers = {
        f"ce-{k}": v if v.isascii() and v.isprintable() else urllib.parse.quote(v, safe=_HEADER_SAFE)
        for k, v in event.attributes.items()
    }
    headers["content-type"] = event.content_type
    return headers


def kafka_headers(event: CloudEvent) -> list[tuple[str, bytes]]:
    """Kafka binary mode (CloudEvents Kafka binding 3.2): `ce_` headers, UTF-8, and content-type."""
    headers = [(f"ce_{k}", v.encode()) for k, v in event.attributes.items()]
    headers.append(("content-type", event.content_type.encode()))
    return headers


def structured(event: CloudEvent) -> dict[str, object]:
    """The JSON event format (application/cloudevents+json): JSON data inline, other data base64."""
    doc: dict[str, object] = dict(event.attributes)
    doc["datacontenttype"] = event.content_type
    if event.content_type == JSON:
        try:
            doc["data"] = json.loads(event.data)
            return doc
        except ValueError:
            pass  # cut at the size limit: no longer JSON
    doc["data_base64"] = base64.b64encode(event.data).decode()
    return doc
