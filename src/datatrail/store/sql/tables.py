"""The SQL schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it.

Derived tables (everything but ``events`` and ``audit``) can be rebuilt by
replaying ``events``. Lineage is the bipartite graph stored in ``run_io``:
version --input--> run --output--> version.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

Json = JSON().with_variant(JSONB(), "postgresql")
Time = DateTime(timezone=True)
# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid; BigInteger there
# would lose autoincrement.
Id = BigInteger().with_variant(Integer(), "sqlite")

INPUT = 0
OUTPUT = 1
OBSERVED = "observed"  # the version key of a dataset first seen as an unversioned input

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("created_at", Time, nullable=False),
    # Its listed datasets (deleted_at NULL) and its jobs, counted by ingest in the transaction that adds, hides
    # or shows one (revision 0010): a page of either reads its total here, not by counting every row.
    Column("dataset_count", BigInteger, nullable=False, server_default="0"),
    Column("job_count", BigInteger, nullable=False, server_default="0"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("namespace_id", Id, ForeignKey("namespaces.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", String(32), nullable=False, default="dataset"),
    Column("description", Text),
    Column("created_at", Time, nullable=False),
    Column("deleted_at", Time),
    # The latest dataset-level standard facets (dataSource, ownership, tags, symlinks,
    # documentation, storage…) and the event time they come from: the latest event wins.
    Column("facets", Json),
    Column("facets_time", Time),
    Column("lifecycle", String(32)),  # the last lifecycleStateChange (DROP, RENAME, OVERWRITE…)
    UniqueConstraint("namespace_id", "name", name="uq_datasets_namespace_name"),
)
# A namespace's listed datasets by name (revision 0008): the pages of a listing (LIMIT/OFFSET and keyset) and its
# count walk this index alone.
Index(
    "ix_datasets_listed",
    datasets.c.namespace_id,
    datasets.c.name,
    sqlite_where=datasets.c.deleted_at.is_(None),
    postgresql_where=datasets.c.deleted_at.is_(None),
)
# A namespace's listed datasets by creation time (revision 0011): its first and last (Marquez's namespace
# createdAt and updatedAt) are read at the two ends of this index, not by reading every dataset.
Index(
    "ix_datasets_created",
    datasets.c.namespace_id,
    datasets.c.created_at,
    sqlite_where=datasets.c.deleted_at.is_(None),
    postgresql_where=datasets.c.deleted_at.is_(None),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("dataset_id", Id, ForeignKey("datasets.id"), nullable=False),
    Column("number", Integer, nullable=False),
    # The identity of the version within its dataset: the content digest for
    # data datatrail hashed, else the producer's datasetVersion.
    Column("version_key", Text, nullable=False),
    Column("digest", String(71)),
    Column("size", BigInteger),
    Column("uri", Text),
    Column("format", String(64)),
    Column("file_count", Integer),
    Column("created_at", Time, nullable=False),
    Column("created_by", Text),
    Column("host", Text),
    Column("message", Text),
    Column("run_pk", Id),
    Column("properties", Json),
    # Schema, statistics and quality metrics (profiling.py), from the datatrail_profile facet.
    Column("profile", Json),
    # The standard schema facet's fields, and dataQualityMetrics / outputStatistics.
    Column("schema", Json),
    Column("stats", Json),
    UniqueConstraint("dataset_id", "number", name="uq_versions_dataset_number"),
    UniqueConstraint("dataset_id", "version_key", name="uq_versions_dataset_key"),
)
Index("ix_versions_digest", versions.c.digest)
Index("ix_versions_uri", versions.c.uri)  # versions_at: how a path finds its dataset
# The newest versions first (revision 0013): the home page's datasets changed last, read at the end of this index.
Index("ix_versions_created", versions.c.created_at, versions.c.id)

version_files = Table(
    "version_files",
    metadata,
    Column("version_id", Id, ForeignKey("versions.id"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    sqlite_with_rowid=False,
)

aliases = Table(
    "aliases",
    metadata,
    Column("dataset_id", Id, ForeignKey("datasets.id"), primary_key=True),
    Column("alias", Text, primary_key=True),
    Column("version_id", Id, ForeignKey("versions.id"), nullable=False),
    Column("updated_at", Time, nullable=False),
    Column("updated_by", Text),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("namespace_id", Id, ForeignKey("namespaces.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("type", String(64)),
    Column("description", Text),
    Column("source", Json),
    Column("created_at", Time, nullable=False),
    # sourceCodeLocation, sourceCode, sql, documentation, ownership, tags: the latest event wins.
    Column("facets", Json),
    Column("facets_time", Time),
    # Its runs, counted by ingest as each is stored (revision 0009): a page of jobs reads it, not the runs.
    Column("run_count", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("namespace_id", "name", name="uq_jobs_namespace_name"),
)
Index("ix_jobs_created", jobs.c.namespace_id, jobs.c.created_at)  # as ix_datasets_created (revision 0011)

runs = Table(
    "runs",
    metadata,
    Column("pk", Id, primary_key=True),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("job_id", Id, ForeignKey("jobs.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("state_time", Time),
    Column("started_at", Time),
    Column("ended_at", Time),
    Column("user", Text),
    Column("host", Text),
    Column("command", Text),
    Column("cwd", Text),
    Column("params", Json),
    Column("code", Json),
    Column("error", Text),
    Column("parent_run_id", String(64)),
    Column("workflow", Text),
    # nominalTime, processing_engine, errorMessage details, tags… merged across the run's events.
    Column("facets", Json),
    # Whether a START or RUNNING event of the run is stored; while none is, the run shows start_hint (the start
    # its ending events' facets tell) when that is earlier than started_at (see queries.to_run).
    Column("start_seen", Boolean),
    Column("start_hint", Time),
)
Index("ix_runs_job", runs.c.job_id, runs.c.started_at)
Index("ix_runs_parent", runs.c.parent_run_id)

# Other names of a dataset, from the symlinks facets producers sent (revision 0006): an event naming one
# of them reaches the dataset (events.canonical_name chose the name it is stored under).
dataset_links = Table(
    "dataset_links",
    metadata,
    Column("namespace", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("dataset_id", Id, ForeignKey("datasets.id"), nullable=False),
)

# Outputs a run named before it completed (START, RUNNING) or in a FAIL/ABORT, without content datatrail
# hashed: planned, not versions (revision 0006). A COMPLETE naming the output makes the version.
planned_outputs = Table(
    "planned_outputs",
    metadata,
    Column("run_pk", Id, primary_key=True),
    Column("dataset_id", Id, primary_key=True),
    sqlite_with_rowid=False,
)
# Whether any run announced a dataset (ingest's question for a dataset without a current version): the key
# leads with the run (revision 0012).
Index("ix_planned_outputs_dataset", planned_outputs.c.dataset_id)

# Which remote holds every object of a version (revision 0007): recorded by `datatrail push`, read by a
# client whose own config lacks the remote (pull, checkout, `datatrail remote locate`). Names and URLs only.
content_locations = Table(
    "content_locations",
    metadata,
    Column("version_id", Id, ForeignKey("versions.id"), primary_key=True),
    Column("url", Text, primary_key=True),
    Column("remote", Text, nullable=False),
    Column("recorded_at", Time, nullable=False),
    Column("recorded_by", Text),
)

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("run_pk", Id, ForeignKey("runs.pk"), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("value", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("logged_at", Time),
)

run_io = Table(
    "run_io",
    metadata,
    Column("run_pk", Id, primary_key=True),
    Column("direction", SmallInteger, primary_key=True),
    Column("version_id", Id, primary_key=True),
    sqlite_with_rowid=False,
)
Index("ix_run_io_version", run_io.c.version_id, run_io.c.direction, run_io.c.run_pk)

column_edges = Table(
    "column_edges",
    metadata,
    Column("output_version_id", Id, ForeignKey("versions.id"), primary_key=True),
    Column("output_column", Text, primary_key=True),
    Column("input_version_id", Id, ForeignKey("versions.id"), primary_key=True),
    Column("input_column", Text, primary_key=True),
    Column("transformations", Json),
    Column("run_pk", Id),
    sqlite_with_rowid=False,
)
Index("ix_column_edges_input", column_edges.c.input_version_id, column_edges.c.input_column)

check_results = Table(
    "check_results",
    metadata,
    Column("id", Id, primary_key=True),
    Column("version_id", Id, ForeignKey("versions.id"), nullable=False),
    Column("event_id", Id, nullable=False),
    Column("position", Integer, nullable=False),
    Column("rule", Text, nullable=False),
    Column("name", Text),
    Column("column_name", Text),
    Column("severity", String(16), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("observed", Json),
    Column("expected", Text),
    Column("message", Text),
    Column("checked_at", Time, nullable=False),
    Column("checked_by", Text),
    UniqueConstraint("event_id", "version_id", "position", name="uq_check_results_event"),
)
Index("ix_check_results_version", check_results.c.version_id, check_results.c.checked_at)
# The versions with a failed check (revision 0013): the home page's failing versions without reading every result.
Index(
    "ix_check_results_failed",
    check_results.c.version_id,
    sqlite_where=~check_results.c.success,
    postgresql_where=~check_results.c.success,
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("event_hash", String(64), nullable=False, unique=True),
    Column("event_type", String(16)),
    Column("event_time", Time),
    Column("run_id", String(64)),
    Column("payload", Text, nullable=False),
    Column("received_at", Time, nullable=False),
)
Index("ix_events_run", events.c.run_id)

audit = Table(
    "audit",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("time", Time, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text),
    Column("outcome", String(16), nullable=False),
    Column("details", Json),
    Column("event_id", Id),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# ---- ML lifecycle (migration 0005): derived from the datatrail_deployment and
# datatrail_drift run facets by store/sql/ml_apply.py.

# Which version of a dataset (a model, usually) is live in an environment, since
# when and by whom. ``retired_at`` is the time of the next deployment to the same
# environment and dataset, recomputed on every deploy so arrival order does not matter.
deployments = Table(
    "deployments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_pk", Id, ForeignKey("runs.pk"), nullable=False),
    Column("event_id", Id, nullable=False),
    Column("environment", Text, nullable=False),
    Column("dataset_id", Id, ForeignKey("datasets.id"), nullable=False),
    Column("version_id", Id, ForeignKey("versions.id"), nullable=False),
    Column("deployed_at", Time, nullable=False),
    Column("deployed_by", Text),
    Column("retired_at", Time),
    Column("retired_by_run_pk", Id),
    UniqueConstraint("run_pk", name="uq_deployments_run"),
)
Index("ix_deployments_env", deployments.c.environment, deployments.c.dataset_id, deployments.c.deployed_at)
Index("ix_deployments_version", deployments.c.version_id)

# One drift report per monitor run: a current batch compared with a reference version.
drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_pk", Id, ForeignKey("runs.pk"), nullable=False),
    Column("event_id", Id, nullable=False),
    Column("reference_version_id", Id, ForeignKey("versions.id"), nullable=False),
    Column("current_version_id", Id, ForeignKey("versions.id"), nullable=False),
    Column("environment", Text),
    Column("deployment_run_id", String(64)),
    Column("created_at", Time, nullable=False),
    Column("drifted", Boolean, nullable=False),
    Column("report", Json, nullable=False),
    UniqueConstraint("run_pk", name="uq_drift_reports_run"),
)
Index("ix_drift_reports_env", drift_reports.c.environment, drift_reports.c.created_at)
Index("ix_drift_reports_current", drift_reports.c.current_version_id)

# ---------------------------------------------------------------- access control (issue 6; store/sql/security.py)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("admin", Boolean, nullable=False, default=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", Text),
)

tokens = Table(
    "tokens",
    metadata,
    # The public id (`tok_…`, shown by `token list`); the secret itself is never stored.
    Column("id", String(32), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("label", Text),
    # SHA-256 of the high-entropy secret, looked up by value and compared in constant time.
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time),
    Column("revoked_at", Time),
)
Index("ix_tokens_user", tokens.c.user_id)

grants = Table(
    "grants",
    metadata,
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("role", String(16), primary_key=True),  # viewer, editor, owner
    Column("pattern", Text, primary_key=True),  # an fnmatch-style namespace pattern
    Column("created_at", Time, nullable=False),
    Column("created_by", Text),
)

classifications = Table(
    "classifications",
    metadata,
    Column("dataset_id", Id, ForeignKey("datasets.id"), primary_key=True),
    Column("column_name", Text, primary_key=True),  # "*": the whole dataset
    Column("label", String(64), primary_key=True),  # pii, phi, confidential…
    Column("source", String(32), nullable=False),  # datatrail (classify) or the tag's source
    Column("event_id", Id),
    Column("created_at", Time, nullable=False),
)

# ---------------------------------------------------------------- trigram search (revision 0008, PostgreSQL only)
# pg_trgm's GIN indexes answer `name ILIKE '%d9999%'` (search) and `target LIKE '%d9999%'` (a dataset's audit
# entries) without reading every row. SQLite has no such index: there the same queries scan, as before.


def _trigram(name: str, column: Column[str]) -> Index:
    index = Index(name, column, postgresql_using="gin", postgresql_ops={column.name: "gin_trgm_ops"})
    return index.ddl_if(dialect="postgresql")


def _wide(name: str, table: Table) -> Index:
    """Rows whose name has a character outside printable ASCII: search keeps them all (see reads.WIDE)."""
    index = Index(name, table.c.id, postgresql_where=table.c.name.op("~")(literal_column("'[^ -~]'")))
    return index.ddl_if(dialect="postgresql")


TRIGRAM_INDEXES = (
    _wide("ix_datasets_name_wide", datasets),
    _wide("ix_jobs_name_wide", jobs),
    _trigram("ix_datasets_name_trgm", datasets.c.name),
    _trigram("ix_jobs_name_trgm", jobs.c.name),
    _trigram("ix_audit_target_trgm", audit.c.target),
)
