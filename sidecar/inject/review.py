"""AdmissionReview v1 for the injecting webhook: a review's JSON in, the answer's JSON out. Pure.

Answers: `allowed` with a base64 JSONPatch (`patchType: JSONPatch`) when the pod was injected;
`allowed` without a patch when it stays as it is (not opted in, already injected, an excluded
namespace, not a Pod CREATE); `allowed: false` with a status message naming the problem when the
pod cannot be injected. A review that is not one raises MalformedReview (the adapter's HTTP 400).
Knows nothing about HTTP or TLS.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping
from typing import Any, Final

from sidecar.inject.patch import pod_patch
from sidecar.inject.pod import Injected, inject_template
from sidecar.inject.settings import InjectDefaults, InjectError

API_VERSION: Final = "admission.k8s.io/v1"
# Never injected, whatever their labels say: the control plane's, and the webhook's own (its pods
# must start while the webhook is down, or it could never come back under failurePolicy Fail).
ALWAYS_EXCLUDED: Final = ("kube-system",)


class MalformedReview(ValueError):
    """The body is not an AdmissionReview v1 request; the message says what is missing."""


def answer_review(
    body: bytes,
    defaults: InjectDefaults,
    *,
    excluded_namespaces: Collection[str],
    namespace_opted_in: bool,
) -> dict[str, Any]:
    """The AdmissionReview response to one request body."""
    request = _request(body)
    uid = request["uid"]
    namespace = request.get("namespace") or ""
    kind = (request.get("kind") or {}).get("kind") if isinstance(request.get("kind"), Mapping) else None
    if kind != "Pod" or request.get("operation", "CREATE") != "CREATE" or request.get("subResource"):
        return _response(uid, allowed=True)
    if namespace in excluded_namespaces or namespace in ALWAYS_EXCLUDED:
        return _response(uid, allowed=True)
    pod = request.get("object")
    if not isinstance(pod, Mapping):
        raise MalformedReview("request.object is not a Pod object")
    try:
        outcome = inject_template(pod, defaults, namespace_opted_in=namespace_opted_in)
    except InjectError as e:
        meta = pod.get("metadata") or {}
        name = meta.get("name") or meta.get("generateName") or ""
        where = f"pod {namespace}/{name}".rstrip("/") if name else f"a pod in {namespace or 'the cluster'}"
        return _response(uid, allowed=False, message=f"ai-sidecar cannot inject {where}: {e}")
    if not isinstance(outcome, Injected):
        return _response(uid, allowed=True)
    patch = pod_patch(pod, outcome.template)
    response = _response(uid, allowed=True)
    response["response"]["patchType"] = "JSONPatch"
    response["response"]["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    if outcome.warnings:
        response["response"]["warnings"] = list(outcome.warnings)
    return response


def _request(body: bytes) -> dict[str, Any]:
    try:
        review = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MalformedReview(f"the body is not JSON: {e}") from None
    if not isinstance(review, dict):
        raise MalformedReview("the body is not a JSON object")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != "AdmissionReview":
        raise MalformedReview(
            f"expected apiVersion {API_VERSION} kind AdmissionReview, got"
            f" apiVersion {json.dumps(review.get('apiVersion'))} kind {json.dumps(review.get('kind'))}"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("request is missing or not an object")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise MalformedReview("request.uid is missing or not a string")
    return request


def _response(uid: str, *, allowed: bool, message: str = "") -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 400, "reason": "BadRequest", "message": message}
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
