"""The HTTP API, end to end: real model, real Chroma, real catalog in a temp data folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LAB_DOC
from fastapi.testclient import TestClient

from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from server.app import create_app

LAB_QUESTION = "Who co-leads the lab?"
UNRELATED_QUESTION = "What is the boiling point of mercury?"
KEEPER_QUESTION = "Who is the keeper of the Kestrel Point Lighthouse?"

LIGHTHOUSE_V1 = (
    "Kestrel Point Lighthouse Restored\n\n"
    "The Kestrel Point Lighthouse on the island of Varnholm has reopened to visitors after a "
    "three-year restoration.\n\n"
    "The keeper of the Kestrel Point Lighthouse is Ingrid Solvang, who has tended the light "
    "since 2009 and oversaw the restoration.\n\n"
    "Workers replaced the rusted lantern room, repainted the tower in red and white bands and "
    "repaired the Fresnel lens by hand.\n\n"
    "The work cost 2.4 million kroner and was paid for by the Varnholm Heritage Trust.\n"
)
LIGHTHOUSE_V2 = LIGHTHOUSE_V1.replace("Ingrid Solvang", "Aldric Penhallow")


def ask(client: TestClient, question: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/ask", json={"question": question, **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def document_text(client: TestClient, doc_id: str) -> str:
    response = client.get(f"/v1/documents/{doc_id}")
    assert response.status_code == 200, response.text
    text: str = response.json()["text"]
    return text


def upload(client: TestClient, *files: tuple[str, bytes]) -> Any:
    return client.post(
        "/v1/documents",
        files=[("file", (name, data, "application/octet-stream")) for name, data in files],
    )


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """An error is exactly `{"error", "detail"}` JSON with the status, never a stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}
    assert isinstance(body["detail"], str) and body["detail"]
    if code is not None:
        assert body["error"] == code
    assert "Traceback" not in response.text
    return body


# Asking -------------------------------------------------------------------------------------


def test_ask_answers_with_exact_citations(client: TestClient) -> None:
    answer = ask(client, LAB_QUESTION)

    assert answer["question"] == LAB_QUESTION
    assert answer["abstained"] is False
    assert "Miriam Okafor" in answer["answer"]
    assert "Tomas Verhoeven" in answer["answer"]
    assert answer["citations"], "a non-abstained answer cites its evidence"
    assert answer["citations"][0]["doc_id"] == LAB_DOC
    assert [c["n"] for c in answer["citations"]] == list(range(1, len(answer["citations"]) + 1))
    for citation in answer["citations"]:
        text = document_text(client, citation["doc_id"])
        assert citation["quote"] == text[citation["start"]:citation["end"]]
        assert f"[{citation['n']}]" in answer["answer"]
    assert answer["passages"]
    for passage in answer["passages"]:
        text = document_text(client, passage["doc_id"])
        assert passage["text"] == text[passage["start"]:passage["end"]]
    assert "total" in answer["timings_ms"]


def test_unrelated_question_abstains_without_citations(client: TestClient) -> None:
    answer = ask(client, UNRELATED_QUESTION)

    assert answer["abstained"] is True
    assert answer["citations"] == []
    assert "Okafor" not in answer["answer"]


@pytest.mark.parametrize("top_k", [1, 3, 8])
def test_top_k_limits_passages(client: TestClient, top_k: int) -> None:
    answer = ask(client, LAB_QUESTION, top_k=top_k)

    assert len(answer["passages"]) == top_k


def test_doc_id_filter_keeps_retrieval_to_that_document(client: TestClient) -> None:
    answer = ask(client, LAB_QUESTION, top_k=10,
                 filters={"doc_ids": ["brackenford-tram-line.md"]})

    assert answer["passages"]
    assert {p["doc_id"] for p in answer["passages"]} == {"brackenford-tram-line.md"}
    assert all(c["doc_id"] == "brackenford-tram-line.md" for c in answer["citations"])


def test_source_filter_keeps_retrieval_to_that_source(client: TestClient) -> None:
    answer = ask(client, LAB_QUESTION, top_k=10, filters={"source": "Peloton Daily"})

    assert answer["passages"]
    assert {p["doc_id"] for p in answer["passages"]} == {"carpathian-ridge-cycling.md"}
    assert "Miriam Okafor" not in answer["answer"]

    either = ask(client, LAB_QUESTION, top_k=20,
                 filters={"source": ["Peloton Daily", "The Harbour Ledger"]})
    assert {p["doc_id"] for p in either["passages"]} == {"carpathian-ridge-cycling.md", LAB_DOC}


def test_date_filters_keep_retrieval_to_the_date_range(client: TestClient) -> None:
    # Summer 2026: the wildfire (2026-07-30) and the chess festival (2026-08-16).
    answer = ask(client, LAB_QUESTION, top_k=20,
                 filters={"date_from": "2026-07-01", "date_to": "2026-08-31"})

    assert {p["doc_id"] for p in answer["passages"]} == {
        "sierra-dorada-wildfire.md", "lakeshore-chess-festival.md",
    }

    only_from = ask(client, LAB_QUESTION, top_k=50, filters={"date_from": "2026-10-01"})
    assert {p["doc_id"] for p in only_from["passages"]} == {
        "rsv-vaccine-trial.md", "fernleaf-robotics-funding.md",
    }

    only_to = ask(client, LAB_QUESTION, top_k=50, filters={"date_to": "2026-02-28"})
    assert {p["doc_id"] for p in only_to["passages"]} == {LAB_DOC}
    assert only_to["abstained"] is False
    assert "Miriam Okafor" in only_to["answer"]


@pytest.mark.parametrize(("filters", "named"), [
    ({"source": "Nobody's Gazette"}, "source Nobody's Gazette"),
    ({"doc_ids": ["not-there.md"]}, "document not-there.md"),
    ({"date_from": "2030-01-01"}, "dated from 2030-01-01"),
])
def test_filters_matching_nothing_say_so_instead_of_the_articles_do_not_say(
        client: TestClient, filters: dict[str, Any], named: str) -> None:
    answer = ask(client, LAB_QUESTION, filters=filters)

    assert answer["abstained"] is True and answer["abstain_reason"] == "no_matching_documents"
    assert answer["citations"] == [] and answer["passages"] == []
    assert named in answer["answer"] and "do not say" not in answer["answer"]


def test_reversed_dates_are_refused_with_what_to_do(client: TestClient) -> None:
    response = client.post("/v1/ask", json={
        "question": LAB_QUESTION, "filters": {"date_from": "2026-09-01", "date_to": "2026-01-01"}})

    body = assert_error(response, 400, "empty_date_range")
    assert "swap" in body["detail"]


def test_asked_as_of_a_day_before_every_article_says_so(client: TestClient) -> None:
    answer = ask(client, LAB_QUESTION, as_of="2020-01-01")

    assert answer["abstain_reason"] == "no_matching_documents"
    assert "not dated after 2020-01-01" in answer["answer"]


def test_an_empty_collection_says_it_is_empty(client: TestClient) -> None:
    assert client.post("/v1/collections", json={"name": "drafts"}).status_code in (200, 201)

    answer = ask(client, LAB_QUESTION, collection="drafts")

    assert answer["abstain_reason"] == "empty_collection"
    assert "\u201cdrafts\u201d has no articles yet" in answer["answer"]


def test_a_question_the_articles_do_not_answer_still_says_so(client: TestClient) -> None:
    answer = ask(client, "What is the boiling point of liquid nitrogen at sea level?")

    assert answer["abstained"] is True and answer["abstain_reason"] == "not_supported"
    assert "do not say" in answer["answer"]


def test_a_date_range_notes_the_undated_articles_it_leaves_out(client: TestClient) -> None:
    assert client.post("/v1/documents", json={"documents": [
        {"id": "undated-notice", "title": "Harbour notice",
         "text": "Miriam Okafor will speak at the harbour on Friday about the new lab."},
    ]}).status_code == 200

    answer = ask(client, LAB_QUESTION, filters={"date_from": "2026-01-01"})
    assert answer["notes"] == [
        "1 article has no date, and a date range leaves undated articles out."]
    assert not answer["abstained"]
    assert ask(client, LAB_QUESTION)["notes"] == []

    # The counts are kept between questions, until a write: then counted again.
    assert client.post("/v1/documents", json={"documents": [
        {"id": "undated-schedule", "title": "Ferry schedule",
         "text": "The winter ferry leaves the harbour at seven each morning."},
    ]}).status_code == 200
    assert ask(client, LAB_QUESTION, filters={"date_from": "2026-01-01"})["notes"] == [
        "2 articles have no date, and a date range leaves undated articles out."]
    assert client.delete("/v1/documents/undated-notice").status_code == 200
    assert ask(client, LAB_QUESTION, filters={"date_from": "2026-01-01"})["notes"] == [
        "1 article has no date, and a date range leaves undated articles out."]


def test_invalid_date_filter_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": LAB_QUESTION,
                                            "filters": {"date_from": "yesterday"}})

    body = assert_error(response, 422, "invalid_request")
    assert "date_from" in body["detail"]


# Errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   \n\t "])
def test_empty_question_is_a_400(client: TestClient, question: str) -> None:
    response = client.post("/v1/ask", json={"question": question})

    body = assert_error(response, 400, "empty_question")
    assert "empty" in body["detail"]


def test_overlong_question_is_a_413(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": "why " * 600})

    body = assert_error(response, 413, "question_too_long")
    assert "2,000" in body["detail"]


def test_question_at_the_limit_is_answered(client: TestClient) -> None:
    question = ("Who co-leads the lab? " * 100)[:2000]

    response = client.post("/v1/ask", json={"question": question})

    assert response.status_code == 200, response.text


def test_unknown_collection_is_a_404(client: TestClient) -> None:
    ask_response = client.post("/v1/ask", json={"question": LAB_QUESTION,
                                                "collection": "no-such-collection"})
    body = assert_error(ask_response, 404, "collection_not_found")
    assert "no-such-collection" in body["detail"]

    list_response = client.get("/v1/documents", params={"collection": "no-such-collection"})
    assert_error(list_response, 404, "collection_not_found")


@pytest.mark.parametrize("name", ["a/b", "x", "../articles"])
def test_invalid_collection_name_is_a_400(client: TestClient, name: str) -> None:
    response = client.post("/v1/ask", json={"question": LAB_QUESTION, "collection": name})

    assert_error(response, 400, "invalid_collection")


def test_unknown_document_is_a_404(client: TestClient) -> None:
    body = assert_error(client.get("/v1/documents/nope.md"), 404, "document_not_found")
    assert "nope.md" in body["detail"]

    assert_error(client.delete("/v1/documents/nope.md"), 404, "document_not_found")
    assert len(client.get("/v1/documents").json()["documents"]) == 10


def test_malformed_json_body_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/ask", content=b'{"question": ',
                           headers={"content-type": "application/json"})

    assert_error(response, 422, "invalid_request")


def test_missing_question_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"top_k": 3})

    body = assert_error(response, 422, "invalid_request")
    assert "question" in body["detail"]


@pytest.mark.parametrize("top_k", [0, 101])
def test_top_k_out_of_range_is_a_422(client: TestClient, top_k: int) -> None:
    response = client.post("/v1/ask", json={"question": LAB_QUESTION, "top_k": top_k})

    body = assert_error(response, 422, "invalid_request")
    assert "top_k" in body["detail"]


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")


# Documents ----------------------------------------------------------------------------------


def test_list_documents_shows_metadata(client: TestClient) -> None:
    response = client.get("/v1/documents")

    assert response.status_code == 200
    body = response.json()
    assert body["collection"] == "articles"
    documents = {d["id"]: d for d in body["documents"]}
    assert len(documents) == 10
    assert all(d["title"] and d["source"] and d["date"] and d["chunks"] >= 1
               for d in documents.values())
    assert all("text" not in d for d in documents.values())
    lab = documents[LAB_DOC]
    assert lab["title"] == (
        "Northgate University and Corvalis Systems Open Joint AI Lab in Rotterdam"
    )
    assert lab["source"] == "The Harbour Ledger"
    assert lab["date"] == "2026-02-12"


def test_get_document_returns_its_text(client: TestClient) -> None:
    response = client.get(f"/v1/documents/{LAB_DOC}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == LAB_DOC
    assert body["source"] == "The Harbour Ledger"
    assert "co-led by Dr. Miriam Okafor" in body["text"]
    assert "source: The Harbour Ledger" not in body["text"], "front matter is not article text"


def test_upload_update_and_delete_a_document(client: TestClient) -> None:
    # A new article is added and then cited.
    added = upload(client, ("lighthouse.txt", LIGHTHOUSE_V1.encode()))
    assert added.status_code == 200, added.text
    assert added.json()["added"] == ["lighthouse.txt"]
    assert added.json()["chunks"] >= 1

    answer = ask(client, KEEPER_QUESTION)
    assert answer["abstained"] is False
    assert "Ingrid Solvang" in answer["answer"]
    assert answer["citations"][0]["doc_id"] == "lighthouse.txt"
    text = document_text(client, "lighthouse.txt")
    for citation in answer["citations"]:
        if citation["doc_id"] == "lighthouse.txt":
            assert citation["quote"] == text[citation["start"]:citation["end"]]

    # The same file again changes nothing.
    again = upload(client, ("lighthouse.txt", LIGHTHOUSE_V1.encode()))
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] == ["lighthouse.txt"]
    assert again.json()["added"] == [] and again.json()["updated"] == []
    assert again.json()["chunks"] == 0

    # A changed version replaces the old text everywhere.
    updated = upload(client, ("lighthouse.txt", LIGHTHOUSE_V2.encode()))
    assert updated.status_code == 200, updated.text
    assert updated.json()["updated"] == ["lighthouse.txt"]
    assert updated.json()["added"] == []
    assert "Aldric Penhallow" in document_text(client, "lighthouse.txt")
    assert "Ingrid Solvang" not in document_text(client, "lighthouse.txt")

    answer = ask(client, KEEPER_QUESTION, top_k=100)
    assert "Aldric Penhallow" in answer["answer"]
    assert "Ingrid Solvang" not in answer["answer"]
    old_name = ask(client, "Ingrid Solvang keeper Kestrel Point", top_k=100)
    assert not any("Solvang" in p["text"] for p in old_name["passages"])
    assert not any("Solvang" in c["quote"] for c in old_name["citations"])
    lighthouse_chunks = [p for p in old_name["passages"] if p["doc_id"] == "lighthouse.txt"]
    assert len(lighthouse_chunks) == updated.json()["chunks"], "old chunks are gone"
    listed = {d["id"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert len(listed) == 11

    # Deleted: gone from the catalog, the dense and the lexical index.
    deleted = client.delete("/v1/documents/lighthouse.txt")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"collection": "articles", "deleted": "lighthouse.txt"}
    assert_error(client.get("/v1/documents/lighthouse.txt"), 404, "document_not_found")
    assert len(client.get("/v1/documents").json()["documents"]) == 10

    after = ask(client, KEEPER_QUESTION, top_k=100)
    assert all(c["doc_id"] != "lighthouse.txt" for c in after["citations"])
    assert "Penhallow" not in after["answer"]
    assert all(p["doc_id"] != "lighthouse.txt" for p in after["passages"])
    # Words only the deleted article had: BM25 would find them if it still held the chunks.
    lexical = ask(client, "Penhallow Varnholm Kestrel Fresnel kroner", top_k=100)
    assert all(p["doc_id"] != "lighthouse.txt" for p in lexical["passages"])
    assert all("Varnholm" not in p["text"] for p in lexical["passages"])
    only_it = ask(client, KEEPER_QUESTION, filters={"doc_ids": ["lighthouse.txt"]})
    assert only_it["passages"] == []
    assert only_it["abstained"] is True


def test_upload_of_only_a_binary_file_is_a_422(client: TestClient) -> None:
    response = upload(client, ("blob.txt", b"\x00\x01\x02binary\x00data"))

    body = assert_error(response, 422, "unreadable_file")
    assert "blob.txt" in body["detail"]
    assert "binary" in body["detail"]
    assert_error(client.get("/v1/documents/blob.txt"), 404, "document_not_found")


def test_upload_skips_unreadable_files_and_adds_good_ones(client: TestClient) -> None:
    response = upload(
        client,
        ("blob.txt", b"\x00\x01\x02binary\x00data"),
        ("setup.exe", b"MZ just pretending to be a program"),
        ("latin.txt", b"caf\xe9 au lait"),
        ("lighthouse.txt", LIGHTHOUSE_V1.encode()),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["added"] == ["lighthouse.txt"]
    skipped = {s["name"]: s["reason"] for s in body["skipped"]}
    assert set(skipped) == {"blob.txt", "setup.exe", "latin.txt"}
    assert "binary" in skipped["blob.txt"]
    assert ".exe" in skipped["setup.exe"]
    assert "UTF-8" in skipped["latin.txt"]
    ids = {d["id"] for d in client.get("/v1/documents").json()["documents"]}
    assert "lighthouse.txt" in ids
    assert not ids & {"blob.txt", "setup.exe", "latin.txt"}


def test_upload_of_several_files_adds_them_all(client: TestClient) -> None:
    response = upload(
        client,
        ("lighthouse.txt", LIGHTHOUSE_V1.encode()),
        ("notes.md", b"---\nsource: Varnholm Post\ndate: 2026-12-01\n---\n"
                     b"# Ferry timetable\n\nThe Varnholm ferry now sails at dawn.\n"),
    )

    assert response.status_code == 200, response.text
    assert sorted(response.json()["added"]) == ["lighthouse.txt", "notes.md"]
    notes = client.get("/v1/documents/notes.md").json()
    assert notes["title"] == "Ferry timetable"
    assert notes["source"] == "Varnholm Post"
    assert notes["date"] == "2026-12-01"


def test_json_documents_are_ingested(client: TestClient) -> None:
    response = client.post("/v1/documents", json={"documents": [
        {"id": "kestrel-1", "title": "Kestrel Point Lighthouse Restored", "text": LIGHTHOUSE_V1,
         "source": "Varnholm Post", "date": "2026-11-01"},
    ]})

    assert response.status_code == 200, response.text
    assert response.json()["added"] == ["kestrel-1"]
    stored = client.get("/v1/documents/kestrel-1").json()
    assert stored["title"] == "Kestrel Point Lighthouse Restored"
    assert stored["text"] == LIGHTHOUSE_V1
    assert stored["source"] == "Varnholm Post"
    answer = ask(client, KEEPER_QUESTION)
    assert answer["citations"][0]["doc_id"] == "kestrel-1"
    assert "Ingrid Solvang" in answer["answer"]


def test_jsonl_upload_ingests_its_lines_and_skips_bad_ones(client: TestClient) -> None:
    lines = [
        json.dumps({"id": "kestrel-1", "title": "Kestrel Point", "text": LIGHTHOUSE_V1}),
        "this line is not JSON",
        json.dumps({"id": "no-text"}),
    ]
    response = upload(client, ("batch.jsonl", "\n".join(lines).encode()))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["added"] == ["kestrel-1"]
    skipped = {s["name"]: s["reason"] for s in body["skipped"]}
    assert set(skipped) == {"batch.jsonl line 2", "batch.jsonl line 3"}
    assert "JSON" in skipped["batch.jsonl line 2"]
    assert "text" in skipped["batch.jsonl line 3"]


def test_documents_go_to_the_named_collection(client: TestClient) -> None:
    response = client.post("/v1/documents", params={"collection": "lighthouses"},
                           files=[("file", ("lighthouse.txt", LIGHTHOUSE_V1.encode(),
                                            "text/plain"))])
    assert response.status_code == 200, response.text
    assert response.json()["collection"] == "lighthouses"

    listed = client.get("/v1/documents", params={"collection": "lighthouses"}).json()
    assert [d["id"] for d in listed["documents"]] == ["lighthouse.txt"]
    assert "lighthouse.txt" not in {d["id"] for d in client.get("/v1/documents").json()[
        "documents"]}
    answer = ask(client, KEEPER_QUESTION, collection="lighthouses")
    assert "Ingrid Solvang" in answer["answer"]
    assert {p["doc_id"] for p in answer["passages"]} == {"lighthouse.txt"}
    assert client.get("/healthz").json()["collections"] == 2


def test_collection_with_every_document_deleted_abstains(client: TestClient) -> None:
    for document in client.get("/v1/documents").json()["documents"]:
        assert client.delete(f"/v1/documents/{document['id']}").status_code == 200

    assert client.get("/v1/documents").json()["documents"] == []
    answer = ask(client, LAB_QUESTION)
    assert answer["abstained"] is True
    assert answer["passages"] == []


def test_invalid_json_documents_are_a_422(client: TestClient) -> None:
    response = client.post("/v1/documents", json={"documents": [{"id": "no-text"}]})

    body = assert_error(response, 422, "invalid_request")
    assert "text" in body["detail"]


@pytest.mark.parametrize("filename", ["../../evil.txt", "..\\..\\evil.txt", "/etc/evil.txt"])
def test_upload_with_a_path_in_the_filename_keeps_only_the_name(client: TestClient,
                                                                 filename: str) -> None:
    response = upload(client, (filename, LIGHTHOUSE_V1.encode()))

    assert response.status_code == 200, response.text
    assert response.json()["added"] == ["evil.txt"]
    ids = {d["id"] for d in client.get("/v1/documents").json()["documents"]}
    assert "evil.txt" in ids
    assert not any("/" in doc_id or ".." in doc_id for doc_id in ids)


def test_upload_over_the_limit_is_a_413(settings: Settings,
                                        embedder: SentenceTransformerEmbedder) -> None:
    small = Settings(data_dir=settings.data_dir, max_upload_bytes=2048)
    with TestClient(create_app(small, embedder=embedder)) as client:
        response = upload(client, ("big.txt", b"lighthouse keeper " * 278))  # 5004 bytes

        body = assert_error(response, 413)
        assert "big.txt" in body["detail"]
        assert_error(client.get("/v1/documents"), 404, "collection_not_found")

        fits = upload(client, ("small.txt", LIGHTHOUSE_V1.encode()[:1500]))
        assert fits.status_code == 200, fits.text
        assert fits.json()["added"] == ["small.txt"]


def test_upload_without_files_is_an_error(client: TestClient) -> None:
    no_files = client.post("/v1/documents", data={"collection": "articles"},
                           files=[("other", ("x.txt", b"hello", "text/plain"))])
    assert_error(no_files, 400, "no_files")

    plain = client.post("/v1/documents", content=b"hello",
                        headers={"content-type": "text/plain"})
    assert_error(plain, 415, "unsupported_media_type")


# Service ------------------------------------------------------------------------------------


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["collections"] == 1


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "post" in paths["/v1/ask"]
    assert {"get", "post"} <= set(paths["/v1/documents"])
    assert "multipart/form-data" in paths["/v1/documents"]["post"]["requestBody"]["content"]


def _events(body: str) -> list[tuple[str, Any]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_streamed_answer_arrives_in_pieces_that_add_up_to_the_answer(client: TestClient
                                                                      ) -> None:
    with client.stream("POST", "/v1/ask/stream",
                       json={"question": "Who co-leads the lab?"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.read().decode())
    names = [name for name, _ in events]
    assert names[0] == "question" and names[-1] == "answer"
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) > 5
    final = events[-1][1]
    assert "".join(deltas) == final["answer"]
    assert "Verhoeven" in final["answer"]
    assert final["citations"][0]["doc_id"] == LAB_DOC


def test_bad_stream_request_is_refused_before_streaming(client: TestClient) -> None:
    response = client.post("/v1/ask/stream", json={"question": "   "})
    assert response.status_code == 400
    assert response.json()["error"] == "empty_question"


def test_follow_up_with_history_is_rewritten_and_answered(client: TestClient) -> None:
    first = client.post("/v1/ask", json={"question": "Who co-leads the lab?"}).json()
    history = [{"role": "user", "content": "Who co-leads the lab?"},
               {"role": "assistant", "content": first["answer"]}]
    response = client.post("/v1/ask", json={"question": "What else does the second one do?",
                                            "history": history})
    answer = response.json()
    assert answer["question"] == "What else does the second one do?"
    assert answer["rewritten_question"] == "What else does Tomas Verhoeven do?"
    assert "standards committee" in answer["answer"]
    assert answer["citations"][0]["doc_id"] == LAB_DOC


def test_history_with_an_unknown_role_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": "And then?",
                                            "history": [{"role": "system", "content": "x"}]})
    assert response.status_code == 422


ROWING_PAGE = """<!doctype html><html><head><title>Harbour Rowing Club Wins Regatta</title></head>
<body><nav>Home | Sport | Weather</nav>
<article><h1>Harbour Rowing Club Wins Regatta</h1>
<p>The Harbour Rowing Club won the autumn regatta on the Vessel River on Sunday.</p>
<p>Its eight was coached by Ilse Brandvold, a former national champion.</p></article>
<footer>Copyright the Quayside Weekly</footer></body></html>"""


def test_a_web_page_added_by_url_is_answered_and_cited_with_its_url(
        private_fetch_client: TestClient, web_folder: tuple[Any, str]) -> None:
    client = private_fetch_client
    folder, base = web_folder
    (folder / "regatta.html").write_text(ROWING_PAGE, encoding="utf-8")
    url = f"{base}/regatta.html"
    added = client.post("/v1/documents", json={"url": url})
    assert added.status_code == 200, added.text
    assert added.json()["added"] == [url]
    answer = client.post("/v1/ask", json={"question": "Who coached the Harbour Rowing Club "
                                                      "eight?"}).json()
    citation = answer["citations"][0]
    assert "Ilse Brandvold" in citation["quote"]
    assert citation["url"] == url
    # Its passages carry the url too, beside the answer and from /v1/search.
    assert {p["url"] for p in answer["passages"] if p["doc_id"] == url} == {url}
    found = client.post("/v1/search", json={"query": "Who coached the Harbour Rowing Club "
                                                      "eight?", "top_k": 1}).json()["passages"]
    assert [(p["doc_id"], p["url"]) for p in found] == [(url, url)]
    document = client.get(f"/v1/documents/{url}").json()
    assert "Copyright" not in document["text"] and "Home | Sport" not in document["text"]
    assert document["text"][citation["start"]:citation["end"]] == citation["quote"]


@pytest.fixture
def private_fetch_client(sample_settings: Settings, embedder: SentenceTransformerEmbedder
                         ) -> Iterator[TestClient]:
    """The API with CITEQA_FETCH_ALLOW_PRIVATE on, so it may fetch the loopback web folder."""
    settings = sample_settings.model_copy(update={"fetch_allow_private": True})
    with TestClient(create_app(settings, embedder=embedder)) as test_client:
        yield test_client


def test_a_url_that_cannot_be_fetched_is_a_clear_422(private_fetch_client: TestClient,
                                                     web_folder: tuple[Any, str]) -> None:
    _, base = web_folder
    response = private_fetch_client.post("/v1/documents", json={"url": f"{base}/missing.html"})
    assert response.status_code == 422
    assert "could not fetch" in response.json()["detail"]


def test_collections_are_listed_with_their_sizes(client: TestClient) -> None:
    body = client.get("/v1/collections").json()
    assert body["default"] == "articles"
    (articles,) = [c for c in body["collections"] if c["name"] == "articles"]
    assert articles["documents"] == 10
    assert articles["chunks"] >= 10


def test_the_chat_page_is_served_at_the_root(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_collections_are_created_used_and_deleted(client: TestClient) -> None:
    created = client.post("/v1/collections", json={"name": "lighthouses"})
    assert created.status_code == 201, created.text
    assert created.json()["documents"] == 0
    assert client.post("/v1/collections", json={"name": "lighthouses"}).status_code == 409
    added = client.post("/v1/documents?collection=lighthouses", json={"documents": [
        {"id": "kestrel", "title": "Kestrel Point", "text": LIGHTHOUSE_V1}]})
    assert added.status_code == 200, added.text
    answer = ask(client, "Who keeps the Kestrel Point Lighthouse?", collection="lighthouses")
    assert answer["citations"][0]["doc_id"] == "kestrel"
    names = [c["name"] for c in client.get("/v1/collections").json()["collections"]]
    assert "lighthouses" in names
    assert client.delete("/v1/collections/lighthouses").json() == {"deleted": "lighthouses"}
    gone = client.post("/v1/ask", json={"question": "Who keeps it?", "collection": "lighthouses"})
    assert gone.status_code == 404
    assert client.delete("/v1/collections/lighthouses").status_code == 404


@pytest.mark.parametrize("name", ["ab", "has space", "-dash-first", "a" * 600, "x.sentences"])
def test_bad_collection_names_are_a_clear_400(client: TestClient, name: str) -> None:
    response = client.post("/v1/collections", json={"name": name})
    assert response.status_code == 400
    assert "collection name" in response.json()["detail"]


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    fresh = client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    echoed = client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    refused = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert refused.headers["x-request-id"] != "bad id with spaces"


def test_a_body_over_the_size_limit_is_refused_by_its_length(client: TestClient) -> None:
    response = client.post("/v1/ask", content=b"{}",
                           headers={"content-type": "application/json",
                                    "content-length": str(10**9)})
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"


def test_cors_is_off_by_default_and_on_when_configured(
        client: TestClient, sample_settings: Settings,
        embedder: SentenceTransformerEmbedder) -> None:
    preflight = {"Origin": "https://intranet.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options(
        "/v1/ask", headers=preflight).headers
    settings = sample_settings.model_copy(update={"cors_origins": "https://intranet.example"})
    with TestClient(create_app(settings, embedder=embedder)) as allowed:
        response = allowed.options("/v1/ask", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://intranet.example"


def test_metrics_count_requests_by_route_ingestion_and_collection_size(
        client: TestClient) -> None:
    ask(client, "Who co-leads the lab?")
    assert client.get("/v1/documents/no-such-doc").status_code == 404
    assert upload(client, ("kestrel.txt", LIGHTHOUSE_V1.encode())).status_code == 200
    text = client.get("/metrics").text
    assert 'citeqa_requests_total{method="POST",route="/v1/ask",status="200"} 1.0' in text
    # One series per route template, not one per document id.
    assert 'route="/v1/documents/{doc_id:path}",status="404"} 1.0' in text
    assert 'citeqa_request_seconds_count{method="POST",route="/v1/ask"} 1.0' in text
    assert 'citeqa_ingested_documents_total{outcome="added"} 1.0' in text
    assert 'citeqa_documents{collection="articles"} 11.0' in text


def test_readiness_says_ready_once_loaded(client: TestClient, sample_settings: Settings
                                          ) -> None:
    assert client.get("/readyz").json() == {"status": "ready", "worker": os.getpid()}
    # Without its start-up (the model and store not loaded yet) the app is not ready.
    not_started = TestClient(create_app(sample_settings))
    starting = not_started.get("/readyz")
    assert starting.status_code == 503 and starting.json()["status"] == "starting"
