"""`citeqa verify FILE|-`: the report, --json, --strict, and the files it refuses, over a real
data folder of the sample articles. Each run that checks loads the real model, so runs are few
and each checks several things."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import LAB_DOC
from typer.testing import CliRunner, Result

from core.settings import Settings
from server.cli import app

pytestmark = pytest.mark.slow

CHATBOT_ANSWER = (
    "Great question! The Northgate-Corvalis AI Lab will open in March 2026 in Rotterdam.\n"
    "About 60 researchers will work at the lab. "
    "The city also plans a cable car over the harbour.\n")
SUPPORTED = "About 60 researchers will work at the lab. Governor Klara Hendriksen said " \
            "inflation would stay near the 2 percent target.\n"


def run(settings: Settings, *args: str, stdin: str | bytes | None = None) -> Result:
    """`citeqa --data-dir DATA verify ARGS…`; a Python exception fails the test."""
    return CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "verify", *args],
                              env={"COLUMNS": "300"}, input=stdin, catch_exceptions=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_report_marks_each_sentence_with_its_evidence(sample_settings: Settings,
                                                          tmp_path: Path) -> None:
    answer = tmp_path / "answer.txt"
    answer.write_text(CHATBOT_ANSWER, encoding="utf-8")
    result = run(sample_settings, str(answer))
    assert result.exit_code == 0, result.output
    lines = [flat(line) for line in result.stdout.splitlines() if line.strip()]
    verdict_lines = [line for line in lines if line[0] in "✓✗?–"]
    assert [line.split(" (")[0] for line in verdict_lines] == [
        "– not checkable", "✗ contradicted", "✓ supported", "? unsupported"]
    report = flat(result.stdout)
    # The contradiction says what differs and quotes the article's exact sentence.
    assert 'says "March" where the article says "September"' in report
    assert "the article says: Northgate University and Corvalis Systems" in report
    assert f"({LAB_DOC}, characters" in report
    assert "“About 60 researchers will work at the lab once it is fully staffed" in report
    # What is closest to an unsupported sentence is not shown as its source.
    assert "closest:" in report
    assert ("4 sentences: 1 supported, 1 contradicted, 1 unsupported, 1 not checkable "
            "(collection articles, as of ") in report


def test_strict_fails_a_text_with_a_claim_the_articles_do_not_back(
        sample_settings: Settings) -> None:
    refused = run(sample_settings, "-", "--strict", stdin=CHATBOT_ANSWER)
    assert refused.exit_code == 3, refused.output
    assert "1 contradicted, 1 unsupported" in flat(refused.stdout)
    backed = run(sample_settings, "-", "--strict", stdin=SUPPORTED)
    assert backed.exit_code == 0, backed.output
    assert "2 sentences: 2 supported" in flat(backed.stdout)


def test_json_is_the_verification_object(sample_settings: Settings) -> None:
    result = run(sample_settings, "-", "--json", stdin=CHATBOT_ANSWER)
    assert result.exit_code == 0, result.output
    verification = json.loads(result.stdout)
    assert verification["collection"] == "articles"
    assert verification["as_of"] == datetime.now(UTC).date().isoformat()
    assert verification["counts"] == {"supported": 1, "contradicted": 1, "unsupported": 1,
                                      "not_checkable": 1}
    for sentence in verification["sentences"]:
        assert CHATBOT_ANSWER[sentence["start"]:sentence["end"]] == sentence["text"]
    assert verification["sentences"][2]["evidence"][0]["doc_id"] == LAB_DOC


def test_as_of_and_doc_id_limit_the_evidence(sample_settings: Settings) -> None:
    rate = "The Bank of Esterland cut its main interest rate to 3.50 percent."
    result = run(sample_settings, "-", "--json", "--as-of", "2026-01-01", stdin=rate)
    assert result.exit_code == 0, result.output
    before = json.loads(result.stdout)
    assert before["as_of"] == "2026-01-01"
    assert before["sentences"][0]["verdict"] == "unsupported"
    elsewhere = run(sample_settings, "-", "--json", "--doc-id", "deep-sea-shrimp.md",
                    stdin="About 60 researchers will work at the lab.")
    [sentence] = json.loads(elsewhere.stdout)["sentences"]
    assert sentence["verdict"] == "unsupported"
    assert all(e["doc_id"] == "deep-sea-shrimp.md" for e in sentence["evidence"])


@pytest.mark.parametrize(("content", "code", "said"), [
    (b"%PDF-1.7\n\x00\x01\x02\x03 binary", "binary_text", "looks like a binary file"),
    ("Le café a ouvert à Lyon.".encode("latin-1"), "not_utf8", "is not UTF-8 text"),
    (b"x" * 4_000_001, "text_too_long", "CITEQA_MAX_VERIFY_CHARS"),
])
def test_files_that_are_not_text_are_refused_before_the_model_loads(
        sample_settings: Settings, tmp_path: Path, content: bytes, code: str,
        said: str) -> None:
    odd = tmp_path / "odd.bin"
    odd.write_bytes(content)
    result = run(sample_settings, str(odd))
    assert result.exit_code == 1
    assert said in flat(result.stderr) and f"({code})" in result.stderr
    assert result.stdout == ""
    piped = run(sample_settings, "-", stdin=content)
    assert piped.exit_code == 1 and f"({code})" in piped.stderr
    assert "standard input" in flat(piped.stderr)


def test_missing_files_empty_texts_and_unknown_collections_are_clear_errors(
        sample_settings: Settings, tmp_path: Path) -> None:
    missing = run(sample_settings, str(tmp_path / "nowhere.txt"))
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr and "(unreadable_file)" in missing.stderr
    empty = run(sample_settings, "-", stdin="  \n ")
    assert empty.exit_code == 1 and "(empty_text)" in empty.stderr
    unknown = run(sample_settings, "-", "--collection", "nowhere", stdin=SUPPORTED)
    assert unknown.exit_code == 1 and "(collection_not_found)" in unknown.stderr
    bad_date = run(sample_settings, "-", "--as-of", "May 2", stdin=SUPPORTED)
    assert bad_date.exit_code == 1 and "--as-of must be a date" in flat(bad_date.stderr)


def test_help_explains_the_verdicts_and_options() -> None:
    result = CliRunner().invoke(app, ["verify", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    shown = flat(result.output)
    for words in ("FILE|-", "--json", "--strict", "--collection", "--as-of", "--doc-id",
                  "--source", "supported", "contradicted", "unsupported", "not checkable",
                  "status 3"):
        assert words in shown, words
    top = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "verify" in top.output
