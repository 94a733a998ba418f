"""sidecar/allocator.py on the real glibc: threads that malloc get at most two arenas, unless an operator
set MALLOC_ARENA_MAX. Each case runs in a fresh interpreter, since arenas, once made, stay."""

import json
import os
import pathlib
import platform
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

# Six threads alive at once, each mallocing (a 64 KiB bytearray: above pymalloc's 512 bytes, under
# glibc's mmap threshold), then the arenas counted from malloc_info's XML.
PROGRAM = """
import ctypes, json, os, sys, tempfile, threading
sys.path.insert(0, sys.argv[1])
from sidecar.allocator import cap_arenas
applied = cap_arenas(os.environ) if sys.argv[2] == "cap" else False
THREADS = 6
barrier = threading.Barrier(THREADS + 1)
def work():
    block = bytearray(64 * 1024)
    barrier.wait()  # all alive: none takes over an arena that another thread's exit freed
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(THREADS)]
for t in threads:
    t.start()
barrier.wait()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as f:
    fp = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    arenas = open(f.name).read().count("<heap nr=")
barrier.wait()
for t in threads:
    t.join()
print(json.dumps({"applied": applied, "arenas": arenas}))
"""

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's arenas")


def arenas(mode: str, **env: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(REPO), mode], env=environ, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_without_the_cap_each_thread_that_mallocs_gets_an_arena_of_its_own() -> None:
    # The baseline the cap is measured against: were it already two, the next test would prove nothing.
    assert arenas("plain")["arenas"] == 7  # the main arena and one per thread (limit: 8 per core)


def test_the_cap_holds_the_process_to_two_arenas() -> None:
    assert arenas("cap") == {"applied": True, "arenas": 2}


def test_an_operators_malloc_arena_max_wins() -> None:
    assert arenas("cap", MALLOC_ARENA_MAX="4") == {"applied": False, "arenas": 4}


def test_the_cli_caps_the_arenas_before_it_parses_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    import sidecar.cli

    seen: list[object] = []
    monkeypatch.setattr(sidecar.cli, "cap_arenas", seen.append)
    with pytest.raises(SystemExit):
        sidecar.cli.main(["--version"])  # exits while parsing: the cap came first
    assert seen == [os.environ]
