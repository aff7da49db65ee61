"""The SQLite catalogue: the only place films, faces, decisions and jobs are written.

`schema` (migrations, connection, transactions, model files), `films` and `faces` hold the reads
and writes; this package's names are what the rest of reelface calls.
"""

from reelface.catalogue.faces import FaceRecord, commit_batch, crop_names, embeddings, faces
from reelface.catalogue.films import (
    NoSuchFilm,
    add_export,
    add_film,
    add_import,
    delete_films,
    film_by_ref,
    film_or_fail,
    films,
    find_film,
    remove_films,
    reset_film,
    same_start,
    same_video,
    set_film_state,
    set_fingerprint,
    supersede,
    twin_share,
    unfingerprinted,
)
from reelface.catalogue.runs import add_decision, add_identity, add_run, set_links
from reelface.catalogue.schema import (
    READ_ONLY,
    SCHEMA_VERSION,
    CatalogueError,
    is_read_only,
    model_id,
    open_catalogue,
    transaction,
)

__all__ = [
    "SCHEMA_VERSION", "CatalogueError", "FaceRecord", "NoSuchFilm", "add_film", "commit_batch",
    "crop_names", "embeddings", "faces", "film_by_ref", "film_or_fail", "films", "find_film",
    "model_id", "open_catalogue", "remove_films", "reset_film", "set_film_state", "transaction",
    "READ_ONLY", "is_read_only", "add_identity", "add_run", "add_export", "add_decision",
    "set_links", "add_import",
    "delete_films", "same_start", "same_video", "set_fingerprint", "supersede", "unfingerprinted",
    "twin_share",
]  # fmt: skip
