"""The long-lived parts of a running citeqa, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel

from index.embedding import Embedder, SentenceTransformerEmbedder
from index.settings import Settings
from index.store import Store
from qa.abstain import SupportModel
from qa.draft import Answerer
from qa.generate import chat_model_from
from qa.pipeline import Assistant


@dataclass
class Services:
    """Settings, store, embedding model and assistant, shared by the CLI and the API."""

    settings: Settings
    store: Store
    embedder: Embedder
    assistant: Assistant
    api_keys: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, *, embedder: Embedder | None = None,
              store: Store | None = None, chat_model: BaseChatModel | None = None,
              answerer: Answerer | None = None, support: SupportModel | None = None
              ) -> Services:
        """Load the model and open the store (the slow part of starting up)."""
        embedder = embedder or SentenceTransformerEmbedder(
            settings.embedding_model, batch_size=settings.embedding_batch_size,
            encoder=settings.encoder, cache_dir=settings.data_dir / "models",
        )
        store = store or Store.from_settings(settings)
        return cls(settings, store, embedder,
                   Assistant(store=store, embedder=embedder, settings=settings,
                             answerer=answerer, support=support,
                             chat_model=chat_model if chat_model is not None
                             else chat_model_from(settings)),
                   api_keys=settings.allowed_api_keys())
