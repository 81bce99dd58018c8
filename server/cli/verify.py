"""`citeqa verify`: check any text (a chatbot's reply, a draft, a summary) sentence by sentence
against the articles."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from core.documents import Filters
from core.errors import InvalidInput, TooLarge
from core.settings import Settings
from qa.timeframe import as_of_date
from qa.verify import CheckedStatement, Verdict, Verification, count_verdicts
from server.cli.common import CollectionOpt, console, errors, open_citeqa

# Exit status of `--strict` when a sentence is contradicted or unsupported (1 is an error,
# 2 a usage mistake).
STRICT_FAILED = 3
# UTF-8 takes at most 4 bytes a character: reading past this many bytes of a file cannot give
# a text within the character limit, so a huge file is refused without being read whole.
_BYTES_PER_CHAR = 4

_MARKS = {
    Verdict.SUPPORTED: ("✓", "green", "supported"),
    Verdict.CONTRADICTED: ("✗", "bold red", "contradicted"),
    Verdict.UNSUPPORTED: ("?", "yellow", "unsupported"),
    Verdict.NOT_CHECKABLE: ("–", "dim", "not checkable"),
}
# What the evidence shown under a sentence is, by verdict: only `supported` evidence supports.
_EVIDENCE_LABEL = {
    Verdict.SUPPORTED: "source",
    Verdict.CONTRADICTED: "the article says",
    Verdict.UNSUPPORTED: "closest",
}


def verify(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(
        metavar="FILE|-", help="The text to check: a UTF-8 text file, or - to read standard "
        "input.", show_default=False)],
    collection: CollectionOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the whole result as JSON (sentences with offsets into the text, "
        "verdicts, evidence, counts) instead of the report.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help=f"Exit with status {STRICT_FAILED} when any sentence is contradicted "
        "or unsupported (for scripts and CI).")] = False,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", metavar="YYYY-MM-DD",
        help="Check as of this date \\[default: today, UTC]: documents dated after it are not "
        "used as evidence.")] = None,
    source: Annotated[list[str] | None, typer.Option(
        "--source", help="Take evidence only from documents of this source (repeatable).")
    ] = None,
    doc_id: Annotated[list[str] | None, typer.Option(
        "--doc-id", help="Take evidence only from this document (repeatable).")] = None,
) -> None:
    """Check every sentence of a text against the articles.

    Each sentence gets a verdict: supported (an article sentence says the same; its exact span
    is shown), contradicted (the passage it matches says otherwise: another name, number or
    date, or a negation), unsupported (nothing in the collection states it) or not checkable
    (a question, greeting, opinion or fragment). A verdict says what the articles say, not
    whether the world agrees with them.

    Examples: citeqa verify answer.txt; pbpaste | citeqa verify - --strict
    """
    day = as_of_date(as_of, name="--as-of")
    settings: Settings = ctx.obj
    text = read_text(file, max_chars=settings.max_verify_chars)
    filters = Filters(sources=tuple(source or ()), doc_ids=tuple(doc_id or ()))
    citeqa = open_citeqa(ctx)
    name = citeqa.collection_name(collection)
    # Refuses a text that cannot be checked (empty, binary, too long) before any output.
    sentences = citeqa.verify_stream(text, collection=name, filters=filters, as_of=day)
    if as_json:
        checked = _with_progress(sentences)
        result = Verification(collection=name, as_of=day.isoformat(), sentences=checked,
                              counts=count_verdicts(checked))
        typer.echo(result.model_dump_json(indent=2))
    else:
        checked = []
        for sentence in sentences:
            _print_sentence(sentence)
            checked.append(sentence)
        _print_summary(checked, collection=name, as_of=day.isoformat())
    if strict and any(s.verdict in (Verdict.CONTRADICTED, Verdict.UNSUPPORTED)
                      for s in checked):
        raise typer.Exit(code=STRICT_FAILED)


def read_text(file: str, *, max_chars: int) -> str:
    """The text of a file, or of standard input for `-`; a binary or non-UTF-8 file, or one
    too long to check, is refused with what to do."""
    limit = max_chars * _BYTES_PER_CHAR
    try:
        if file == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(file).open("rb") as stream:
                data = stream.read(limit + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror or exc}",
                           code="unreadable_file") from exc
    shown = "standard input" if file == "-" else file
    if len(data) > limit:
        raise TooLarge(f"{shown} is over {limit:,} bytes, more than the {max_chars:,} "
                       "characters a text to check may have (CITEQA_MAX_VERIFY_CHARS)",
                       code="text_too_long")
    if b"\x00" in data:
        raise InvalidInput(f"{shown} holds NUL bytes: it looks like a binary file, not text; "
                           "convert it to plain text first (e.g. pdftotext for a PDF)",
                           code="binary_text")
    try:
        # A byte-order mark is not part of the text: offsets count from after it.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{shown} is not UTF-8 text (byte {exc.start:,} cannot be read); "
                           "save it as UTF-8, e.g. iconv -f latin1 -t utf-8",
                           code="not_utf8") from exc


def _with_progress(sentences: Iterable[CheckedStatement]) -> list[CheckedStatement]:
    """Every sentence, telling on standard error how many are checked (long texts take a
    while; standard output stays clean JSON)."""
    checked: list[CheckedStatement] = []
    with errors.status("Checking sentences…") as status:
        for sentence in sentences:
            checked.append(sentence)
            status.update(f"Checking sentences… {len(checked):,} checked")
    return checked


def _print_sentence(sentence: CheckedStatement) -> None:
    mark, style, label = _MARKS[sentence.verdict]
    console.print(f"[{style}]{mark} {label}[/] [dim]({sentence.start}–{sentence.end})[/] "
                  f"{escape(sentence.text)}")
    if sentence.reason and sentence.verdict != Verdict.SUPPORTED:
        console.print(f"    [dim]why:[/] {escape(sentence.reason)}")
    what = _EVIDENCE_LABEL.get(sentence.verdict)
    for evidence in sentence.evidence if what else []:
        where = f"{evidence.doc_id}, characters {evidence.start}–{evidence.end}"
        console.print(f"    [dim]{what}:[/] [cyan]{escape(evidence.title)}[/] "
                      f"[dim]({escape(where)})[/]")
        console.print(f"      “{escape(evidence.quote)}”")


def _print_summary(sentences: list[CheckedStatement], *, collection: str, as_of: str) -> None:
    counts = count_verdicts(sentences)
    parts = ", ".join(f"{counts[v.value]} {_MARKS[v][2]}" for v in Verdict)
    console.print(f"\n[bold]{len(sentences)} sentences:[/] {parts} "
                  f"[dim](collection {escape(collection)}, as of {as_of})[/]")
