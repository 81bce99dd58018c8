"""`citeqa ingest`: read files, folders and web pages into a collection."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.documents import Document, SkippedSource, printable
from index.errors import UnreadableFile
from index.loaders import SUPPORTED_SUFFIXES
from server.cli.common import CollectionOpt, console, errors, open_citeqa

SKIPPED_EXIT = 3
"""`--strict`: some sources were skipped (the readable ones were still ingested)."""

_FORMATS = " ".join(sorted(SUPPORTED_SUFFIXES))


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(
        help=f"Files, folders (read recursively) or web page URLs: {_FORMATS}, http(s)://…",
        show_default=False)],
    collection: CollectionOpt = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove documents of the collection "
                                                        "that are not in these sources.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help=f"Exit with code {SKIPPED_EXIT} when any source was skipped "
        "(unsupported type, unreadable, duplicate id); the readable ones are still ingested."
    )] = False,
) -> None:
    """Add articles to a collection; unchanged ones are skipped, changed ones replaced.

    Exit codes: 0 done; 1 nothing ingested or an error; 2 bad arguments; 3 with --strict,
    some sources skipped.
    """
    citeqa = open_citeqa(ctx, existing=False)
    with errors.status("Reading files and pages…"):
        loaded = citeqa.read_locations(paths)
    # Each skipped source once, on its own line, as soon as it is known.
    shown = [item for item in loaded if isinstance(item, SkippedSource)]
    for item in shown:
        _say_skipped(item)
    readable = sum(isinstance(item, Document) for item in loaded)
    if not readable:
        raise UnreadableFile(f"nothing was ingested: none of the {len(shown)} sources could "
                             "be read (reasons above)" if shown else
                             "nothing was ingested: no documents found")
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), console=errors,
        transient=True)
    with progress:
        reading = progress.add_task("Chunking", total=len(loaded), unit="documents")
        embedding = progress.add_task("Embedding", total=None, unit="chunks", visible=False)
        report = citeqa.ingest(
            loaded, collection=collection, prune=prune,
            progress=lambda done, total: progress.update(reading, completed=done, total=total),
            embedding_progress=lambda done, total: progress.update(
                embedding, completed=done, total=total, visible=True))
    already = {id(item) for item in shown}
    for skipped in report.skipped:
        if id(skipped) not in already:
            _say_skipped(skipped)  # found while ingesting: a duplicate id
    console.print(report.summary(reasons=False), highlight=False)
    # A large ingestion rebuilds the keyword index in the background; a process exiting now
    # would leave that work to the next one to open the collection (a server's first minutes).
    with errors.status("Rebuilding the keyword index…"):
        citeqa.settle(collection)
    if strict and report.skipped:
        errors.print(f"[yellow]--strict:[/] {len(report.skipped)} skipped, exit code "
                     f"{SKIPPED_EXIT}")
        raise typer.Exit(code=SKIPPED_EXIT)


def _say_skipped(item: SkippedSource) -> None:
    # Control characters in a file name are shown as escapes, never sent to the terminal.
    errors.print(f"[yellow]skipped[/] {escape(printable(item.name))}: {escape(item.reason)}",
                 highlight=False)
