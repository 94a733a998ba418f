"""Dynamic batching's settings per model, frozen and validated when read. Knows nothing about I/O.

The `batching` section of the inference policy file (docs in README.md, "Dynamic batching"):

    batching:
      - model: digits
        max_batch_size: 32          # rows per batch, at most (KServe's maxBatchSize)
        max_latency: 5ms            # how long the first call of a batch waits for others (maxLatency)
        batch_dimension: 0          # the dimension rows are stacked along
        max_concurrent_batches: 1   # batches at the model at once; more wait, and fill meanwhile
        max_queued: 1024            # calls waiting per model; past it, RESOURCE_EXHAUSTED
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from sidecar.config_section import Section
from sidecar.config_values import Duration, Int, Text


@dataclass(frozen=True, slots=True)
class BatchingRule:
    model: str
    max_batch_size: int = 32
    max_latency: float = 0.005
    batch_dimension: int = 0
    max_concurrent_batches: int = 1
    max_queued: int = 1024


def read_batching(sections: list[Section]) -> MappingProxyType[str, BatchingRule]:
    """The rules by model name; raises ConfigError naming the bad key."""
    rules: dict[str, BatchingRule] = {}
    for s in sections:
        rule = BatchingRule(
            model=s.required("model", Text(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a model name")),
            max_batch_size=s.value("max_batch_size", Int(1, 1_000_000), 32),
            max_latency=s.value("max_latency", Duration(positive=True), 0.005),
            batch_dimension=s.value("batch_dimension", Int(0, 16), 0),
            max_concurrent_batches=s.value("max_concurrent_batches", Int(1, 1000), 1),
            max_queued=s.value("max_queued", Int(1, 10_000_000), 1024),
        )
        s.done()
        if rule.model in rules:
            raise s.fail(f"model {rule.model!r} has two batching rules")
        if rule.max_latency > 10:
            raise s.fail(f"max_latency {rule.max_latency:g}s is over 10s: a lone call would wait that long")
        rules[rule.model] = rule
    return MappingProxyType(rules)
