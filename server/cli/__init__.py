"""The `citeqa` command line: ingest, ask, docs, serve."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from core.documents import Document, Filters, SkippedSource, printable
from core.errors import CiteqaError, InvalidInput
from core.settings import Settings
from qa.answer import Answer
from qa.timeframe import as_of_date
from server.schemas import DocumentFull, DocumentSummary

if TYPE_CHECKING:
    from citeqa import Citeqa

console = Console()
errors = Console(stderr=True)


class _Group(TyperGroup):
    """The one place where CLI errors become messages and exit codes."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CiteqaError as exc:
            errors.print(f"[bold red]error:[/] {escape(exc.detail)} [dim]({exc.code})[/]")
            raise typer.Exit(code=1) from exc


app = typer.Typer(
    cls=_Group,
    help="Ask questions about your articles and get answers that cite the exact passages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
docs_app = typer.Typer(cls=_Group, help="List, show and delete documents.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")

CollectionOpt = Annotated[
    str | None,
    typer.Option("--collection", "-c", help="Collection to use \\[default: CITEQA_COLLECTION or "
                 "'articles']."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="CITEQA_DATA_DIR",
                     help="Data folder \\[default: ./data]."),
    ] = None,
) -> None:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    ctx.obj = _settings(**overrides)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise InvalidInput(f"invalid settings: {exc}", code="invalid_settings") from exc


def _citeqa(ctx: typer.Context, *, load_model: bool = True) -> Citeqa:
    """The application over the settings; the model loaded now unless the command needs
    none (listing, showing and deleting documents)."""
    # Imported here: `citeqa --help` should not wait for the answering stack to load.
    from citeqa import Citeqa

    settings: Settings = ctx.obj
    if not load_model:
        return Citeqa(settings)
    with errors.status("Loading the embedding model…"):
        return Citeqa.build(settings)


LlmOpt = Annotated[str | None, typer.Option(
    "--llm", help="Write answers with a chat model and check every sentence's citation: "
    "openai:<model> (with CITEQA_LLM_BASE_URL / CITEQA_LLM_API_KEY) or ollama:<model>; "
    "none for extractive answers \\[default: CITEQA_LLM, else none].", show_default=False)]


def _with_llm(ctx: typer.Context, llm: str | None) -> None:
    """Let --llm override CITEQA_LLM for this command."""
    if llm is not None:
        ctx.obj = ctx.obj.model_copy(update={"llm": llm})


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(
        help="Files, folders (read recursively) or web page URLs: .txt, .md, .html, "
             ".jsonl[.gz], .pdf, .docx, http(s)://…", show_default=False)],
    collection: CollectionOpt = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove documents of the collection "
                                                        "that are not in these sources.")] = False,
) -> None:
    """Add articles to a collection; unchanged ones are skipped, changed ones replaced."""
    citeqa = _citeqa(ctx)
    with errors.status("Reading files and pages…"):
        loaded = citeqa.read_locations(paths)
    if not any(isinstance(item, Document) for item in loaded):
        # Each unreadable source on its own line before the refusal (which lists them too).
        for item in loaded:
            if isinstance(item, SkippedSource):
                errors.print(f"[yellow]skipped[/] {escape(item.name)}: {escape(item.reason)}")
    progress = Progress(
        TextColumn("[bold]Ingesting"), BarColumn(), MofNCompleteColumn(), TextColumn("documents"),
        TimeElapsedColumn(), console=errors, transient=True, disable=not loaded,
    )
    with progress:
        task = progress.add_task("ingest", total=len(loaded))
        report = citeqa.ingest(
            loaded, collection=collection, prune=prune,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    for skipped in report.skipped:
        errors.print(f"[yellow]skipped[/] {escape(skipped.name)}: {escape(skipped.reason)}")
    console.print(report.summary(), highlight=False)


@app.command()
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
    _with_llm(ctx, llm)
    citeqa = _citeqa(ctx)
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


@docs_app.command("list")
def docs_list(ctx: typer.Context, collection: CollectionOpt = None, as_json: JsonOpt = False
              ) -> None:
    """List the documents of a collection."""
    citeqa = _citeqa(ctx, load_model=False)
    documents = citeqa.documents(collection)
    if as_json:
        typer.echo(json.dumps([DocumentSummary.of(d).model_dump() for d in documents],
                              ensure_ascii=False, indent=2))
        return
    name = citeqa.collection_name(collection)
    table = Table("id", "title", "source", "date", "chunks",
                  title=f"{name}: {len(documents)} documents")
    for d in documents:
        # Escaped twice over: rich markup in a title is text, and control characters (ESC,
        # bidi overrides) in ids and titles are shown as escapes, never sent to the terminal.
        table.add_row(*(escape(printable(cell)) for cell in (
            d.document.id, d.document.title, d.document.source or "", d.document.date or "",
            str(d.chunks))))
    console.print(table)


@docs_app.command("show")
def docs_show(ctx: typer.Context, doc_id: Annotated[str, typer.Argument(help="Document id.")],
              collection: CollectionOpt = None, as_json: JsonOpt = False) -> None:
    """Show one document, with its full text."""
    stored = _citeqa(ctx, load_model=False).document(doc_id, collection)
    if as_json:
        typer.echo(json.dumps(DocumentFull.of(stored).model_dump(), ensure_ascii=False,
                              indent=2))
        return
    d = stored.document
    console.print(f"[bold]{escape(d.title)}[/]  [dim]{escape(d.id)}[/]")
    meta = " · ".join(x for x in (d.source, d.date, d.url, f"{stored.chunks} chunks") if x)
    console.print(f"[dim]{escape(meta)}[/]\n")
    console.print(escape(d.text), highlight=False)


@docs_app.command("delete")
def docs_delete(ctx: typer.Context, doc_id: Annotated[str, typer.Argument(help="Document id.")],
                collection: CollectionOpt = None) -> None:
    """Delete a document from every index of the collection."""
    name = _citeqa(ctx, load_model=False).delete(doc_id, collection)
    console.print(f"deleted {escape(doc_id)} from {name}")


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    corpus: Annotated[Path, typer.Option("--corpus", help="Documents, JSONL (optionally .gz), "
                                         "in the ingest format.")],
    questions: Annotated[Path, typer.Option("--questions", help='JSONL of {"id", "question", '
                                            '"gold_doc_ids", "answers"?, "answerable"?}.')],
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection to "
                                                   "ingest into and ask \\[default: named after "
                                                   "the corpus file].")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Ask only the first N "
                                              "questions.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the full report (summary "
                                             "and every question) as JSON.")] = None,
    llm: LlmOpt = None,
    as_of_question_date: Annotated[bool, typer.Option(
        "--as-of-question-date",
        help="Ask each question that has a \"date\" as of that date (later documents unused, "
        "'this week'... read against it). Without it, no time window is applied.")] = False,
) -> None:
    """Measure retrieval, answers, citations and abstention on a labelled set."""
    from citeqa.evaluate import run_evaluation

    _with_llm(ctx, llm)
    citeqa = _citeqa(ctx)
    name = collection or _collection_for(corpus)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=errors, transient=True,
    )
    with progress:
        ingesting = progress.add_task("Ingesting corpus", total=None)
        asking = progress.add_task("Asking", total=None, visible=False)

        def on_ingest(done: int, total: int) -> None:
            progress.update(ingesting, completed=done, total=total)

        def on_ask(done: int, total: int) -> None:
            progress.update(asking, completed=done, total=total, visible=True)

        report = run_evaluation(citeqa, corpus=corpus, questions=questions, collection=name,
                                limit=limit, progress=on_ask, ingest_progress=on_ingest,
                                as_of_question_date=as_of_question_date)
    errors.print(f"[dim]corpus: {report.ingest.summary()}[/]")
    table = Table("metric", "value", title=f"citeqa eval: {questions.name} on {name}")
    for key, value in report.summary.items():
        table.add_row(key, "—" if value is None else f"{value:g}")
    console.print(table)
    bins = Table("support", "questions", "mean support", "share right",
                 title="calibration: is support the chance the answer is right?")
    for row in report.calibration:
        if row["questions"]:
            bins.add_row(f"{row['support_from']:.2f}–{row['support_to']:.2f}",
                         str(row["questions"]), f"{row['mean_support']:.3f}",
                         f"{row['right']:.3f}")
    console.print(bins)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1),
                       encoding="utf-8")
        errors.print(f"report written to {out}")


def _collection_for(corpus: Path) -> str:
    """A valid collection name derived from the corpus file's folder and name."""
    import re

    stem = corpus.name.split(".")[0]
    base = f"eval-{corpus.parent.name}-{stem}" if corpus.parent.name else f"eval-{stem}"
    return re.sub(r"[^A-Za-z0-9._-]", "-", base).strip("-._")[:200] or "eval"


@app.command()
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
    _with_llm(ctx, llm)
    import logging

    import uvicorn

    from server.app import create_app
    from server.connections import connection_limits
    from server.security import is_loopback, loopback_hosts, refuse_open_server

    settings: Settings = ctx.obj
    host = host or settings.host
    port = port or settings.port
    if allow_open:
        settings = settings.model_copy(update={"allow_open": True})
    # Before anything starts: keys that yield no key, or an open server beyond loopback
    # nobody asked for, end here with a message that says what to change.
    refuse_open_server(host, settings)
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


def main() -> None:
    """Entry point of the `citeqa` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()
