"""The `citeqa` command line, end to end, over real data folders.

Commands that answer or ingest load the real model themselves (a few seconds each), so those
invocations are few and each test checks several things of one run.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import LAB_DOC, SAMPLES
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from server.app import create_app
from server.cli import app

LAB_QUESTION = "Who co-leads the lab?"
UNRELATED_QUESTION = "What is the boiling point of mercury?"


def run(data_dir: Path, *args: str, columns: int = 200, stdin: str | None = None) -> Result:
    """Invoke `citeqa --data-dir DATA ARGS…`; a Python exception fails the test."""
    runner = CliRunner()
    return runner.invoke(app, ["--data-dir", str(data_dir), *args],
                         env={"COLUMNS": str(columns)}, input=stdin, catch_exceptions=False)


def flat(text: str) -> str:
    """Output with line wrapping undone."""
    return " ".join(text.split())


def listed_ids(data_dir: Path) -> list[str]:
    result = run(data_dir, "docs", "list", "--json")
    assert result.exit_code == 0, result.output
    return [d["id"] for d in json.loads(result.stdout)]


# Help (no model) ----------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "options"), [
    ([], ["--data-dir", "--version", "ingest", "ask", "docs", "collections", "serve"]),
    (["ingest"], ["--collection", "--prune", "--strict", "PATHS", ".jsonl.gz", ".docx"]),
    (["ask"], ["--collection", "--top-k", "--json", "--batch", "--source", "--date-from",
               "--date-to", "--doc-id", "QUESTION"]),
    (["docs"], ["list", "show", "delete"]),
    (["docs", "list"], ["--collection", "--json"]),
    (["docs", "show"], ["--collection", "--json", "DOC_ID"]),
    (["docs", "delete"], ["--collection", "DOC_ID"]),
    (["collections"], ["list", "create", "delete"]),
    (["collections", "list"], ["--json"]),
    (["collections", "create"], ["--json", "NAME"]),
    (["collections", "delete"], ["--yes", "--json", "NAME"]),
    (["serve"], ["--host", "--port"]),
])
def test_help_lists_the_options(command: list[str], options: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    for option in options:
        assert option.lower() in result.output.lower()


@pytest.mark.parametrize(("command", "option", "default"), [
    ([], "--data-dir", "./data"),
    (["ingest"], "--collection", "articles"),
    (["ask"], "--collection", "articles"),
    (["docs", "list"], "--collection", "articles"),
    (["serve"], "--host", "127.0.0.1"),
    (["serve"], "--port", "8000"),
])
def test_help_states_the_defaults(command: list[str], option: str, default: str) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if option in line)
    assert default in line, f"{option} help does not show its default: {line.strip()!r}"


def test_no_arguments_shows_help() -> None:
    result = CliRunner().invoke(app, [], env={"COLUMNS": "200"})

    assert "ingest" in result.output and "ask" in result.output
    assert "Traceback" not in result.output


# Ingest (3 + 1 model loads) -----------------------------------------------------------------


def test_ingest_is_idempotent_and_prunes(settings: Settings, tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    shutil.copytree(SAMPLES, articles)

    first = run(settings.data_dir, "ingest", str(articles))
    assert first.exit_code == 0, first.output
    assert re.search(r"\badded 10\b", first.stdout)
    assert sorted(listed_ids(settings.data_dir)) == sorted(p.name for p in SAMPLES.iterdir())

    second = run(settings.data_dir, "ingest", str(articles))
    assert second.exit_code == 0, second.output
    assert re.search(r"\badded 0\b", second.stdout)
    assert re.search(r"\bunchanged 10\b", second.stdout)
    assert re.search(r"\b0 chunks embedded\b", second.stdout)

    (articles / "deep-sea-shrimp.md").unlink()
    pruned = run(settings.data_dir, "ingest", str(articles), "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert re.search(r"\bunchanged 9\b", pruned.stdout)
    assert re.search(r"\bpruned 1\b", pruned.stdout)
    ids = listed_ids(settings.data_dir)
    assert len(ids) == 9
    assert "deep-sea-shrimp.md" not in ids
    assert LAB_DOC in ids


def test_ingest_reports_unreadable_files_and_adds_good_ones(settings: Settings,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "blob.txt").write_bytes(b"\x00\x01\x02 not text \x00")
    (folder / "latin.txt").write_bytes(b"caf\xe9 au lait, served at the harbour")
    (folder / "good.md").write_text("# Kestrel Point\n\nThe lighthouse keeper is Ingrid "
                                    "Solvang.\n", encoding="utf-8")

    result = run(settings.data_dir, "ingest", str(folder))

    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert re.search(r"\badded 1\b", output)
    assert re.search(r"skipped \S*blob\.txt: binary file", output)
    assert re.search(r"skipped \S*latin\.txt: not UTF-8", output)
    assert re.search(r"\bskipped 2\b", result.stdout)
    # Each reason once: on its own line, not again in the summary.
    assert output.count("blob.txt") == 1 and output.count("latin.txt") == 1
    assert "Traceback" not in result.output
    assert listed_ids(settings.data_dir) == ["good.md"]
    shown = json.loads(run(settings.data_dir, "docs", "show", "good.md", "--json").stdout)
    assert shown["title"] == "Kestrel Point"


# Ask (4 model loads) ------------------------------------------------------------------------


def test_ask_json_matches_the_http_answer(sample_settings: Settings,
                                          embedder: SentenceTransformerEmbedder) -> None:
    result = run(sample_settings.data_dir, "ask", LAB_QUESTION, "--json")

    assert result.exit_code == 0, result.output
    cli_answer: dict[str, Any] = json.loads(result.stdout)
    assert cli_answer["abstained"] is False
    assert "Miriam Okafor" in cli_answer["answer"]
    assert "Tomas Verhoeven" in cli_answer["answer"]
    assert cli_answer["citations"][0]["doc_id"] == LAB_DOC
    assert "total" in cli_answer["timings_ms"]

    with TestClient(create_app(sample_settings, embedder=embedder)) as client:
        response = client.post("/v1/ask", json={"question": LAB_QUESTION})
    assert response.status_code == 200, response.text
    http_answer = response.json()
    cli_answer.pop("timings_ms")
    http_answer.pop("timings_ms")
    assert cli_answer == http_answer


def test_ask_prints_the_answer_with_sources(sample_settings: Settings) -> None:
    result = run(sample_settings.data_dir, "ask", LAB_QUESTION)

    assert result.exit_code == 0, result.output
    output = flat(result.stdout)
    assert "Miriam Okafor" in output and "Tomas Verhoeven" in output
    assert "Sources" in output
    assert "[1]" in output
    assert LAB_DOC in output
    assert "Northgate University and Corvalis Systems Open Joint AI Lab" in output


def test_ask_batch_writes_one_line_per_question(sample_settings: Settings,
                                                tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_text("\n".join([
        json.dumps({"id": "lab", "question": LAB_QUESTION}),
        json.dumps({"id": 7, "question": UNRELATED_QUESTION}),
        "this is not JSON",
        "",
        json.dumps({"id": "empty", "question": "  "}),
        json.dumps({"id": "no-question"}),
    ]) + "\n", encoding="utf-8")

    result = run(sample_settings.data_dir, "ask", "--batch", str(batch))

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5
    lab, unrelated, not_json, empty, no_question = lines
    assert lab["id"] == "lab"
    assert lab["abstained"] is False
    assert "Miriam Okafor" in lab["answer"] and "Tomas Verhoeven" in lab["answer"]
    assert lab["citations"][0]["doc_id"] == LAB_DOC
    assert unrelated["id"] == 7
    assert unrelated["abstained"] is True
    assert unrelated["citations"] == []
    assert not_json["error"] == "invalid_line"
    assert "line 3" in not_json["detail"]
    assert empty == {"id": "empty", "error": "empty_question", "detail": empty["detail"]}
    assert no_question["error"] == "invalid_line"
    assert "line 6" in no_question["detail"]


def test_ask_empty_question_is_a_clear_error(sample_settings: Settings) -> None:
    result = run(sample_settings.data_dir, "ask", "")

    assert result.exit_code == 1
    assert "question is empty" in flat(result.output)
    assert "Traceback" not in result.output
    assert result.stdout == ""


# Docs (no model) ----------------------------------------------------------------------------


def test_docs_list_shows_every_document(sample_settings: Settings) -> None:
    as_json = run(sample_settings.data_dir, "docs", "list", "--json")
    assert as_json.exit_code == 0, as_json.output
    documents = {d["id"]: d for d in json.loads(as_json.stdout)}
    assert len(documents) == 10
    assert documents[LAB_DOC]["source"] == "The Harbour Ledger"
    assert documents[LAB_DOC]["date"] == "2026-02-12"
    assert documents[LAB_DOC]["chunks"] >= 1
    assert all("text" not in d for d in documents.values())

    table = run(sample_settings.data_dir, "docs", "list")
    assert table.exit_code == 0, table.output
    assert "10 documents" in table.stdout
    assert LAB_DOC in table.stdout


def test_docs_show_includes_the_full_text(sample_settings: Settings) -> None:
    result = run(sample_settings.data_dir, "docs", "show", LAB_DOC, "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["id"] == LAB_DOC
    assert shown["title"] == (
        "Northgate University and Corvalis Systems Open Joint AI Lab in Rotterdam"
    )
    article = (SAMPLES / LAB_DOC).read_text(encoding="utf-8")
    assert shown["text"].strip() in article
    assert "Sanne de Wit" in shown["text"]
    assert "Recruitment for the first positions will begin in April" in shown["text"]

    text = run(sample_settings.data_dir, "docs", "show", LAB_DOC)
    assert text.exit_code == 0, text.output
    assert "Sanne de Wit" in flat(text.stdout)


def test_docs_delete_removes_the_document(sample_settings: Settings) -> None:
    deleted = run(sample_settings.data_dir, "docs", "delete", LAB_DOC)
    assert deleted.exit_code == 0, deleted.output
    assert LAB_DOC in deleted.stdout

    shown = run(sample_settings.data_dir, "docs", "show", LAB_DOC)
    assert shown.exit_code == 1
    assert LAB_DOC in flat(shown.output)
    assert "Traceback" not in shown.output
    assert LAB_DOC not in listed_ids(sample_settings.data_dir)

    again = run(sample_settings.data_dir, "docs", "delete", LAB_DOC)
    assert again.exit_code == 1
    assert LAB_DOC in flat(again.output)


def test_docs_on_an_unknown_or_invalid_collection_is_a_clear_error(
        sample_settings: Settings) -> None:
    unknown = run(sample_settings.data_dir, "docs", "list", "--collection", "nothing-here")
    assert unknown.exit_code == 1
    assert "nothing-here" in flat(unknown.output)
    assert "Traceback" not in unknown.output

    assert str(sample_settings.data_dir) in flat(unknown.output)

    invalid = run(sample_settings.data_dir, "docs", "list", "--collection", "a/b")
    assert invalid.exit_code == 1
    assert "invalid collection name" in flat(invalid.output)


def test_ask_needs_a_question_or_a_batch(sample_settings: Settings, tmp_path: Path) -> None:
    neither = run(sample_settings.data_dir, "ask")
    assert neither.exit_code == 1
    assert "give either a QUESTION or --batch" in flat(neither.output)

    both = run(sample_settings.data_dir, "ask", LAB_QUESTION, "--batch",
               str(tmp_path / "q.jsonl"))
    assert both.exit_code == 1
    assert "Traceback" not in both.output


def test_ask_with_an_invalid_date_is_a_clear_error(sample_settings: Settings) -> None:
    result = run(sample_settings.data_dir, "ask", LAB_QUESTION, "--date-from", "yesterday")

    assert result.exit_code == 1
    assert "yesterday" in flat(result.output)
    assert "Traceback" not in result.output


def test_ingest_takes_web_page_urls_and_reports_failures(
        settings: Settings, web_folder: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITEQA_FETCH_ALLOW_PRIVATE", "true")  # the web folder is on loopback
    folder, base = web_folder
    (folder / "ferry.html").write_text(
        "<html><head><title>Night Ferry Returns</title></head><body><nav>Menu</nav>"
        "<article><p>The night ferry to Skellan Isle sails again from 4 May.</p>"
        "<p>Its captain is Oona Braddock, who has crossed the strait for twenty years.</p>"
        "</article></body></html>", encoding="utf-8")
    result = run(settings.data_dir, "ingest", f"{base}/ferry.html", f"{base}/gone.html")
    assert result.exit_code == 0, result.output
    assert re.search(r"\badded 1\b", result.stdout)
    assert "gone.html" in result.stderr and "could not fetch" in result.stderr
    shown = run(settings.data_dir, "docs", "show", f"{base}/ferry.html", "--json")
    assert json.loads(shown.stdout)["url"] == f"{base}/ferry.html"
    assert "Menu" not in json.loads(shown.stdout)["text"]


def test_eval_prints_support_auroc_and_a_calibration_table(settings: Settings,
                                                          tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in [
        {"id": "ferry", "title": "Ferry returns",
         "text": "The Glass Harbour ferry resumed sailing on Monday after a two-week strike."},
        {"id": "orchard", "title": "Orchard prize",
         "text": "The Wendle orchard won the regional cider prize for its dry perry."},
    ]) + "\n", encoding="utf-8")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in [
        {"id": "q1", "question": "When did the Glass Harbour ferry resume sailing?",
         "gold_doc_ids": ["ferry"], "answers": ["Monday"]},
        {"id": "q2", "question": "Which orchard won the cider prize?",
         "gold_doc_ids": ["orchard"], "answers": ["Wendle"]},
        {"id": "q3", "question": "How deep is the Mariana Trench?", "gold_doc_ids": [],
         "answerable": False},
    ]) + "\n", encoding="utf-8")

    result = run(settings.data_dir, "eval", "--corpus", str(corpus), "--questions",
                 str(questions), "--out", str(tmp_path / "report.json"))

    assert result.exit_code == 0, result.output
    assert "support_auroc_answerable" in result.stdout
    assert "calibration" in result.stdout and "share right" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert sum(row["questions"] for row in report["calibration"]) == 3
    assert report["summary"]["support_auroc_answerable"] is not None


# Issue 15: ids, the data folder, progress, skipped files, version, collections ------------


LONG_ID = "2026/february/harbour-authority-approves-the-eastern-breakwater-extension.md"
BREAKWATER = ("# Harbour Authority Approves Eastern Breakwater Extension\n\nThe Pellmore harbour "
              "authority voted on Tuesday to extend the eastern breakwater by 240 metres.\n\n"
              "Work is due to start in September and should take two winters, said the harbour "
              "master, Edda Lindqvist.\n")


def test_docs_list_prints_whole_ids_that_docs_show_takes(settings: Settings,
                                                         tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    (articles / LONG_ID).parent.mkdir(parents=True)
    (articles / LONG_ID).write_text(BREAKWATER, encoding="utf-8")
    (articles / "tide.md").write_text("# Spring Tides\n\nThe spring tide reached 4.1 metres "
                                      "at Pellmore on Sunday.\n", encoding="utf-8")
    assert run(settings.data_dir, "ingest", str(articles)).exit_code == 0

    for columns in (200, 80, 40):  # a wide terminal, a pipe's default, a narrow window
        listed = run(settings.data_dir, "docs", "list", columns=columns)
        assert listed.exit_code == 0, listed.output
        words = {word for line in listed.stdout.splitlines()
                 for word in line.replace("│", " ").split()}
        assert {LONG_ID, "tide.md"} <= words, (columns, listed.stdout)

    shown = run(settings.data_dir, "docs", "show", LONG_ID)
    assert shown.exit_code == 0, shown.output
    assert "Edda Lindqvist" in flat(shown.stdout)


@pytest.mark.parametrize("command", [
    ["ask", "Who co-leads the lab?"], ["ask", "--batch", "questions.jsonl"], ["docs", "list"],
    ["docs", "show", LAB_DOC], ["docs", "delete", LAB_DOC], ["collections", "list"],
    ["collections", "delete", "articles", "--yes"],
])
def test_a_command_that_reads_creates_no_data_folder(
        command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "elsewhere"
    here.mkdir()
    (here / "questions.jsonl").write_text('{"id": 1, "question": "Who?"}\n', encoding="utf-8")
    monkeypatch.chdir(here)
    monkeypatch.delenv("CITEQA_DATA_DIR", raising=False)

    result = CliRunner().invoke(app, command, env={"COLUMNS": "200"}, catch_exceptions=False)

    assert result.exit_code == 1, result.output
    message = flat(result.output)
    assert f"data folder {here / 'data'} does not exist" in message
    assert "citeqa ingest" in message and "--data-dir" in message
    assert "CITEQA_DATA_DIR" in message
    assert sorted(p.name for p in here.iterdir()) == ["questions.jsonl"]


def test_a_folder_without_citeqa_data_is_left_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()

    result = run(folder, "docs", "list")

    assert result.exit_code == 1
    assert f"data folder {folder} holds no citeqa data" in flat(result.output)
    assert list(folder.iterdir()) == []


def test_ingest_counts_chunks_embedded_while_it_embeds(
        tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    from citeqa import Citeqa

    # Small steps and batches, so the ten sample articles take several of each.
    settings = Settings(data_dir=tmp_path / "data", embedding_batch_size=1,
                        ingest_batch_chunks=4)
    citeqa = Citeqa(settings, embedder=embedder)
    calls: list[tuple[str, int, int]] = []

    report = citeqa.ingest(
        citeqa.read_locations([str(SAMPLES)]),
        progress=lambda done, total: calls.append(("documents", done, total)),
        embedding_progress=lambda done, total: calls.append(("chunks", done, total)))

    documents = [(done, total) for stage, done, total in calls if stage == "documents"]
    chunks = [(done, total) for stage, done, total in calls if stage == "chunks"]
    assert documents[-1] == (10, 10)
    assert calls.index(("documents", 10, 10)) < calls.index(("chunks", 0, report.chunks))
    assert chunks[0] == (0, report.chunks) and chunks[-1] == (report.chunks, report.chunks)
    counts = [done for done, _ in chunks]
    assert counts == sorted(counts)
    between = {done for done in counts if 0 < done < report.chunks}
    assert len(between) >= 5, chunks  # the count moves while the model works, not at the end


def test_unsupported_files_are_reported_once_and_strict_fails(settings: Settings,
                                                              tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "breakwater.md").write_text(BREAKWATER, encoding="utf-8")
    (folder / "tonnage.csv").write_text("month,tonnes\nJanuary,1200\n", encoding="utf-8")

    lenient = run(settings.data_dir, "ingest", str(folder))
    assert lenient.exit_code == 0, lenient.output
    output = flat(lenient.output)
    assert re.search(r"skipped \S*tonnage\.csv: unsupported file type \.csv; use .*\.md", output)
    assert output.count("tonnage.csv") == 1
    assert re.search(r"\badded 1\b", lenient.stdout) and re.search(r"\bskipped 1\b",
                                                                     lenient.stdout)

    strict = run(settings.data_dir, "ingest", str(folder), "--strict")
    assert strict.exit_code == 3, strict.output
    assert re.search(r"\bunchanged 1\b", strict.stdout)
    assert "tonnage.csv" in flat(strict.stderr)

    (folder / "tonnage.csv").unlink()
    clean = run(settings.data_dir, "ingest", str(folder), "--strict")
    assert clean.exit_code == 0, clean.output


def test_ingest_of_nothing_readable_names_each_source_once(settings: Settings,
                                                           tmp_path: Path) -> None:
    folder = tmp_path / "spreadsheets"
    folder.mkdir()
    (folder / "tonnage.csv").write_text("month,tonnes\n", encoding="utf-8")

    result = run(settings.data_dir, "ingest", str(folder))

    assert result.exit_code == 1
    output = flat(result.output)
    assert output.count("tonnage.csv") == 1
    assert "nothing was ingested" in output and "unsupported file type .csv" in output
    collections = run(settings.data_dir, "collections", "list", "--json")
    assert json.loads(collections.stdout)["collections"] == []  # not even an empty one


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"citeqa {version('citeqa')}"


def test_collections_can_be_listed_created_and_deleted(sample_settings: Settings) -> None:
    data_dir = sample_settings.data_dir

    def names() -> dict[str, int]:
        listed = run(data_dir, "collections", "list", "--json")
        assert listed.exit_code == 0, listed.output
        body = json.loads(listed.stdout)
        assert body["default"] == "articles"
        return {c["name"]: c["documents"] for c in body["collections"]}

    assert names() == {"articles": 10}
    table = run(data_dir, "collections", "list")
    assert "articles (default)" in table.stdout and str(data_dir) in flat(table.stdout)

    created = run(data_dir, "collections", "create", "harbour-notes", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout) == {"name": "harbour-notes", "documents": 0, "chunks": 0,
                                          "model": "all-MiniLM-L6-v2"}
    assert names() == {"articles": 10, "harbour-notes": 0}
    again = run(data_dir, "collections", "create", "harbour-notes")
    assert again.exit_code == 1 and "exists already" in flat(again.output)

    declined = run(data_dir, "collections", "delete", "articles", stdin="n\n")
    assert declined.exit_code == 1
    assert "10 documents" in flat(declined.output)
    assert names() == {"articles": 10, "harbour-notes": 0}

    deleted = run(data_dir, "collections", "delete", "harbour-notes", stdin="y\n")
    assert deleted.exit_code == 0, deleted.output
    assert names() == {"articles": 10}
    gone = run(data_dir, "collections", "delete", "harbour-notes", "--yes")
    assert gone.exit_code == 1
    assert "harbour-notes" in flat(gone.output) and str(data_dir) in flat(gone.output)
