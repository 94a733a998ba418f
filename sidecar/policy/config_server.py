"""The policy document from a Spring Cloud Config Server, polled with change detection.

GET {url}/{name}/{profile}[/{label}] answers an Environment: property sources, most specific
first (`digits-prod.yml` before `digits.yml` before `application.yml`), each a flat map of
Spring property names (`ai-sidecar.policy.rate-limits.default.rate: 300`,
`...rbac.rules[0].models[0]: digits`). The keys under `ai-sidecar.policy.` of each source are
unflattened into a document, and the documents merged as Spring binds them: a more specific
source wins key by key, and a list is taken whole from the most specific source that has it.
A change is a new document hash; an unreachable server keeps the active policy (counted, not
a refusal). Knows nothing about what the policy means.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

import aiohttp

from sidecar.governance.active import PolicyStore, document_hash
from sidecar.policy.reader import PolicyError

log = logging.getLogger("sidecar.policy")

PREFIX: Final = "ai-sidecar.policy."
KIND: Final = "config_server"
_PART: Final = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")
_MAX_BODY: Final = 4 << 20


def unflatten(source: Mapping[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    """Spring's flat property names under `prefix` as a nested document."""
    root: dict[str, Any] = {}
    for name, value in source.items():
        if not isinstance(name, str) or not name.startswith(prefix):
            continue
        parts: list[str | int] = []
        for key, index in _PART.findall(name[len(prefix) :]):
            if key:
                parts.append(key)
            elif index.isdigit():
                parts.append(int(index))
            else:
                parts.append(index)  # [a.b]: a map key with dots in it
        if not parts:
            continue
        node: dict[Any, Any] = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PolicyError(f"{name}: {part!r} is both a value and a section")
        node[parts[-1]] = value
    doc: dict[str, Any] = _lists(root, prefix.rstrip("."))
    return doc


def _lists(node: Any, at: str) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(k, int) for k in node):
        keys = sorted(node)
        if keys != list(range(len(keys))):
            raise PolicyError(f"{at}: list indexes {keys} are not 0..{len(keys) - 1}")
        return [_lists(node[k], f"{at}[{k}]") for k in keys]
    if any(isinstance(k, int) for k in node):
        raise PolicyError(f"{at}: mixes list indexes and keys")
    return {k: _lists(v, f"{at}.{k}") for k, v in node.items()}


def merge(specific: Any, general: Any) -> Any:
    if isinstance(specific, dict) and isinstance(general, dict):
        out = dict(general)
        for k, v in specific.items():
            out[k] = merge(v, general[k]) if k in general else v
        return out
    return specific


def document(environment: Mapping[str, Any]) -> dict[str, Any]:
    sources = environment.get("propertySources")
    if not isinstance(sources, list):
        raise PolicyError("the Config Server's answer has no propertySources list")
    doc: dict[str, Any] = {}
    for source in reversed(sources):  # least specific first; each more specific one wins
        values = source.get("source") if isinstance(source, dict) else None
        if isinstance(values, dict):
            doc = merge(unflatten(values), doc)
    return doc


class ConfigServerSource:
    def __init__(
        self, url: str, name: str, profile: str, label: str, store: PolicyStore, *, poll_interval: float
    ) -> None:
        path = "/".join(p for p in (name, profile, label) if p)
        self.endpoint = f"{url.rstrip('/')}/{path}"
        self._store = store
        self._poll = poll_interval
        self._last = ""
        self.version = ""  # the Environment's version (the backing repository's commit), if any

    async def load(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(
                self.endpoint, timeout=aiohttp.ClientTimeout(total=max(1.0, self._poll)),
                headers={"Accept": "application/json"},
            ) as r:  # fmt: skip
                if r.status != 200:
                    raise aiohttp.ClientError(f"answered HTTP {r.status}")
                environment = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            self._store.unreachable(KIND)
            log.warning("policy: Config Server %s: %s; keeping the active policy", self.endpoint, e)
            return False
        try:
            if not isinstance(environment, dict):
                raise PolicyError("the Config Server's answer is not a JSON object")
            doc = document(environment)
        except PolicyError as e:
            return self._store.refuse(self.endpoint, KIND, str(e))
        digest = document_hash(doc)
        if digest == self._last:
            return True
        self._last = digest
        version = environment.get("version")
        self.version = version if isinstance(version, str) else ""
        return self._store.offer(doc, self.endpoint, kind=KIND)

    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            await asyncio.sleep(self._poll)
            await self.load(session)
