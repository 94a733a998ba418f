"""The `ai-sidecar` command: parses arguments, sets up logging and the event loop, runs the app.

Knows nothing about what the app does; it is the only place that installs uvloop and runs a loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence

from sidecar import __version__
from sidecar.allocator import cap_arenas
from sidecar.config import CONFIG_ENV, SETTINGS, add_arguments, from_arguments
from sidecar.core.errors import ConfigError

PROG = "ai-sidecar"
USAGE_ERROR = 2  # what argparse exits with, so a bad config fails the same way as a bad flag
INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def main(argv: Sequence[str] | None = None) -> None:
    """Run `ai-sidecar` with `argv` (default: sys.argv[1:]) and exit with its status."""
    # Before grpc or uvloop start a thread: every command is a long-lived process (allocator.py).
    cap_arenas(os.environ)
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command_main
    try:
        code = command(args)
    except ConfigError as e:
        print(f"{PROG}: error: {str(e).replace(chr(10), ' ')}", file=sys.stderr)
        code = USAGE_ERROR
    except KeyboardInterrupt:
        # The app handles SIGINT itself; this is a ^C before its handler was set, or a second one.
        code = INTERRUPTED
    sys.exit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A governance sidecar for inference services behind one OIP v2 contract.",
        epilog=settings_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--print-settings-table",
        action=_PrintAndExit,
        text=settings_markdown,
        help="print every setting of `run` as the Markdown table in README.md, and exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="serve in front of a model server until SIGTERM",
        description=(
            "Serve OIP v2 gRPC and REST in front of a model server until SIGTERM. Each setting"
            " is a flag, a SIDECAR_* environment variable, or a key in the --config YAML file;"
            " flags win over the environment, which wins over the file."
        ),
        allow_abbrev=False,
        formatter_class=_wide_help,
    )
    add_arguments(run)
    run.set_defaults(command_main=_run)
    _add_drain(commands)
    # Imported here: `run` needs neither the manifest walker nor the webhook's imports.
    from sidecar.inject.commands import add_inject, add_webhook

    add_inject(commands)
    add_webhook(commands).set_defaults(command_main=_webhook)
    return parser


def _add_drain(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    drain = commands.add_parser(
        "drain",
        help="ask the sidecar in this pod to drain (a preStop hook)",
        description=(
            "POST /admin/drain to a running sidecar's admin listener. With --wait, return once the"
            " drain is done; that sidecar then waits for SIGTERM instead of exiting."
        ),
        allow_abbrev=False,
    )
    drain.add_argument(
        "--admin-address",
        metavar="HOST:PORT",
        help="the sidecar's admin listener [default: SIDECAR_ADMIN_HOST:SIDECAR_ADMIN_PORT,"
        " or 127.0.0.1:15000]",
    )
    drain.add_argument("--wait", action="store_true", help="return when the drain is done")
    drain.set_defaults(command_main=_drain)


def _drain(args: argparse.Namespace) -> int:
    from sidecar.drain.request import admin_address, request_drain

    address = args.admin_address or admin_address(os.environ)
    try:
        print(request_drain(address, wait=args.wait))
    except OSError as e:
        print(f"{PROG} drain: {address}: {e}", file=sys.stderr)
        return 1
    return 0


def settings_table() -> str:
    """Every setting of `run` with its flag, environment variable and default, for --help."""
    rows = [("flag", "environment", "default")]
    rows += [(f"{s.flag} {s.kind.metavar}", s.env, s.shown_default()) for s in SETTINGS]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [
        f"settings of `{PROG} run` (flags > environment > --config FILE / {CONFIG_ENV} > default;",
        "in the YAML file each key is the setting's name, e.g. grpc_port or grpc-port):",
    ]
    for flag, env, default in rows:
        lines.append(f"  {flag:<{widths[0]}}  {env:<{widths[1]}}  {default}")
    return "\n".join(lines)


SETTINGS_TABLE_HEADER = (
    "| setting (YAML key) | flag | environment | default | meaning |",
    "|---|---|---|---|---|",
)


def settings_markdown() -> str:
    """Every setting of `run` as a Markdown table, the one README.md shows (a test keeps them equal)."""
    rows = list(SETTINGS_TABLE_HEADER)
    for s in SETTINGS:
        shown = s.shown_default() or '""'  # an empty string, as YAML would write it
        default = "**required**" if s.required else f"`{shown}`"
        meaning = s.help.replace("|", "\\|")
        rows.append(f"| `{s.name}` | `{s.flag}` | `{s.env}` | {default} | {meaning} |")
    return "\n".join(rows)


class _PrintAndExit(argparse.Action):
    """Like argparse's version action, for a text made when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, text: Callable[[], str], help: str) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)
        self._text = text

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(self._text())
        parser.exit()


def _wide_help(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, max_help_position=48)


def configure_logging(level: str) -> None:
    """One line per record on stderr: ours at `level` and above, other libraries' at INFO and up.

    Third-party DEBUG stays off even at DEBUG: grpc, for one, logs every event-loop lookup.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    threshold = logging.getLevelNamesMapping()[level]
    logging.basicConfig(level=max(threshold, logging.INFO), handlers=[handler], force=True)
    logging.getLogger("sidecar").setLevel(threshold)


class OneLineFormatter(logging.Formatter):
    """Folds tracebacks and multi-line messages in, so that one record is one line."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " | ")


def _run(args: argparse.Namespace) -> int:
    config = from_arguments(args, os.environ)
    configure_logging(config.log_level)
    # Imported here: the composition root pulls in every transport, none of which --help needs.
    from sidecar.app import serve

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        code: int = runner.run(serve(config))
    return code


def _webhook(args: argparse.Namespace) -> int:
    from sidecar.inject.commands import webhook_main
    from sidecar.inject.settings import InjectError

    configure_logging(args.log_level)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            code: int = runner.run(webhook_main(args))
    except (InjectError, OSError) as e:
        print(f"{PROG} webhook: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    return code


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed; None means asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
