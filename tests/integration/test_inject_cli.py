"""`ai-sidecar inject` as a user runs it: files or stdin in, manifests out, errors named, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.support import REPO

pytestmark = pytest.mark.integration
CORPUS = REPO / "tests" / "unit" / "data" / "inject"


def inject(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", "inject", *args],
        cwd=REPO, input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_stdin_and_files_give_the_same_output():
    text = (CORPUS / "list.yaml").read_text()
    from_stdin = inject(stdin=text)
    from_file = inject(str(CORPUS / "list.yaml"))
    assert from_stdin.returncode == 0 and from_file.returncode == 0
    assert from_stdin.stdout == from_file.stdout
    assert "Deployment/nlp injected" in from_file.stderr
    assert "Deployment/legacy (not opted in) unchanged" in from_file.stderr


def test_several_files_are_one_stream_of_documents():
    proc = inject(str(CORPUS / "pod.yaml"), str(CORPUS / "batch.yaml"))
    assert proc.returncode == 0, proc.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(proc.stdout)]
    assert kinds == ["Pod", "Job", "CronJob"]


def test_a_foreign_sidecar_named_container_fails_naming_the_object():
    text = (CORPUS / "pod.yaml").read_text() + "    - {name: ai-sidecar, image: theirs:1}\n"
    proc = inject(stdin=text)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert '<stdin>: Pod/digits-debug: the pod already has a container named "ai-sidecar"' in proc.stderr


def test_flags_set_the_defaults_and_bad_ones_are_refused():
    proc = inject(
        "--image", "registry.example.com/ai-sidecar:9", "--mode", "classic", str(CORPUS / "pod.yaml")
    )
    pod = yaml.safe_load(proc.stdout)
    assert pod["spec"]["containers"][0]["image"] == "registry.example.com/ai-sidecar:9"
    bad = inject("--eureka-url", "ftp://nope", str(CORPUS / "pod.yaml"))
    assert bad.returncode == 2 and "--eureka-url:" in bad.stderr
    missing = inject("/no/such.yaml")
    assert missing.returncode == 1 and "/no/such.yaml: No such file or directory" in missing.stderr
