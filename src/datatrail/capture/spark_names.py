"""How PySpark capture names what a Spark job reads and writes (see docs/capture.md, PySpark).

A local file is named like ``datatrail add`` names it; a remote path as
OpenLineage does (``s3://bucket`` + key, ``s3a``/``s3n`` read as ``s3``); a
catalog table ``<namespace>:<catalog>.<schema>.<table>``, its namespace the Hive
metastore, the catalog's own ``uri``/``warehouse``/``url``, or the session's
warehouse directory. A few py4j calls, no Spark job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from datatrail.capture.spark_plan import Leaf
from datatrail.core.errors import InvalidInput
from datatrail.core.model import DEFAULT_NAMESPACE
from datatrail.recorder import Recorder
from datatrail.remote import default_name

REMOTE_SCHEMES = {"s3a": "s3", "s3n": "s3"}


def identities(recorder: Recorder, spark: Any, leaf: Leaf) -> list[tuple[str, str, Path | None]]:
    """(namespace, name, local path to hash or None) of each dataset a relation reads."""
    if leaf.table:
        local = local_path(leaf.location) if leaf.location else None
        return [(table_namespace(spark, leaf.table[0]), ".".join(leaf.table), local)]
    return [path_identity(recorder, uri) for uri in leaf.paths]


def path_identity(recorder: Recorder, uri: str) -> tuple[str, str, Path | None]:
    """A local file as datatrail names it (relative to the store's root, else ``file://HOST`` + absolute
    path, like pandas under autolog); a remote one as OpenLineage does (``s3://bucket`` + key)."""
    local = local_path(uri)
    if local is not None:
        try:
            return DEFAULT_NAMESPACE, recorder.workspace.default_name(local), local
        except InvalidInput:
            return f"file://{recorder.host}", local.resolve().as_posix(), local
    parts = urlsplit(uri)
    scheme = REMOTE_SCHEMES.get(parts.scheme.lower(), parts.scheme.lower())
    namespace, name = default_name(f"{scheme}://{parts.netloc}{parts.path}", recorder.host)
    return namespace, name, None


def location_identity(uri: str) -> tuple[str, str]:
    """A location as the OpenLineage Spark listener names it (namespace ``file`` or ``scheme://authority``)."""
    parts = urlsplit(uri)
    scheme = REMOTE_SCHEMES.get(parts.scheme.lower(), parts.scheme.lower() or "file")
    if parts.netloc:
        return f"{scheme}://{parts.netloc}", parts.path
    return scheme, unquote(parts.path)


def local_path(uri: str | None) -> Path | None:
    if uri is None:
        return None
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("", "file"):
        return None
    return Path(unquote(parts.path))


def qualify(spark: Any, path: str) -> str:
    """A path given to a writer as the URI Spark writes to: a relative one is against the JVM's working
    directory (where Spark started), which need not be Python's current one."""
    if urlsplit(path).scheme:
        return path
    jvm_cwd = spark.sparkContext._jvm.java.lang.System.getProperty("user.dir")
    return (Path(str(jvm_cwd)) / path).resolve().as_uri() if not os.path.isabs(path) else Path(path).as_uri()


def table_parts(spark: Any, name: str) -> tuple[str, ...]:
    seq = spark._jsparkSession.sessionState().sqlParser().parseMultipartIdentifier(name)
    return resolve_parts(spark, [str(seq.apply(i)) for i in range(seq.size())])


def resolve_parts(spark: Any, parts: list[str]) -> tuple[str, ...]:
    """``t`` and ``db.t`` completed with the current catalog and database, as Spark resolves them."""
    if len(parts) == 1:
        return (spark.catalog.currentCatalog(), spark.catalog.currentDatabase(), parts[0])
    if len(parts) == 2:
        return (spark.catalog.currentCatalog(), *parts)
    return tuple(parts)


def table_namespace(spark: Any, catalog: str) -> str:
    """The namespace of a catalog's tables: a Hive metastore's ``hive://host:port``, a catalog's own
    ``uri`` or ``warehouse`` setting, else the session's warehouse directory (``file:/…/spark-warehouse``)."""
    conf = spark.conf
    if catalog == "spark_catalog" and conf.get("spark.sql.catalogImplementation", "in-memory") == "hive":
        uris = conf.get("spark.hadoop.hive.metastore.uris", None) or conf.get("hive.metastore.uris", None)
        if uris:
            parts = urlsplit(str(uris).split(",")[0])
            return f"hive://{parts.netloc}"
    for key in ("uri", "warehouse", "url"):  # Iceberg, Hive or REST catalogs; JDBC catalogs' url
        value = conf.get(f"spark.sql.catalog.{catalog}.{key}", None) if catalog != "spark_catalog" else None
        if value:
            return str(value).removeprefix("jdbc:").split(";")[0].split("?")[0].rstrip("/")
    return str(conf.get("spark.sql.warehouse.dir")).rstrip("/")


def table_location(spark: Any, table: tuple[str, ...]) -> str | None:
    """A session-catalog table's location (after the write created it), read from the catalog: no job."""
    if table[0] != "spark_catalog" or len(table) != 3:
        return None
    try:
        session = spark._jsparkSession.sessionState()
        ident = session.sqlParser().parseTableIdentifier(f"`{table[1]}`.`{table[2]}`")
        location = session.catalog().getTableMetadata(ident).storage().locationUri()
        return str(location.get().toString()) if location.isDefined() else None
    except Exception:
        return None


def label(uri: str | None) -> str:
    if not uri:
        return "unknown"
    parts = [p for p in urlsplit(uri).path.split("/") if p]
    return "_".join(parts[-2:]) if parts else "unknown"


__all__ = [
    "identities",
    "label",
    "local_path",
    "location_identity",
    "path_identity",
    "qualify",
    "resolve_parts",
    "table_location",
    "table_namespace",
    "table_parts",
]
