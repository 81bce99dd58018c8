"""`citeqa docs list|show|delete`: look after the documents of a collection."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from core.documents import DocumentInfo, printable
from server.cli.common import (
    CollectionOpt,
    ErrorGroup,
    JsonOpt,
    console,
    errors,
    open_citeqa,
    shown,
)
from server.schemas import DocumentFull, DocumentSummary

app = typer.Typer(cls=ErrorGroup, help="List, show and delete documents.",
                  no_args_is_help=True)

# Below this many columns for titles, the table gives way to one document per two lines.
_MIN_TITLE_WIDTH = 24
# The table's borders and padding around its five columns.
_TABLE_FRAME = 16


@app.command("list")
def docs_list(ctx: typer.Context, collection: CollectionOpt = None, as_json: JsonOpt = False
              ) -> None:
    """List the documents of a collection, with their full ids (for `docs show`)."""
    citeqa = open_citeqa(ctx, load_model=False)
    # Page by page: summaries only, so even a large collection lists without its text in memory.
    documents = [d for page in citeqa.all_document_summaries(collection) for d in page.documents]
    if as_json:
        typer.echo(json.dumps([DocumentSummary.listed(d).model_dump() for d in documents],
                              ensure_ascii=False, indent=2))
        return
    name = citeqa.collection_name(collection)
    if not documents:
        errors.print(f"{escape(name)} holds no documents (data folder "
                     f"{escape(shown(citeqa.settings.data_dir))}); add some with citeqa ingest "
                     f"PATH --collection {escape(name)}", highlight=False)
        return
    # Escaped twice over: rich markup in a title is text, and control characters (ESC, bidi
    # overrides) in ids and titles are shown as escapes, never sent to the terminal.
    rows = [[escape(printable(cell)) for cell in (
        d.id, d.title, d.source or "", d.date or "", str(d.chunks))] for d in documents]
    title = f"{escape(name)}: {len(documents)} documents"
    id_width = max(len(printable(d.id)) for d in documents)
    source_width = max(len(printable(d.source or "")) for d in documents)
    if id_width + source_width + len("2026-01-31chunks") + _TABLE_FRAME + _MIN_TITLE_WIDTH \
            <= console.width:
        console.print(_table(title, rows, id_width))
    else:
        _print_list(title, documents)


def _table(title: str, rows: list[list[str]], id_width: int) -> Table:
    """Ids whole on one line each, however long; titles wrap instead."""
    table = Table(title=title)
    table.add_column("id", no_wrap=True, min_width=id_width)
    table.add_column("title", ratio=1, overflow="fold")
    table.add_column("source", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("chunks", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _print_list(title: str, documents: list[DocumentInfo]) -> None:
    """Too narrow for a table: each id on a line of its own, its details under it."""
    console.print(f"[bold]{title}[/]")
    for d in documents:
        console.print(escape(printable(d.id)), soft_wrap=True, highlight=False)
        details = " · ".join(x for x in (d.title, d.source, d.date, f"{d.chunks} chunks") if x)
        console.print(f"  [dim]{escape(printable(details))}[/]", highlight=False)


@app.command("show")
def docs_show(ctx: typer.Context, doc_id: Annotated[str, typer.Argument(help="Document id.")],
              collection: CollectionOpt = None, as_json: JsonOpt = False) -> None:
    """Show one document, with its full text."""
    stored = open_citeqa(ctx, load_model=False).document(doc_id, collection)
    if as_json:
        typer.echo(json.dumps(DocumentFull.of(stored).model_dump(), ensure_ascii=False,
                              indent=2))
        return
    d = stored.document
    console.print(f"[bold]{escape(d.title)}[/]  [dim]{escape(d.id)}[/]")
    meta = " · ".join(x for x in (d.source, d.date, d.url, f"{stored.chunks} chunks") if x)
    console.print(f"[dim]{escape(meta)}[/]\n")
    console.print(escape(d.text), highlight=False)


@app.command("delete")
def docs_delete(ctx: typer.Context, doc_id: Annotated[str, typer.Argument(help="Document id.")],
                collection: CollectionOpt = None) -> None:
    """Delete a document from every index of the collection."""
    name = open_citeqa(ctx, load_model=False).delete(doc_id, collection)
    console.print(f"deleted {escape(doc_id)} from {name}")
