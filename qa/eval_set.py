"""Reading a labelled question set: JSONL (gzipped when it ends in .gz), one question per
line, checked line by line so a bad line is named before any work starts. Format:
../shared/eval/README.md."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from qa.evaluation import EvalQuestion
from qa.timeframe import parse_day


def read_questions(path: Path, limit: int | None = None) -> list[EvalQuestion]:
    """Questions from a JSONL file (gzipped when it ends in .gz), the first `limit` of them."""
    if limit is not None and limit < 1:
        raise InvalidInput(f"--limit must be at least 1, got {limit}")
    if not path.is_file():
        raise InvalidInput(f"question file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    line_number = 0
    try:
        with opener(path, "rt", encoding="utf-8-sig") as lines:
            for line_number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                question = _parse_question(line, where=f"{path} line {line_number}")
                if question.id in seen:
                    raise InvalidInput(f"{path} line {line_number}: duplicate question id "
                                       f"{question.id!r}")
                seen.add(question.id)
                questions.append(question)
                if limit is not None and len(questions) >= limit:
                    break
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path} (after line {line_number}): {exc}") from exc
    return questions


def _parse_question(line: str, *, where: str) -> EvalQuestion:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where}: invalid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise InvalidInput(f"{where}: expected a JSON object with 'id' and 'question'")
    question_id = record.get("id")
    if question_id is None or not str(question_id).strip():
        raise InvalidInput(f"{where}: missing 'id'")
    text = record.get("question")
    if not isinstance(text, str):
        raise InvalidInput(f"{where}: 'question' must be a string")
    answerable = _optional_bool(record, "answerable", where)
    if "gold_doc_ids" not in record and answerable is not False:
        raise InvalidInput(f"{where}: missing 'gold_doc_ids' (a list of document ids)")
    return EvalQuestion(
        id=str(question_id),
        question=text,
        gold_doc_ids=_string_list(record.get("gold_doc_ids", []), "gold_doc_ids", where),
        answers=_string_list(record.get("answers", []), "answers", where),
        answerable=answerable,
        answer_in_evidence=_optional_bool(record, "answer_in_evidence", where),
        date=_optional_date(record, where),
    )


def _optional_date(record: dict[str, Any], where: str) -> str | None:
    value = record.get("date")
    if value is None:
        return None
    # RealTimeQA writes 2023/01/05; a timestamp's day is its date.
    day = parse_day(value.strip()[:10].replace("/", "-")) if isinstance(value, str) else None
    if day is None:
        raise InvalidInput(f"{where}: 'date' must be a date like 2024-05-02, got {value!r}")
    return day.isoformat()


def _string_list(value: Any, name: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise InvalidInput(f"{where}: '{name}' must be a list of strings")
    return [str(v) for v in value]


def _optional_bool(record: dict[str, Any], name: str, where: str) -> bool | None:
    value = record.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidInput(f"{where}: '{name}' must be true or false")
    return value


# --- metrics -------------------------------------------------------------------------------
