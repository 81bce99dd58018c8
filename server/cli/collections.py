"""`citeqa collections list|create|delete`: the collections of the data folder."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from core.errors import NotFound
from server.cli.common import (
    ErrorGroup,
    JsonOpt,
    console,
    errors,
    open_citeqa,
    shown,
)
from server.schemas import CollectionDeleted, CollectionInfo, CollectionList

app = typer.Typer(cls=ErrorGroup, help="List, create and delete collections.",
                  no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Collection name: letters, digits, '.', '_' and "
                                              "'-'.", show_default=False)]


@app.command("list")
def collections_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the collections with their numbers of documents and chunks."""
    citeqa = open_citeqa(ctx, load_model=False)
    listed = CollectionList(
        collections=[CollectionInfo(name=record.name, documents=documents, chunks=chunks,
                                    model=record.model)
                     for record, documents, chunks in citeqa.collections()],
        default=citeqa.collection_name(None))
    if as_json:
        typer.echo(listed.model_dump_json(indent=2))
        return
    # The folder on a line of its own: a table title would wrap a long path at its width.
    console.print(f"data folder: {escape(shown(citeqa.settings.data_dir))}", soft_wrap=True,
                  highlight=False)
    count = len(listed.collections)
    table = Table(title=f"{count} collection{'' if count == 1 else 's'}")
    table.add_column("name", no_wrap=True)
    table.add_column("documents", justify="right")
    table.add_column("chunks", justify="right")
    table.add_column("model", overflow="fold")
    for info in listed.collections:
        marker = " (default)" if info.name == listed.default else ""
        table.add_row(escape(info.name) + marker, str(info.documents), str(info.chunks),
                      escape(info.model))
    console.print(table)


@app.command("create")
def collections_create(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Create an empty collection for the embedding model (CITEQA_EMBEDDING_MODEL)."""
    citeqa = open_citeqa(ctx, load_model=False, existing=False)
    # The model is loaded only for its name and dimension, which the collection records.
    with errors.status("Loading the embedding model…"):
        created = citeqa.create_collection(name)
    info = CollectionInfo(name=created.name, documents=0, chunks=0, model=created.model)
    if as_json:
        typer.echo(info.model_dump_json(indent=2))
        return
    console.print(f"created {escape(info.name)} in {escape(shown(citeqa.settings.data_dir))} "
                  f"(model {escape(info.model)})", highlight=False)


@app.command("delete")
def collections_delete(
    ctx: typer.Context,
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
                   ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a collection with all its documents, vectors and indexes."""
    citeqa = open_citeqa(ctx, load_model=False)
    sizes = {record.name: documents for record, documents, _ in citeqa.collections()}
    if name not in sizes:
        raise NotFound(f"collection {name!r} does not exist", code="collection_not_found")
    if not yes and not typer.confirm(f"Delete collection {name!r} and its {sizes[name]} "
                                     "documents?", err=True):
        raise typer.Exit(code=1)
    citeqa.delete_collection(name)
    if as_json:
        typer.echo(CollectionDeleted(deleted=name).model_dump_json(indent=2))
        return
    console.print(f"deleted collection {escape(name)} ({sizes[name]} documents)",
                  highlight=False)
