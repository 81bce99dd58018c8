"""What every command shares: the consoles, the error handling, common options, and opening
the application over the settings and the data folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from core.errors import CiteqaError, InvalidInput, NotFound
from core.settings import Settings
from index.store import catalog_path

if TYPE_CHECKING:
    from citeqa import Citeqa

console = Console()
errors = Console(stderr=True)

# Errors about what a data folder holds: the message names the folder, since the same
# command run from another directory (or with another CITEQA_DATA_DIR) sees another one.
_ABOUT_STORED_DATA = frozenset({"collection_not_found", "document_not_found",
                                "vectors_not_found", "model_mismatch"})


class NoDataFolder(NotFound):
    """A command that only reads was pointed at a folder holding no citeqa data."""

    code = "data_dir_not_found"


class ErrorGroup(TyperGroup):
    """The one place where CLI errors become messages and exit codes."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CiteqaError as exc:
            detail = exc.detail
            if exc.code in _ABOUT_STORED_DATA and isinstance(ctx.obj, Settings):
                detail = f"{detail} (data folder: {shown(ctx.obj.data_dir)})"
            errors.print(f"[bold red]error:[/] {escape(detail)} [dim]({exc.code})[/]")
            raise typer.Exit(code=1) from exc


CollectionOpt = Annotated[
    str | None,
    typer.Option("--collection", "-c", help="Collection to use \\[default: CITEQA_COLLECTION or "
                 "'articles']."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
LlmOpt = Annotated[str | None, typer.Option(
    "--llm", help="Write answers with a chat model and check every sentence's citation: "
    "openai:<model> (with CITEQA_LLM_BASE_URL / CITEQA_LLM_API_KEY) or ollama:<model>; "
    "none for extractive answers \\[default: CITEQA_LLM, else none].", show_default=False)]


def settings_from(**overrides: Any) -> Settings:
    """The settings from the environment, with the command line's overrides."""
    try:
        return Settings(**overrides)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise InvalidInput(f"invalid settings: {exc}", code="invalid_settings") from exc


def shown(folder: Path) -> str:
    """A folder as the user can find it again from anywhere."""
    return str(folder.absolute())


def require_data(settings: Settings) -> None:
    """Refuse, before anything is opened (which would create it), a data folder that holds
    no citeqa data: a command that only reads has nothing to read there."""
    if settings.catalog_url or catalog_path(settings.data_dir).is_file():
        # The PostgreSQL catalog is opened, and an empty one reported, by the command itself.
        return
    folder = settings.data_dir
    state = "does not exist" if not folder.exists() else "holds no citeqa data"
    raise NoDataFolder(
        f"data folder {shown(folder)} {state}: ingest articles first (citeqa ingest PATH...), "
        "or name the folder that holds them with --data-dir or CITEQA_DATA_DIR")


def open_citeqa(ctx: typer.Context, *, load_model: bool = True, existing: bool = True
                ) -> Citeqa:
    """The application over the settings. `existing`: the data folder must hold data already
    (commands that only read or delete). The model is loaded now unless the command needs none
    (listing, showing and deleting)."""
    # Imported here: `citeqa --help` should not wait for the answering stack to load.
    from citeqa import Citeqa

    settings: Settings = ctx.obj
    if existing:
        require_data(settings)
    if not load_model:
        return Citeqa(settings)
    with errors.status("Loading the embedding model…"):
        return Citeqa.build(settings)


def with_llm(ctx: typer.Context, llm: str | None) -> None:
    """Let --llm override CITEQA_LLM for this command."""
    if llm is not None:
        ctx.obj = ctx.obj.model_copy(update={"llm": llm})
