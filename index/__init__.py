"""Ingestion, in order: `loaders` -> `chunking` -> `embedding` -> `store` (`vectors` in Chroma,
`catalog`, `lexical`), driven by `ingest`. What every layer shares (settings, base errors,
documents, the word analyser) is in `core/`."""
