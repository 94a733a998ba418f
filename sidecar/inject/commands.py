"""The `ai-sidecar inject` and `ai-sidecar webhook` commands: their flags, and what each runs.

The CLI front of injection: files or stdin in, injected manifests on stdout (as `linkerd inject`
does), one line per object on stderr. The webhook's loop is run by cli.py, the only module that
runs one.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import signal
import sys
from typing import Final

from sidecar.config_values import Invalid, Urls
from sidecar.inject.settings import DEFAULT_IMAGE, MODES, InjectDefaults, InjectError

PROG: Final = "ai-sidecar"
FAILED: Final = 1
USAGE: Final = 2


def _add_defaults(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("injected sidecar (a pod's ai-sidecar.io/... annotations win)")
    group.add_argument("--image", default=DEFAULT_IMAGE, help=f"sidecar image [default: {DEFAULT_IMAGE}]")
    group.add_argument("--mode", choices=MODES, default="native",
                       help="native: an init container with restartPolicy Always (Kubernetes >= 1.29);"
                       " classic: a regular container [default: native]")  # fmt: skip
    group.add_argument("--eureka-url", default="", metavar="URLS", help="Eureka server URLs, comma-separated")
    group.add_argument("--sidecar-log-level", default="INFO", metavar="LEVEL", help="the sidecar's log level")


def defaults_from(args: argparse.Namespace) -> InjectDefaults:
    try:
        urls: tuple[str, ...] = Urls().parse(args.eureka_url) if args.eureka_url else ()
    except Invalid as e:
        raise InjectError(f"--eureka-url: {e}") from None
    return InjectDefaults(image=args.image, mode=args.mode, eureka_url=urls, log_level=args.sidecar_log_level)


def add_inject(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inject = commands.add_parser(
        "inject",
        help="add ai-sidecar to the pods of Kubernetes manifests (stdin or files) and print them",
        description=(
            "Read Kubernetes manifests (multi-document YAML or a List) and print them with ai-sidecar"
            ' injected into every pod template annotated ai-sidecar.io/inject: "true" (Deployment,'
            " StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod); other objects pass unchanged."
            " The same function as the webhook's, so both give identical pods. YAML comments are not kept."
        ),
        allow_abbrev=False,
    )
    inject.add_argument("files", nargs="*", metavar="FILE", help="manifest files; none or - reads stdin")
    inject.add_argument(
        "--all",
        action="store_true",
        help='inject every pod not annotated ai-sidecar.io/inject: "false" (as a namespace label does)',
    )
    _add_defaults(inject)
    inject.set_defaults(command_main=inject_main)


def inject_main(args: argparse.Namespace) -> int:
    from sidecar.inject.manifests import inject_documents

    try:
        defaults = defaults_from(args)
    except InjectError as e:
        print(f"{PROG} inject: error: {e}", file=sys.stderr)
        return USAGE
    outputs = []
    for name in args.files or ["-"]:
        try:
            text = sys.stdin.read() if name == "-" else pathlib.Path(name).read_text()
        except OSError as e:
            print(f"{PROG} inject: error: {name}: {e.strerror}", file=sys.stderr)
            return FAILED
        try:
            output, report = inject_documents(
                text, defaults, all_pods=args.all, source="<stdin>" if name == "-" else name
            )
        except InjectError as e:
            print(f"{PROG} inject: error: {e}", file=sys.stderr)
            return FAILED
        if output:
            outputs.append(output)
        for line in report.injected:
            print(f"{line} injected", file=sys.stderr)
        for line in report.unchanged:
            print(f"{line} unchanged", file=sys.stderr)
        for line in report.warnings:
            print(f"warning: {line}", file=sys.stderr)
    sys.stdout.write("---\n".join(outputs))
    return 0


def add_webhook(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    webhook = commands.add_parser(
        "webhook",
        help="serve the mutating admission webhook that injects ai-sidecar (HTTPS)",
        description=(
            "Serve AdmissionReview v1 over HTTPS: POST /inject (pods opted in by their ai-sidecar.io/inject"
            " label or annotation) and POST /inject/namespace (pods of a namespace labelled"
            " ai-sidecar.io/inject=enabled), answering with a JSONPatch. The certificate and key are"
            " reloaded when their files change."
        ),
        allow_abbrev=False,
    )
    webhook.add_argument("--host", default="0.0.0.0", help="address to listen on [default: 0.0.0.0]")
    webhook.add_argument("--port", type=int, default=8443, help="HTTPS port [default: 8443]")
    webhook.add_argument("--tls-cert", required=True, metavar="FILE", help="PEM certificate (chain)")
    webhook.add_argument("--tls-key", required=True, metavar="FILE", help="PEM private key")
    webhook.add_argument(
        "--reload-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how often the certificate files are checked for a change [default: 5]",
    )
    webhook.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        metavar="NAME",
        help="never inject here (repeatable); kube-system always is. Pass the webhook's own namespace.",
    )
    webhook.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    _add_defaults(webhook)
    return webhook


async def webhook_main(args: argparse.Namespace) -> int:
    from sidecar.inject.webhook import ReloadingCertificate, Webhook, serve_webhook

    defaults = defaults_from(args)
    certificate = ReloadingCertificate(pathlib.Path(args.tls_cert), pathlib.Path(args.tls_key))
    webhook = Webhook(
        host=args.host,
        port=args.port,
        certificate=certificate,
        defaults=defaults,
        excluded_namespaces=args.exclude_namespace,
        reload_interval=args.reload_interval,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await serve_webhook(webhook, stop)
