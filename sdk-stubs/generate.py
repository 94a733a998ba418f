"""Generate the SDK stubs in sdk-stubs/ from proto/. The only writer of sdk-stubs/.

Usage: python sdk-stubs/generate.py [--out DIR] [--lang python,cpp,php,java]

Python stubs come from grpcio-tools (its bundled protoc and gRPC plugin), so
the output depends only on the grpcio-tools version pinned in pyproject.toml.
C++, PHP and Java stubs come from Debian's protoc with Debian's grpc_cpp_plugin
and grpc_php_plugin, and grpc-java's protoc-gen-grpc-java from the local Maven
repository, at the versions in sdk-stubs/versions.env; scripts/setup-polyglot.sh
installs them. A missing tool or another version stops generation with a message
saying so, since the committed output is only reproducible with those versions.
None of the generators writes a timestamp, so regenerating changes nothing.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import NoReturn

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTOS = ("inference/grpc_service.proto",)
PACKAGE_DOC = '"""Generated from proto/inference by sdk-stubs/generate.py. Do not edit."""\n'
VERSIONS = ROOT / "sdk-stubs" / "versions.env"
SETUP = "scripts/setup-polyglot.sh"


def python(out: pathlib.Path) -> None:
    from grpc_tools import protoc  # imported here: only the generator needs it

    target = out / "python"
    (target / "inference").mkdir(parents=True, exist_ok=True)
    for proto in PROTOS:
        args = [
            "protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={target}",
            f"--pyi_out={target}",
            f"--grpc_python_out={target}",
            proto,
        ]
        if protoc.main(args) != 0:
            sys.exit(f"protoc failed on {proto}")
    (target / "inference" / "__init__.py").write_text(PACKAGE_DOC)
    (target / "inference" / "py.typed").write_text("")


def cpp(out: pathlib.Path) -> None:
    """Messages (protoc --cpp_out) and services (grpc_cpp_plugin) under cpp/inference/."""
    protoc, plugin = _protoc(), _debian_grpc_plugin("grpc_cpp_plugin")
    target = _fresh(out / "cpp")
    _run(protoc, f"--cpp_out={target}", f"--plugin=protoc-gen-grpc={plugin}", f"--grpc_out={target}")


def php(out: pathlib.Path) -> None:
    """Messages (protoc --php_out), client and server stubs (grpc_php_plugin) under php/."""
    protoc, plugin = _protoc(), _debian_grpc_plugin("grpc_php_plugin")
    target = _fresh(out / "php")
    _run(
        protoc,
        f"--php_out={target}",
        f"--plugin=protoc-gen-grpc={plugin}",
        f"--grpc_out=generate_server:{target}",
    )


def java(out: pathlib.Path) -> None:
    """Messages (protoc --java_out) and services (protoc-gen-grpc-java) under java/."""
    protoc = _protoc()
    version = _versions()["GRPC_JAVA_VERSION"]
    name = f"protoc-gen-grpc-java-{version}-linux-x86_64.exe"
    repository = pathlib.Path(os.environ.get("MAVEN_REPO_LOCAL", pathlib.Path.home() / ".m2/repository"))
    fetched = repository / "io/grpc/protoc-gen-grpc-java" / version / name
    if not fetched.is_file():
        _missing(f"protoc-gen-grpc-java {version} is not in the Maven repository ({fetched})")
    target = _fresh(out / "java")
    # Maven stores the binary without the execute bit; run a private executable copy.
    with tempfile.TemporaryDirectory(prefix="protoc-gen-grpc-java-") as scratch:
        plugin = pathlib.Path(scratch) / "protoc-gen-grpc-java"
        shutil.copyfile(fetched, plugin)
        plugin.chmod(0o755)
        _run(
            protoc,
            f"--java_out={target}",
            f"--plugin=protoc-gen-grpc-java={plugin}",
            f"--grpc-java_out={target}",
        )


GENERATORS: dict[str, Callable[[pathlib.Path], None]] = {
    "python": python,
    "cpp": cpp,
    "php": php,
    "java": java,
}


def _versions() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in VERSIONS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _missing(what: str) -> NoReturn:
    sys.exit(f"generate.py: {what}; run {SETUP} (as root) to install it")


def _fresh(target: pathlib.Path) -> pathlib.Path:
    # One generated file per message (Java, PHP): a message removed from the proto must not
    # leave its old file behind.
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    return target


def _debian_grpc_plugin(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        _missing(f"{name} not found (Debian package protobuf-compiler-grpc)")
    expected = _versions()["GRPC_DEBIAN_VERSION"]
    try:
        found = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "protobuf-compiler-grpc"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    except FileNotFoundError:  # not Debian: the plugin's version cannot be told
        found = ""
    if not found.startswith(f"{expected}-"):
        _missing(f"{name} must be protobuf-compiler-grpc {expected}, found {found or 'none'!r}")
    return path


def _protoc() -> str:
    """Debian's protoc at the version in versions.env; checked before any output is touched."""
    protoc = shutil.which("protoc")
    if protoc is None:
        _missing("protoc not found (Debian package protobuf-compiler)")
    expected = f"libprotoc {_versions()['PROTOC_VERSION']}"
    found = subprocess.run([protoc, "--version"], capture_output=True, text=True, check=True).stdout
    if found.strip() != expected:
        _missing(f"{protoc} is {found.strip()!r}, the stubs need {expected!r}")
    return protoc


def _run(protoc: str, *args: str) -> None:
    done = subprocess.run([protoc, f"-I{PROTO_DIR}", *args, *PROTOS], check=False)
    if done.returncode != 0:
        sys.exit(f"protoc failed on {', '.join(PROTOS)} ({' '.join(args)})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "sdk-stubs")
    parser.add_argument(
        "--lang",
        default=",".join(GENERATORS),
        help=f"comma-separated subset of {', '.join(GENERATORS)} (default: all)",
    )
    args = parser.parse_args(argv)
    languages = [name.strip() for name in args.lang.split(",") if name.strip()]
    unknown = [name for name in languages if name not in GENERATORS]
    if unknown:
        parser.error(f"--lang {unknown[0]!r} is not one of {', '.join(GENERATORS)}")
    for name in languages:
        GENERATORS[name](args.out)


if __name__ == "__main__":
    main()
