-- The catalog schema of every citeqa data folder written before the schema had a version
-- (PRAGMA user_version 0), copied from index/catalog.py at commit 95b33d8. Never edit:
-- tests/test_migrations.py builds such a folder from it and checks that it still opens.
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT,
    date TEXT,
    date_num INTEGER,
    source TEXT,
    metadata TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    chunk_count INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id)
);
-- Every question asks which documents are dated after its as_of (and which are undated):
-- without this index that scan reads every document's text.
CREATE INDEX IF NOT EXISTS documents_by_date ON documents (collection, date_num);
CREATE TABLE IF NOT EXISTS chunks (
    collection TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    tokens TEXT NOT NULL,
    PRIMARY KEY (collection, chunk_id)
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks (collection, doc_id);
CREATE TABLE IF NOT EXISTS sentences (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (collection, doc_id, start)
);
