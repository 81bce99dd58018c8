"""Ingestion, in order: `loaders` -> `chunking` -> `embedding` -> `store` (Chroma, `catalog`,
`lexical`), driven by `ingest`. `settings` and `errors` serve every layer."""
