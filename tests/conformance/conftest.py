"""The conformance suite's options and fixtures: which endpoint(s) to check and a client for each.

With --target URL --model NAME every check runs once against that endpoint. Without --target
(the repository's normal test run) every check runs once per entry of the built-in matrix
(matrix.py), which starts the example servers itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import pytest

from tests.conformance import contract
from tests.conformance.client import BINARY_EXTENSION, ENCODINGS, Client, Encoding, connect, transport_of
from tests.conformance.contract import CannotBuild, InferRequest, ModelMeta
from tests.conformance.matrix import MATRIX, Servers, Target, given


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "OIP v2 conformance kit (tests/conformance)")
    group.addoption(
        "--target",
        metavar="URL",
        help="endpoint to check: grpc://HOST:PORT or http://HOST:PORT[/PREFIX]; "
        "without it the built-in matrix runs",
    )
    group.addoption("--model", metavar="NAME", help="model to check at --target (required with --target)")
    group.addoption(
        "--matrix",
        metavar="IDS",
        help=f"comma-separated built-in matrix entries to run (default: {', '.join(t.id for t in MATRIX)})",
    )
    group.addoption(
        "--call-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="deadline of each call (default 10)",
    )


_TARGETS = pytest.StashKey[tuple[Target, ...]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TARGETS] = _targets(config)


def _targets(config: pytest.Config) -> tuple[Target, ...]:
    url = config.getoption("target")
    model = config.getoption("model")
    matrix = config.getoption("matrix")
    if url:
        if matrix:
            raise pytest.UsageError("--matrix selects built-in targets; it cannot be combined with --target")
        if not model:
            raise pytest.UsageError("--target needs --model NAME: the model to check at that endpoint")
        try:
            return (given(url, transport_of(url), model),)
        except ValueError as error:
            raise pytest.UsageError(str(error)) from None
    if model:
        raise pytest.UsageError("--model applies to --target; the built-in matrix knows its models")
    if not matrix:
        return MATRIX
    known = {t.id: t for t in MATRIX}
    wanted = [name.strip() for name in matrix.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise pytest.UsageError(f"--matrix: no entry {', '.join(unknown)}; entries are {', '.join(known)}")
    return tuple(known[name] for name in wanted)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" not in metafunc.fixturenames:
        return
    targets = metafunc.config.stash.get(_TARGETS, None) or _targets(metafunc.config)
    if "encoding" in metafunc.fixturenames:
        pairs = [(t, e) for t in targets for e in ENCODINGS[t.transport]]
        metafunc.parametrize(("target", "encoding"), pairs, ids=[f"{t.id}-{e}" for t, e in pairs])
    else:
        metafunc.parametrize("target", targets, ids=[t.id for t in targets])


class Pool:
    """A client per target, connected on first use; a target that failed to start fails each check alike."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._stack = contextlib.ExitStack()
        self._servers = Servers(self._stack)
        self._clients: dict[str, Client | BaseException] = {}
        self._metadata: dict[str, ModelMeta | BaseException] = {}
        self._extensions: dict[str, tuple[str, ...]] = {}

    def client(self, target: Target) -> Client:
        if target.id not in self._clients:
            try:
                client = connect(target.start(self._servers), self.timeout)
            except (Exception, pytest.skip.Exception) as error:
                self._clients[target.id] = error
            else:
                self._stack.callback(client.close)
                self._clients[target.id] = client
        found = self._clients[target.id]
        if isinstance(found, pytest.skip.Exception):
            pytest.skip(f"target {target.id}: {found.msg}")
        if isinstance(found, BaseException):
            raise RuntimeError(f"target {target.id} did not start: {found}") from found
        return found

    def metadata(self, target: Target) -> ModelMeta:
        """The model's metadata, asked once; the checks build their inputs from it."""
        client = self.client(target)
        if target.id not in self._metadata:
            try:
                self._metadata[target.id] = client.model_metadata(target.model)
            except Exception as error:
                self._metadata[target.id] = error
        found = self._metadata[target.id]
        if isinstance(found, BaseException):
            raise RuntimeError(f"ModelMetadata of {target.model!r} at {target.id} failed: {found}") from found
        return found

    def extensions(self, target: Target) -> tuple[str, ...]:
        """The server's ServerMetadata extensions, asked once (none if it cannot say)."""
        if target.id not in self._extensions:
            try:
                self._extensions[target.id] = self.client(target).server_metadata().extensions
            except Exception:
                self._extensions[target.id] = ()
        return self._extensions[target.id]

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="package")
def pool(pytestconfig: pytest.Config) -> Iterator[Pool]:
    p = Pool(pytestconfig.getoption("call_timeout"))
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def client(pool: Pool, target: Target) -> Client:
    return pool.client(target)


@pytest.fixture
def model(target: Target) -> str:
    return target.model


@pytest.fixture
def meta(pool: Pool, target: Target) -> ModelMeta:
    return pool.metadata(target)


class Requests:
    """Valid requests for the model in the check's encoding, or a skip naming why the kit cannot build one."""

    def __init__(self, meta: ModelMeta, encoding: Encoding, extensions: Sequence[str] = ()) -> None:
        self.meta = meta
        self.encoding = encoding
        self.extensions = tuple(extensions)

    def valid(
        self, batch: int = 1, *, outputs: Sequence[str] = (), id: str = "", version: str = ""
    ) -> InferRequest:
        if self.encoding == "binary" and BINARY_EXTENSION not in self.extensions:
            pytest.skip(
                f"the server does not list {BINARY_EXTENSION} in its ServerMetadata extensions "
                "(Triton's binary tensor extension is optional in OIP REST)"
            )
        try:
            request = contract.valid_request(self.meta, batch, outputs=outputs, id=id, version=version)
        except CannotBuild as error:
            pytest.skip(str(error))
        if self.encoding == "contents":
            for tensor in request.inputs:
                if tensor.datatype not in contract.CONTENTS_FIELD:
                    pytest.skip(
                        f'input "{tensor.name}" is {tensor.datatype}, which has no typed contents field'
                    )
        return request


@pytest.fixture
def requests(pool: Pool, target: Target, meta: ModelMeta, encoding: Encoding) -> Requests:
    return Requests(meta, encoding, pool.extensions(target) if encoding == "binary" else ())
