"""`citeqa serve`: the chat page and the HTTP API."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Annotated, Any

import typer
from rich.markup import escape

from core.settings import Settings
from server.cli.common import LlmOpt, errors, with_llm


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on \\[default: 127.0.0.1]."
                                             )] = None,
    port: Annotated[int | None, typer.Option(help="Port \\[default: 8000].")] = None,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="Worker processes, each with its own copy of the model. Share the "
        "data folder; with CITEQA_CHROMA_URL they also share one Chroma server.")] = 1,
    llm: LlmOpt = None,
    allow_open: Annotated[bool, typer.Option(
        "--allow-open", help="Serve on a non-loopback address without API keys (anyone who "
        "can reach it may read, add and delete documents) \\[default: CITEQA_ALLOW_OPEN]."
    )] = False,
) -> None:
    """Serve the chat page and the HTTP API (OpenAPI docs at /docs)."""
    with_llm(ctx, llm)
    import logging

    import uvicorn

    from server.app import create_app
    from server.connections import connection_limits
    from server.options import ServerOptions
    from server.security import is_loopback, loopback_hosts, refuse_open_server

    settings: Settings = ctx.obj
    host = host or settings.host
    port = port or settings.port
    if allow_open:
        settings = settings.model_copy(update={"allow_open": True})
    # Before anything starts: keys that yield no key, or an open server beyond loopback
    # nobody asked for, end here with a message that says what to change.
    refuse_open_server(host, ServerOptions.from_settings(settings))
    if not settings.allowed_hosts.strip() and is_loopback(host):
        # Bound to loopback, only a browser on this machine can reach the server; answering
        # loopback names only keeps a DNS-rebinding page from reaching it under its own name.
        settings = settings.model_copy(update={"allowed_hosts": loopback_hosts(host)})
    store = settings.chroma_url or f"{settings.data_dir}"
    errors.print(f"citeqa: serving {store} on http://{host}:{port} with {workers} worker"
                 f"{'s' if workers > 1 else ''} (Ctrl+C stops)")
    if not is_loopback(host) and not settings.allowed_api_keys():
        errors.print(f"[bold yellow]warning:[/] serving on {escape(host)} without API keys "
                     "(--allow-open): anyone who can reach it may read, add and delete "
                     "documents")
    # One access line per request from our middleware (with its request id), not uvicorn's.
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # On SIGTERM or Ctrl+C uvicorn stops accepting, lets requests in flight finish (up to
    # the grace period), then exits.
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "info",
                               "access_log": False,
                               "timeout_graceful_shutdown": settings.shutdown_grace,
                               **connection_limits()}
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Worker processes rebuild the settings from the environment: hand this one's down.
    os.environ.update(settings_environment(settings))
    # Workers share their Prometheus counters through files, so /metrics counts them all.
    metrics_dir = tempfile.mkdtemp(prefix="citeqa-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("server.app:create_app", factory=True, workers=workers, **options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def settings_environment(settings: Settings) -> dict[str, str]:
    """`CITEQA_*` variables that rebuild these settings in another process."""
    environment = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            environment[f"CITEQA_{name.upper()}"] = str(value)
    return environment
