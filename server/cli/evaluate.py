"""`citeqa eval`: measure retrieval, answers, citations and abstention on a labelled set."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from server.cli.common import LlmOpt, console, errors, open_citeqa, with_llm


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

    with_llm(ctx, llm)
    # The corpus is ingested first, so the data folder may be new.
    citeqa = open_citeqa(ctx, existing=False)
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
    stem = corpus.name.split(".")[0]
    base = f"eval-{corpus.parent.name}-{stem}" if corpus.parent.name else f"eval-{stem}"
    return re.sub(r"[^A-Za-z0-9._-]", "-", base).strip("-._")[:200] or "eval"
