"""`citeqa ask`: answer a question (or a batch of them), citing the exact passages."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from core.documents import Filters
from core.errors import InvalidInput
from qa.answer import Answer
from qa.timeframe import as_of_date
from server.cli.common import CollectionOpt, JsonOpt, LlmOpt, console, open_citeqa, with_llm

if TYPE_CHECKING:
    from citeqa import Citeqa


def ask(
    ctx: typer.Context,
    question: Annotated[str | None, typer.Argument(help="The question, in quotes.")] = None,
    collection: CollectionOpt = None,
    llm: LlmOpt = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, max=100,
                                              help="Passages to retrieve and show.")] = None,
    as_json: JsonOpt = False,
    batch: Annotated[Path | None, typer.Option("--batch", help="JSONL file of "
                                               '{"id", "question", "as_of"?} lines; writes '
                                               "one JSON answer per line.")] = None,
    source: Annotated[list[str] | None, typer.Option("--source", help="Only documents from "
                                                     "this source (repeatable).")] = None,
    date_from: Annotated[str | None, typer.Option("--date-from", help="Earliest document "
                                                  "date, e.g. 2026-01-31.")] = None,
    date_to: Annotated[str | None, typer.Option("--date-to", help="Latest document date.")
                       ] = None,
    doc_id: Annotated[list[str] | None, typer.Option("--doc-id", help="Only this document "
                                                     "(repeatable).")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", metavar="YYYY-MM-DD",
        help="Ask as of this date \\[default: today, UTC]: documents dated after it are not "
        "used (undated ones are), and 'this week', 'yesterday', 'on Wednesday', 'last month', "
        "'in March'... favour documents dated then. A batch line's \"as_of\" overrides it.",
    )] = None,
) -> None:
    """Answer a question from the articles, citing the exact passages."""
    day = as_of_date(as_of, name="--as-of") if as_of is not None else None
    if (question is None) == (batch is None):
        raise InvalidInput("give either a QUESTION or --batch FILE.jsonl",
                           code="invalid_arguments")
    try:
        filters = Filters(sources=tuple(source or ()), doc_ids=tuple(doc_id or ()),
                          date_from=date_from, date_to=date_to)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_filters") from exc
    with_llm(ctx, llm)
    citeqa = open_citeqa(ctx)
    if batch is not None:
        _ask_batch(citeqa, batch, collection=collection, top_k=top_k, filters=filters,
                   as_of=day)
        return
    assert question is not None
    answer = citeqa.ask(question, collection=collection, top_k=top_k, filters=filters,
                        as_of=day)
    if as_json:
        typer.echo(answer.model_dump_json(indent=2))
    else:
        _print_answer(answer)


def _ask_batch(citeqa: Citeqa, batch: Path, *, collection: str | None, top_k: int | None,
               filters: Filters, as_of: date | None = None) -> None:
    try:
        lines = batch.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {batch}: {exc}", code="unreadable_file") from exc
    for out in citeqa.ask_batch(lines, collection=collection, top_k=top_k, filters=filters,
                                as_of=as_of):
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def _print_answer(answer: Answer) -> None:
    style = "yellow" if answer.abstained else "bold"
    console.print(f"[{style}]{escape(answer.answer)}[/]")
    if answer.citations:
        console.print("\n[dim]Sources:[/]")
        for c in answer.citations:
            where = f"{c.doc_id}, characters {c.start}–{c.end}"
            console.print(f" [cyan][{c.n}][/] {escape(c.title)} [dim]({escape(where)})[/]")
            if c.url:
                console.print(f"     [dim]{escape(c.url)}[/]")
