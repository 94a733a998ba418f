"""python -m tests.conformance --target URL --model NAME [pytest arguments]: check one OIP v2 endpoint.

A thin wrapper: it runs pytest on this suite with those options, plus -rs so every skipped
check is listed with its reason. Run it from the repository root.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance",
        description="Check that an OIP v2 endpoint (gRPC or REST) honours the contract.",
        epilog="Other arguments go to pytest, e.g. -k infer, -x, -v, --call-timeout 30. "
        "Without a target, run `pytest tests/conformance` for the built-in matrix.",
    )
    parser.add_argument(
        "--target", required=True, metavar="URL", help="grpc://HOST:PORT or http://HOST:PORT[/PREFIX]"
    )
    parser.add_argument("--model", required=True, metavar="NAME", help="the model to check at that endpoint")
    args, rest = parser.parse_known_args(argv)
    return int(pytest.main([str(SUITE), "-rs", "--target", args.target, "--model", args.model, *rest]))


if __name__ == "__main__":
    sys.exit(main())
