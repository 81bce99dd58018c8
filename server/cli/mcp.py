"""`citeqa mcp`: the MCP tools over stdio, for agents and desktop assistants."""

from __future__ import annotations

import typer


def mcp(ctx: typer.Context) -> None:
    """Serve the MCP tools (ask, search, get_document, list_collections) over stdio."""
    from server.mcp import run_stdio

    run_stdio(ctx.obj)
