"""Bounded label values for metrics and span names, so that a hostile client cannot grow them. Pure: no I/O.

A metric keeps one series per label combination, so a label taken from the
wire (a gRPC method path, a REST model name) needs a bound. Names known up
front (the contract's methods, the configured models) always keep their own
value; the first `limit` other names seen are admitted too, and every later
one, or one longer than `max_length`, reads "other".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

OTHER: Final = "other"


class BoundedNames:
    def __init__(self, known: Iterable[str] = (), *, limit: int = 100, max_length: int = 200) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self._admitted: set[str] = set(known)
        self._room = limit
        self._max_length = max_length

    def __call__(self, name: str) -> str:
        if name in self._admitted:
            return name
        if self._room <= 0 or len(name) > self._max_length:
            return OTHER
        self._room -= 1
        self._admitted.add(name)
        return name


def split_method(path: str) -> tuple[str, str]:
    """A gRPC method path as (service, method): "/pkg.Service/Method" -> ("pkg.Service", "Method").

    A path of another shape keeps its whole text as the method, with an empty service.
    """
    service, sep, method = path.removeprefix("/").rpartition("/")
    if not sep or not service or not method:
        return "", path
    return service, method


class MethodLabels:
    """A gRPC method path as bounded (service, method) labels; both are "other" once past the bound."""

    def __init__(self, known: Iterable[str] = (), *, limit: int = 100, max_length: int = 200) -> None:
        self._names = BoundedNames(known, limit=limit, max_length=max_length)
        self._labels: dict[str, tuple[str, str]] = {}

    def __call__(self, path: str) -> tuple[str, str]:
        labels = self._labels.get(path)
        if labels is not None:
            return labels
        if self._names(path) == OTHER:
            return OTHER, OTHER  # not cached: the cache holds admitted paths only
        labels = split_method(path)
        self._labels[path] = labels
        return labels
