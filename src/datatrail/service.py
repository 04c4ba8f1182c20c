"""The operations of datatrail: the Python API, which the CLI and the server call.

A :class:`Trail` is the composition root of the service layer. It holds a store
(any :class:`~datatrail.store.base.Store`, passed in; on a server, one request's
:class:`~datatrail.security.guard.GuardedStore`) and composes the services that
use it, each receiving only what it needs:

- ``trail.catalog`` — reads (:class:`~datatrail.catalog.Catalog`);
- ``trail.recorder`` — hashing and recording data as versions (:class:`~datatrail.recorder.Recorder`);
- ``trail.ml`` — models, evaluations, deployments, drift (:class:`~datatrail.ml.lifecycle.ModelOps`);
- ``trail.security`` — users, tokens, grants, the audit log (:class:`~datatrail.security.service.SecurityOps`);
- ``trail.storage`` — the bytes of versions: content cache, checkout, remotes, gc (:class:`~datatrail.storage.Storage`).

The methods users learn (``trail.add``, ``trail.get``, ``trail.deploy``…) are
those of the services, reached from the Trail by :class:`delegate`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from datatrail.capture import facts
from datatrail.config import Location, init_config, locate, token_for
from datatrail.core.model import DEFAULT_NAMESPACE, Ref, Version
from datatrail.core.roles import Principal
from datatrail.security.access import Access
from datatrail.store import Store, open_store

if TYPE_CHECKING:
    from concurrent.futures import Future

    from datatrail.capture.run import RunContext
    from datatrail.catalog import MAX_DEPTH, Catalog, parse_as_of
    from datatrail.checks import CheckReport, RuleSource
    from datatrail.core.changes import Event
    from datatrail.core.errors import DatatrailError
    from datatrail.core.results import IngestResult
    from datatrail.hashing import HashResult
    from datatrail.ml.lifecycle import ModelOps
    from datatrail.recorder import AddResult, Recorder
    from datatrail.rerun import RerunReport
    from datatrail.security.service import SecurityOps
    from datatrail.storage import Storage
    from datatrail.verify import VerifyReport
    from datatrail.workspace import Workspace
else:
    # The services are imported when a Trail first uses one, not with this module: a read
    # (`datatrail ls`) loads the catalog and its store, not hashing, ML, security or content.
    # `delegate` only needs a method's name until it is called; mypy sees the classes above.

    class _Later:
        """A service class that is not imported yet: ``delegate`` reads only its methods' names."""

        def __getattr__(self, attr: str) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            return _Named(attr)

    class _Named:
        def __init__(self, name: str) -> None:
            self.__name__ = name

    Catalog = Recorder = ModelOps = SecurityOps = Storage = _Later()

    _LAZY_NAMES = {
        "MAX_DEPTH": "datatrail.catalog",
        "parse_as_of": "datatrail.catalog",
        "AddResult": "datatrail.recorder",
        "HashResult": "datatrail.hashing",
    }

    def __getattr__(name: str) -> Any:
        """``MAX_DEPTH``, ``AddResult``… of ``__all__``, from their modules on first use (PEP 562)."""
        module = _LAZY_NAMES.get(name)
        if module is None:
            msg = f"module {__name__!r} has no attribute {name!r}"
            raise AttributeError(msg)
        return getattr(importlib.import_module(module), name)


P = ParamSpec("P")
R = TypeVar("R")


class delegate(Generic[P, R]):
    """A Trail method that is a service's: ``get = delegate("catalog", Catalog.get)``.

    Typed as the service method (mypy checks every call), documented by it (``help(trail.get)``:
    the bound method of the service). Only the method's name is read here, so that defining
    :class:`Trail` imports no service.
    """

    def __init__(self, part: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self.part = part
        self.method = method

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.method.__name__

    @overload
    def __get__(self, obj: None, owner: type) -> delegate[P, R]: ...

    @overload
    def __get__(self, obj: object, owner: type) -> Callable[P, R]: ...

    def __get__(self, obj: object | None, owner: type) -> delegate[P, R] | Callable[P, R]:
        if obj is None:
            return self
        bound: Callable[P, R] = getattr(getattr(obj, self.part), self.name)
        return bound


class Trail:
    """A connection to a datatrail store, acting as one user.

    >>> import datatrail                                    # doctest: +SKIP
    >>> trail = datatrail.connect()                         # doctest: +SKIP
    >>> v = trail.add("data/raw.csv", name="raw/penguins")  # doctest: +SKIP
    >>> trail.get("raw/penguins@latest").digest == v.digest # doctest: +SKIP
    True
    """

    def __init__(
        self,
        store: Store,
        location: Location,
        user: str | None = None,
        *,
        principal: Principal | None = None,
        origin: str = "local",
        workspace: Workspace | None = None,
    ) -> None:
        self.location = location
        self._shared = store
        self._workspace = workspace
        if principal is None:
            # The embedded (or remote) store as its user: no restriction here; reads are audited by the Trail.
            self.user = facts.current_user(user or location.user)
            self.access = Access(
                Principal(self.user, unrestricted=True), origin, store.record_access, None, store.record_accesses
            )
            self._store: Store = store
            self._note: Callable[[str, str | None], None] | None = self.access.note
        else:
            # One server request: the store seen through the principal's grants, which audits its own reads.
            from datatrail.security.guard import GuardedStore  # start-up: only a server's requests need it

            self.user = principal.name
            self.access = Access(principal, origin, store.record_access, many=store.record_accesses)
            self._store = GuardedStore(store, self.access)
            self._note = None

    # The services are built, and their modules imported, on first use: a read command
    # pays for the catalog only (start-up time of the CLI, issue 22).

    @cached_property
    def host(self) -> str:
        return facts.hostname()

    @cached_property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            from datatrail.workspace import Workspace  # start-up: light, but `--help` needs no workspace

            self._workspace = Workspace(self.location)
        return self._workspace

    @cached_property
    def catalog(self) -> Catalog:
        from datatrail.catalog import Catalog, no_note  # start-up: imported with the first read

        return Catalog(self._store, self._note or no_note)

    @cached_property
    def recorder(self) -> Recorder:
        from datatrail.recorder import Recorder  # start-up: hashing and recording load on first use

        return Recorder(self._store, self.workspace, self.user, self.host)

    @cached_property
    def ml(self) -> ModelOps:
        from datatrail.ml.lifecycle import ModelOps  # start-up: the ML lifecycle loads on first use

        return ModelOps(self.catalog, self.recorder)

    @cached_property
    def security(self) -> SecurityOps:
        from datatrail.security.service import SecurityOps  # start-up: users and grants load on first use

        return SecurityOps(self._store, self.access, self.catalog)

    @cached_property
    def storage(self) -> Storage:
        from datatrail.storage import Storage  # start-up: content and remotes load on first use

        # The recorder is built when first used: a push records only where its bytes went (start-up).
        return Storage(self.catalog, lambda: self.recorder, self.workspace, self.location, self._store, self.user)

    def scoped(self, principal: Principal, origin: str) -> Trail:
        """A Trail for one request: the same store seen through ``principal``'s grants, reads audited once."""
        return Trail(self._shared, self.location, principal=principal, origin=origin, workspace=self.workspace)

    @property
    def principal(self) -> Principal:
        return self.access.principal

    @property
    def root(self) -> Path:
        return self.location.root

    @property
    def uri(self) -> str:
        return self._store.uri

    def close(self) -> None:
        self._shared.close()
        if self._workspace is not None:
            self._workspace.close()

    def __enter__(self) -> Trail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ recording data

    register = delegate("recorder", Recorder.register)
    hash = delegate("recorder", Recorder.hash)
    version_info = delegate("recorder", Recorder.version_info)

    def add(self, path: str | os.PathLike[str] | Any, *, name: str | None = None, **options: Any) -> Version:
        """Hash a file or directory and record it as a version of dataset ``name``.

        ``store_content=True`` (default: ``[content] store`` of the config) keeps the
        bytes of new files in ``.datatrail/objects/`` so ``checkout`` can give them back.
        A pandas or polars DataFrame or an Arrow table is recorded as a version too
        (hashed as its canonical Arrow IPC stream, its bytes kept).

        >>> v = trail.add("data/raw.csv", name="raw/penguins", tags=["candidate"])  # doctest: +SKIP
        >>> v.ref, v.digest.short                                                  # doctest: +SKIP
        ('raw/penguins@1', 'sha256:9f86d081884c')
        >>> trail.add(df, name="clean/penguins").ref                               # doctest: +SKIP
        'clean/penguins@1'
        """
        return self.storage.add(path, name=name, **options).version

    def tag(self, ref: str | Ref | Version, alias: str) -> Version:
        """Point ``alias`` (``production``, ``candidate``…) at the version ``ref`` names."""
        version = self.catalog.lookup(ref)
        self.recorder.tag(version, alias)
        return self.catalog.lookup(Ref(version.namespace, version.name, str(version.number)))

    def check(self, ref: str | Ref | Version, rules: RuleSource) -> CheckReport:
        """Evaluate rules against a version's data and store every result (observed value, who, when).

        >>> report = trail.check("raw/penguins", "rules.yaml")  # doctest: +SKIP
        >>> report.passed, [r.rule for r in report.failed]       # doctest: +SKIP
        (False, ['between'])
        """
        return self.recorder.check(self.catalog.lookup(ref), rules)

    def default_name(self, path: Path) -> str:
        """The dataset name for a path: its location relative to the store's root."""
        return self.workspace.default_name(path)

    def run(
        self,
        job: str,
        *,
        params: dict[str, Any] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        workflow: str | None = None,
        job_type: str | None = None,
    ) -> RunContext:
        """A run of ``job``, to use as a context manager.

        >>> with trail.run("clean", params={"dropna": True}) as run:        # doctest: +SKIP
        ...     run.input("raw/penguins@latest")
        ...     v = run.output("data/clean.parquet", name="clean/penguins")
        ...     run.log_metric("rows", 333)
        """
        from datatrail.capture.run import start_run  # start-up: runs load on first use

        return start_run(
            self.recorder, self.catalog, job, params=params, namespace=namespace, workflow=workflow, job_type=job_type
        )

    def ingest(
        self, event: Event, *, actor: str | None = None, action: str = "lineage.ingest", detail: bool = True
    ) -> IngestResult:
        """Store one OpenLineage event from any producer (idempotent, order-independent), as ``actor``.

        Without ``detail`` the result does not list the versions written (cheaper)."""
        return self._store.ingest(event, actor or self.user, action, detail=detail)

    def ingest_soon(
        self, event: Event, *, actor: str | None = None, action: str = "lineage.ingest", detail: bool = True
    ) -> Future[IngestResult] | None:
        """:meth:`ingest` without blocking, for an event loop: a future of its result, or None when this
        store or principal needs :meth:`ingest` (then call it in a thread). An event that does not
        parse raises here."""
        return self._store.ingest_soon(event, actor or self.user, action, detail=detail)

    def ingest_many(
        self, events: Sequence[Event], *, actor: str | None = None, action: str = "lineage.ingest"
    ) -> list[IngestResult | DatatrailError]:
        """Store many events, each with its result or the error that refused it (in one transaction where
        the store can). An error of the store itself raises."""
        return self._store.ingest_many(events, actor or self.user, action)

    # ------------------------------------------------------------ reads

    get = delegate("catalog", Catalog.get)
    datasets = delegate("catalog", Catalog.datasets)
    versions = delegate("catalog", Catalog.versions)
    profile = delegate("catalog", Catalog.profile)
    check_results = delegate("catalog", Catalog.check_results)
    diff = delegate("catalog", Catalog.diff)
    manifest = delegate("catalog", Catalog.manifest)
    describe = delegate("catalog", Catalog.describe)
    runs = delegate("catalog", Catalog.runs)
    jobs = delegate("catalog", Catalog.jobs)
    get_run = delegate("catalog", Catalog.get_run)
    lineage = delegate("catalog", Catalog.lineage)
    column_lineage = delegate("catalog", Catalog.column_lineage)
    dataset_lineage = delegate("catalog", Catalog.dataset_lineage)
    dataset_lineage_columns = delegate("catalog", Catalog.dataset_lineage_columns)
    dataset_lineage_json = delegate("catalog", Catalog.dataset_lineage_json)
    run_lineage = delegate("catalog", Catalog.run_lineage)
    job_lineage = delegate("catalog", Catalog.job_lineage)
    overview = delegate("catalog", Catalog.overview)
    latest_versions = delegate("catalog", Catalog.latest_versions)

    def verify(
        self,
        refs: Sequence[str] = (),
        *,
        use_cache: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Re-hash the data behind versions (the latest of every dataset when no ref is given)."""
        if refs:
            versions = [self.catalog.get(r) for r in refs]
        else:
            versions = [
                self.catalog.get(Ref(d.namespace, d.name)) for d in self.catalog.datasets() if d.latest is not None
            ]
        from datatrail.verify import verify_versions  # start-up: verifying loads on first use

        return verify_versions(self.recorder, self.catalog.manifest, versions, use_cache=use_cache, progress=progress)

    def check_store(self) -> list[str]:
        """Check the store itself (`datatrail fsck`): one line per problem, empty when sound.

        SQLite's integrity check, the audit hash chain, every event with its audit
        entry, every version with the audit entry that created it, gapless version
        numbers, whole manifests, no lineage edge pointing at nothing, and the counts list
        pages read (runs per job, listed datasets and jobs per namespace) equal to their rows'.

        >>> trail.check_store()  # doctest: +SKIP
        []
        """
        return self._store.check_integrity()

    # ------------------------------------------------------------ content (trail.storage)

    checkout = delegate("storage", Storage.checkout)
    open = delegate("storage", Storage.open)
    read_arrow = delegate("storage", Storage.read_arrow)
    read_pandas = delegate("storage", Storage.read_pandas)
    read_polars = delegate("storage", Storage.read_polars)
    push = delegate("storage", Storage.push)
    fetch = delegate("storage", Storage.fetch)
    pull = delegate("storage", Storage.pull)
    gc = delegate("storage", Storage.gc)

    def rerun(self, run: str, *, into: Path | None = None, timeout: float | None = None) -> RerunReport:
        """Restore a run's exact inputs in a scratch folder, run its command there, compare the outputs' digests.

        ``run`` is a run id or a version ref (its producing run). See ``datatrail reproduce RUN --exec``.

        >>> report = trail.rerun("models/penguins@1")                  # doctest: +SKIP
        >>> [(o.ref, o.status) for o in report.outputs]                  # doctest: +SKIP
        [('models/penguins@1', 'same')]
        """
        from datatrail.rerun import rerun  # start-up: re-running loads on first use

        return rerun(self.storage, run, into=into, timeout=timeout)

    # ------------------------------------------------------------ the ML lifecycle (trail.ml)

    evaluate = delegate("ml", ModelOps.evaluate)
    model_card = delegate("ml", ModelOps.model_card)
    load_model = delegate("ml", ModelOps.load_model)
    deploy = delegate("ml", ModelOps.deploy)
    deployments = delegate("ml", ModelOps.deployments)
    impact = delegate("ml", ModelOps.impact)
    drift = delegate("ml", ModelOps.drift)
    monitor = delegate("ml", ModelOps.monitor)
    drift_history = delegate("ml", ModelOps.drift_history)
    reproduce = delegate("ml", ModelOps.reproduce)

    # ------------------------------------------------------------ security (trail.security)

    add_user = delegate("security", SecurityOps.add_user)
    users = delegate("security", SecurityOps.users)
    create_token = delegate("security", SecurityOps.create_token)
    tokens = delegate("security", SecurityOps.tokens)
    revoke_token = delegate("security", SecurityOps.revoke_token)
    grant = delegate("security", SecurityOps.grant)
    revoke = delegate("security", SecurityOps.revoke)
    classify = delegate("security", SecurityOps.classify)
    classifications = delegate("security", SecurityOps.classifications)
    audit_entries = delegate("security", SecurityOps.audit_entries)
    access_log = delegate("security", SecurityOps.access_log)
    verify_audit = delegate("security", SecurityOps.verify_audit)
    audit_checkpoint = delegate("security", SecurityOps.audit_checkpoint)


def connect(uri: str | None = None, *, user: str | None = None, token: str | None = None) -> Trail:
    """Open the store named by ``uri``, ``$DATATRAIL_URI``, or the nearest ``.datatrail/``.

    A remote server gets a Bearer token bound to it: ``token`` (else
    ``$DATATRAIL_TOKEN``) when ``uri`` or ``$DATATRAIL_URI`` named it, and
    otherwise only the token ``~/.config/datatrail/tokens.toml`` gives its
    origin, so a cloned repository's config cannot send your token elsewhere
    (:func:`datatrail.config.token_for`).

    >>> trail = datatrail.connect()                           # doctest: +SKIP
    >>> trail = datatrail.connect("postgresql://me@db:5432/trail")  # doctest: +SKIP
    >>> trail = datatrail.connect("http://datatrail:8000", token="…")  # doctest: +SKIP
    """
    location = locate(uri)
    return Trail(open_store(location.uri, token=token_for(location, token)), location, user)


def init(folder: str | os.PathLike[str] = ".", uri: str | None = None) -> Trail:
    """Create ``.datatrail/`` in ``folder`` with an embedded store (or the store ``uri``)."""
    location = init_config(Path(folder), uri)
    return Trail(open_store(location.uri, create=True, token=token_for(location)), location)


__all__ = ["MAX_DEPTH", "AddResult", "HashResult", "Trail", "connect", "delegate", "init", "parse_as_of"]
