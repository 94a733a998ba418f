"""The `ai-sidecar` command as a user meets it: real `python -m sidecar` processes, no sockets."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from sidecar import __version__
from sidecar.cli import settings_markdown
from sidecar.config import SETTINGS

REQUIRED = ["--app-name", "digits", "--model-address", "127.0.0.1:8001"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(extra)
    return env


def sidecar(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_config_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ai-sidecar: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_every_setting_with_its_env_var_and_default():
    proc = sidecar("--help")
    assert proc.returncode == 0
    for s in SETTINGS:
        line = next(line for line in proc.stdout.splitlines() if f" {s.flag} " in line)
        assert s.env in line and line.rstrip().endswith(s.shown_default())
    assert "SIDECAR_CONFIG" in proc.stdout


def test_run_help_documents_every_setting():
    proc = sidecar("run", "--help", env=clean_env(COLUMNS="1000"))
    assert proc.returncode == 0
    assert "--config FILE" in proc.stdout
    for s in SETTINGS:
        line = next(line for line in proc.stdout.splitlines() if line.strip().startswith(f"{s.flag} "))
        assert s.env in line and s.help in line
        assert (f"default: {s.shown_default()}" if not s.required else "required") in line


def test_print_settings_table_prints_the_readme_table_and_exits():
    proc = sidecar("--print-settings-table")
    assert (proc.returncode, proc.stdout) == (0, settings_markdown() + "\n"), proc.stderr
    assert proc.stdout.count("\n| `") == len(SETTINGS)


def test_version():
    proc = sidecar("--version")
    assert (proc.returncode, proc.stdout.strip()) == (0, f"ai-sidecar {__version__}")


def test_console_script_is_installed():
    script = shutil.which("ai-sidecar", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the ai-sidecar console script is not installed beside this interpreter")
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == f"ai-sidecar {__version__}"


def test_a_command_is_required():
    proc = sidecar()
    assert proc.returncode == 2
    assert "required" in proc.stderr


def test_unknown_key_in_config_file(tmp_path: pathlib.Path):
    path = tmp_path / "sidecar.yaml"
    path.write_text("app_name: digits\ngrpc_prot: 9000\n")
    proc = sidecar("run", "--config", str(path), "--model-address", "m:1")
    assert_config_error(proc, f'unknown key "grpc_prot" in {path}', 'did you mean "grpc_port"?')


def test_port_out_of_range():
    proc = sidecar("run", *REQUIRED, "--grpc-port", "70000")
    assert proc.stderr == (
        "ai-sidecar: error: grpc_port: 70000 is out of range 0..65535 (from --grpc-port)\n"
    )
    assert_config_error(proc)


def test_port_out_of_range_from_env():
    proc = sidecar("run", *REQUIRED, env=clean_env(SIDECAR_HTTP_PORT="99999"))
    assert_config_error(proc, "http_port: 99999 is out of range", "(from SIDECAR_HTTP_PORT)")


def test_unreadable_config_file():
    proc = sidecar("run", *REQUIRED, env=clean_env(SIDECAR_CONFIG="/nope.yaml"))
    assert_config_error(proc, "config file /nope.yaml: cannot read: No such file or directory")


def test_invalid_yaml_is_one_line(tmp_path: pathlib.Path):
    path = tmp_path / "sidecar.yaml"
    path.write_text("models: [a,\n  b\nother: {\n")
    assert_config_error(sidecar("run", *REQUIRED, "--config", str(path)), "invalid YAML")


def test_unknown_env_var():
    proc = sidecar("run", *REQUIRED, env=clean_env(SIDECAR_LOGLEVEL="debug"))
    assert_config_error(proc, "SIDECAR_LOGLEVEL", '"SIDECAR_LOG_LEVEL"')


def test_missing_required_setting():
    proc = sidecar("run", "--model-address", "m:1")
    assert_config_error(proc, "app_name is required (--app-name or SIDECAR_APP_NAME)")


def test_unknown_flag_is_an_argparse_usage_error():
    proc = sidecar("run", *REQUIRED, "--grpc-prot", "1")
    assert proc.returncode == 2
    assert "unrecognized arguments: --grpc-prot" in proc.stderr


# `sidecar.app` replaced by a stand-in, so these check only what the CLI does around `serve`.
FAKE_APP = """
import asyncio, logging, sys, types

async def serve(config):
    log = logging.getLogger("sidecar.fake")
    log.debug("first\\nsecond")
    log.info("loop=%s level=%s", type(asyncio.get_running_loop()).__module__, config.log_level)
    if config.app_name == "interrupted":
        raise KeyboardInterrupt
    return 7

app = types.ModuleType("sidecar.app")
app.serve = serve
sys.modules["sidecar.app"] = app
from sidecar.cli import main
main()
"""


def run_with_fake_app(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "fake_sidecar.py"
    script.write_text(FAKE_APP)
    return subprocess.run(
        [sys.executable, str(script), "run", *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_runs_on_uvloop_and_its_code_is_the_exit_status(tmp_path: pathlib.Path):
    proc = run_with_fake_app(tmp_path, *REQUIRED, "--log-level", "debug")
    assert proc.returncode == 7, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr  # one line per record, even a multi-line message
    assert "DEBUG sidecar.fake: first | second" in lines[0]
    assert "INFO sidecar.fake: loop=uvloop level=DEBUG" in lines[1]


def test_log_level_filters_records(tmp_path: pathlib.Path):
    proc = run_with_fake_app(tmp_path, *REQUIRED, "--log-level", "warning")
    assert (proc.returncode, proc.stderr) == (7, "")


def test_keyboard_interrupt_exits_without_a_traceback(tmp_path: pathlib.Path):
    proc = run_with_fake_app(tmp_path, "--app-name", "interrupted", "--model-address", "m:1")
    assert proc.returncode == 130
    assert "Traceback" not in proc.stderr
