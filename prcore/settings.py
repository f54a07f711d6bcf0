"""One settings object for the CLI, the HTTP server and the Dagster resources.

Values come from command-line flags (passed as keyword arguments, which win),
then the environment, then the defaults below:

=========================  =========================  ==============================
field                      environment variable       default
=========================  =========================  ==============================
``store``                  ``PROUTER_STORE``          ``ladybug:prouter-data/graph.lbug``
``neo4j_uri``              ``NEO4J_URI``              (none; used when store is ``neo4j``)
``neo4j_username``         ``NEO4J_USERNAME``         ``neo4j``
``neo4j_password``         ``NEO4J_PASSWORD``         (none)
``neo4j_database``         ``NEO4J_DATABASE``         (the server's default)
``model_dir``              ``PROUTER_MODEL_DIR``      ``prouter-data/models``
``embedding_model``        ``PROUTER_EMBEDDING_MODEL``  ``all-MiniLM-L6-v2`` (bundled)
``device``                 ``PROUTER_DEVICE``         ``auto``
``neighbours``             ``PROUTER_NEIGHBOURS``     ``auto`` (``exact``, ``approx``)
``neighbours_approx_from`` ``PROUTER_NEIGHBOURS_APPROX_FROM``  ``50000`` base rows
``neighbours_index_dir``   ``PROUTER_NEIGHBOURS_INDEX_DIR``  ``prouter-data/neighbour-indexes``
=========================  =========================  ==============================

``neighbours`` is how query-query nearest neighbours are searched
(:mod:`gnn.neighbours`): ``auto`` searches exactly below
``neighbours_approx_from`` base rows and approximately (HNSW) from there on.
The approximate indexes built are kept in ``neighbours_index_dir`` (the four used
last), so that the next process reads them instead of building them again
(:mod:`gnn.index_files`); an empty value keeps none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from prcore.errors import ConfigError

__all__ = [
    "BUNDLED_EMBEDDING_MODELS",
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_MODEL_DIR",
    "DEFAULT_NEIGHBOURS_APPROX_FROM",
    "DEFAULT_NEIGHBOURS_INDEX_DIR",
    "DEFAULT_STORE",
    "Settings",
    "is_bundled_embedding",
    "resolve_store_url",
]

DEFAULT_STORE = "ladybug:prouter-data/graph.lbug"
DEFAULT_MODEL_DIR = Path("prouter-data/models")
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
#: The settings that name the bundled all-MiniLM-L6-v2 (``workloads.embeddings`` loads it
#: offline; the light route path encodes with it in numpy).
BUNDLED_EMBEDDING_MODELS = frozenset(
    {DEFAULT_EMBEDDING_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
)
#: Base rows from which ``neighbours=auto`` searches approximately.
DEFAULT_NEIGHBOURS_APPROX_FROM = 50_000
#: Where approximate neighbour indexes are kept between processes ("": nowhere).
DEFAULT_NEIGHBOURS_INDEX_DIR = "prouter-data/neighbour-indexes"


def is_bundled_embedding(model: str) -> bool:
    """Whether the embedding model setting ``model`` names the bundled all-MiniLM-L6-v2."""
    return model in BUNDLED_EMBEDDING_MODELS


def _env(name: str) -> AliasChoices:
    return AliasChoices(name.lower(), name)


class Settings(BaseSettings):
    """Where the graph and the models live, which embedding model, device and neighbour
    search to use."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    store: str = Field(DEFAULT_STORE, validation_alias=_env("PROUTER_STORE"))
    neo4j_uri: str | None = Field(None, validation_alias=_env("NEO4J_URI"))
    neo4j_username: str = Field("neo4j", validation_alias=_env("NEO4J_USERNAME"))
    neo4j_password: str | None = Field(None, validation_alias=_env("NEO4J_PASSWORD"), repr=False)
    neo4j_database: str | None = Field(None, validation_alias=_env("NEO4J_DATABASE"))
    model_dir: Path = Field(DEFAULT_MODEL_DIR, validation_alias=_env("PROUTER_MODEL_DIR"))
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL, validation_alias=_env("PROUTER_EMBEDDING_MODEL")
    )
    device: str = Field("auto", validation_alias=_env("PROUTER_DEVICE"))
    neighbours: Literal["auto", "exact", "approx"] = Field(
        "auto", validation_alias=_env("PROUTER_NEIGHBOURS")
    )
    neighbours_approx_from: int = Field(
        DEFAULT_NEIGHBOURS_APPROX_FROM,
        ge=2,
        validation_alias=_env("PROUTER_NEIGHBOURS_APPROX_FROM"),
    )

    neighbours_index_dir: str = Field(
        DEFAULT_NEIGHBOURS_INDEX_DIR, validation_alias=_env("PROUTER_NEIGHBOURS_INDEX_DIR")
    )

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """The settings from the environment, with the non-None ``overrides`` (flags) on top."""
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid settings: {problems}") from None

    def store_url(self) -> str:
        """The store URL to open (``neo4j`` means ``$NEO4J_URI``)."""
        return resolve_store_url(self.store, self.neo4j_uri)


def resolve_store_url(store: str, neo4j_uri: str | None) -> str:
    """``store`` itself, or ``neo4j_uri`` when ``store`` is ``neo4j``; an error when that
    is unset."""
    if store != "neo4j":
        return store
    if not neo4j_uri:
        raise ConfigError("graph store 'neo4j' needs NEO4J_URI to be set")
    return neo4j_uri
