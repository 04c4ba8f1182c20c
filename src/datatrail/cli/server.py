"""`datatrail serve`: the REST API and OpenLineage endpoint under uvicorn."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from typing import Annotated

import typer

from datatrail.cli.output import line
from datatrail.config import locate
from datatrail.core.text import count


def check_proxies(values: list[str] | None) -> list[str]:
    """Each ``--trusted-proxy``: an IP address or a network (``10.0.0.0/8``), else a usage error."""
    proxies = []
    for value in values or []:
        try:
            proxies.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            msg = f"{value!r} is not an IP address or network (give 10.0.0.5, 10.0.0.0/8 or ::1)"
            raise typer.BadParameter(msg) from None
    return proxies


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Server processes.")] = 1,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Store to serve (default: the global --store, DATATRAIL_URI or .datatrail/)."),
    ] = None,
    max_body: Annotated[
        int,
        typer.Option("--max-body", min=1024, help="Largest request body in bytes, after gzip decompression."),
    ] = 10 * 1024 * 1024,
    trusted_proxies: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            metavar="ADDRESS",
            callback=check_proxies,
            help=(
                "A proxy (IP address or network, e.g. 10.0.0.0/8) whose X-Forwarded-For header names the client;"
                " repeat for several. Without one the TCP peer is the client and X-Forwarded-For is ignored."
            ),
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Listen on a non-loopback address although the store has no users (anyone may read and write).",
        ),
    ] = False,
) -> None:
    """Serve the REST API and OpenLineage ingest (POST /api/v1/lineage) over the store."""
    import uvicorn

    root = ctx.find_root().obj or {}
    uri = locate(store or root.get("store")).uri

    from datatrail.security.exposure import check_exposure  # the store's modules: not on every command (start-up)

    check_exposure(host, uri, insecure=insecure, api_keys=bool(os.environ.get("DATATRAIL_API_KEYS")))
    from datatrail.server import memory  # the server package imports FastAPI: not on every command (start-up)

    memory.check_settings()  # a bad allocator setting fails here with its message, not in each worker
    from datatrail.store import check_settings  # as above: a bad cache setting fails before the workers start

    check_settings()
    # Workers are separate processes: they read their settings from the environment.
    os.environ["DATATRAIL_SERVER_STORE"] = uri
    os.environ["DATATRAIL_SERVER_MAX_BODY"] = str(max_body)
    if workers > 1:  # a SQLite store's workers group their events in one worker's transactions (store/sql/handoff.py)
        os.environ.setdefault("DATATRAIL_WRITER_HANDOFF", "1")
    line(f"serving {uri.split('@')[-1] if '://' in uri else uri} on http://{host}:{port} ({count(workers, 'worker')})")
    uvicorn.run(
        "datatrail.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=os.environ.get("DATATRAIL_LOG_LEVEL", "info"),
        # The client address keys the bad-token limiter and the audit's origin: it is taken
        # from X-Forwarded-For only when a trusted proxy sent it, never by default.
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies or []),
        # Each answer's head and body in one write (server/protocol.py); it needs httptools, as uvicorn's default.
        http="datatrail.server.protocol:OneWriteProtocol" if importlib.util.find_spec("httptools") else "auto",
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)
