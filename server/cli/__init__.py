"""The `citeqa` command line: ingest, ask, verify, docs, collections, eval, serve, mcp.

One module per command or group of commands; this one makes the app and registers them, so a
new command is a module and a line below.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer

from server.cli import ask, collections, docs, evaluate, ingest, mcp, serve, verify
from server.cli.common import ErrorGroup, settings_from

app = typer.Typer(
    cls=ErrorGroup,
    help="Ask questions about your articles and get answers that cite the exact passages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        try:
            number = version("citeqa")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"citeqa {number}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="CITEQA_DATA_DIR",
                     help="Data folder \\[default: ./data]. Commands that only read it (ask, "
                     "docs, collections list) never create it."),
    ] = None,
    _version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    ctx.obj = settings_from(**overrides)


app.command()(ingest.ingest)
app.command()(ask.ask)
app.command()(verify.verify)
app.add_typer(docs.app, name="docs")
app.add_typer(collections.app, name="collections")
app.command("eval")(evaluate.evaluate)
app.command()(serve.serve)
app.command()(mcp.mcp)


def main() -> None:
    """Entry point of the `citeqa` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()
