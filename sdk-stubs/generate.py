"""Generate the SDK stubs in sdk-stubs/ from proto/. The only writer of sdk-stubs/.

Usage: python sdk-stubs/generate.py [--out DIR]

Python stubs come from grpcio-tools (its bundled protoc and gRPC plugin), so
the output depends only on the grpcio-tools version pinned in pyproject.toml.
Other languages get a generator function of their own here, beside python().
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTOS = ("inference/grpc_service.proto",)
PACKAGE_DOC = '"""Generated from proto/inference by sdk-stubs/generate.py. Do not edit."""\n'


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "sdk-stubs")
    args = parser.parse_args()
    python(args.out)


if __name__ == "__main__":
    main()
