"""ML lifecycle commands: deploy, deployments, impact, drift, reproduce, demo (and the model part of show)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.output import emit_json, line, table, when
from datatrail.cli.quality import print_checks
from datatrail.core.errors import InvalidInput
from datatrail.core.text import count, quantity, value

if TYPE_CHECKING:
    from datatrail.core.records import Deployment, DriftReport
    from datatrail.ml.lifecycle import DriftHistory, ModelCard
    from datatrail.ml.reproduce import ReproduceReport

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]


def _trail(ctx: typer.Context) -> Any:

    return get_trail(ctx)


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# ---------------------------------------------------------------- show MODEL@N


def print_model_card(card: ModelCard) -> None:
    """The model part of `datatrail show`: training run and data, evaluations, deployments."""
    run = card.training_run
    line("")
    if run is None:
        line("trained by:  - (no run recorded)")
    else:
        line(f"trained by:  run:{run.id} ({run.job}, {run.state.value}, {when(run.started_at)}, {run.user or '-'})")
        commit = run.code.get("commit")
        if commit:
            line(f"code:        {commit[:12]}{' (dirty)' if run.code.get('dirty') else ''}")
        if run.params:
            line(f"params:      {json.dumps(run.params, sort_keys=True, default=str)}")
        if run.metrics:
            line(f"metrics:     {json.dumps(run.metrics, sort_keys=True, default=str)}")
    line("training data:")
    for v in card.training_data or ():
        line(f"  {v.ref} {v.digest.short if v.digest else v.key}")
    if not card.training_data:
        line("  - (none recorded)")
    line("evaluations:")
    if not card.evaluations:
        line("  - (none; record one with trail.evaluate(model, dataset, metrics={...}))")
    for e in card.evaluations:
        data = ", ".join(v.ref for v in e.inputs if v.kind != "model") or "-"
        metrics = ", ".join(
            f"{k}={val:.4g}" if isinstance(val, float) else f"{k}={val}" for k, val in e.metrics.items()
        )
        line(f"  {when(e.started_at)}  on {data}: {metrics or '-'}")
    if card.deployments:
        line("deployments:")
        for d in card.deployments:
            status = "live" if d.active else f"retired {when(d.retired_at)}"
            line(f"  {d.environment}: since {when(d.deployed_at)} by {d.deployed_by or '-'} ({status})")


# ---------------------------------------------------------------- deploy, deployments, impact


def _deployment_rows(items: list[Deployment]) -> list[list[Any]]:
    return [
        [
            d.environment,
            d.ref,
            d.kind,
            when(d.deployed_at),
            d.deployed_by,
            "live" if d.active else f"retired {when(d.retired_at)}",
        ]
        for d in items
    ]


def deploy(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version to deploy, e.g. models/penguins@2.")],
    env: Annotated[str, typer.Option("--env", "-e", help="Environment it goes live in.")] = "production",
    json_out: JsonOpt = False,
) -> None:
    """Record that a version is live in an environment; the one live before is retired.

    The alias named after the environment follows it (models/penguins@production).

    Example: datatrail deploy models/penguins@2 --env production
    """
    d = _trail(ctx).deploy(ref, env=env)
    if json_out:
        emit_json(d.to_dict())
    else:
        line(f"deployed {d.ref} to {d.environment} (run:{d.run_id[:8]}); {d.name}@{d.environment} -> {d.ref}")


def deployments(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only this model or dataset.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only the deployments still live.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List deployments, newest first: environment, version, since when, by whom, live or retired.

    Example: datatrail deployments --env production
    """
    items = _trail(ctx).deployments(env, name, active=active)
    if json_out:
        emit_json([d.to_dict() for d in items])
        return
    if not items:
        line("no deployments yet; record one with `datatrail deploy REF --env production`")
        return
    table(["env", "version", "kind", "deployed", "by", "status"], _deployment_rows(items))


def impact(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version that may be bad, e.g. raw/penguins@3.")],
    json_out: JsonOpt = False,
) -> None:
    """List every downstream dataset, model and live deployment that depends on a version.

    Example: datatrail impact raw/penguins@3
    """
    found = _trail(ctx).impact(ref)
    if json_out:
        emit_json(found.to_dict())
        return
    line(f"downstream of {found.version.ref}:")
    for title, items in (("datasets", found.datasets), ("models", found.models)):
        line(f"{title} ({len(items)}):")
        for item in items:
            line(f"  {item['ref']}  (depth {item['depth']})")
    line(f"live deployments ({len(found.deployments)}):")
    for d in found.deployments:
        line(f"  {d.environment}: {d.ref} since {when(d.deployed_at)} by {d.deployed_by or '-'}")
    line(f"runs: {len(found.runs)}")


# ---------------------------------------------------------------- drift


def print_drift(report: DriftReport) -> None:
    rows = report.rows
    source = "the data" if report.method == "data" else "stored profiles"
    line(
        f"drift of {report.current} against {report.reference} "
        f"(from {source}; {quantity(rows.get('current', 0))} vs {count(rows.get('reference', 0), 'row')})"
    )
    schema = report.schema
    parts = [
        f"{what} {', '.join(c['name'] for c in schema.get(key, []))}"
        for key, what in (("added", "added"), ("removed", "removed"), ("changed", "retyped"))
        if schema.get(key)
    ]
    line(f"schema: {'; '.join(parts) if parts else 'unchanged'}")
    table(
        ["column", "kind", "psi", "ks", "chi2 p", "js", "missing", "drift"],
        [
            [
                c["name"],
                c["kind"],
                _num(c.get("psi")),
                _num(c.get("ks")),
                "-" if c.get("chi2_pvalue") is None else f"{c['chi2_pvalue']:.2g}",
                _num(c.get("js")),
                f"{c['missing']['reference']:.1%} -> {c['missing']['current']:.1%}",
                "DRIFT: " + "; ".join(c["reasons"]) if c["drifted"] else "",
            ]
            for c in report.columns
        ],
    )
    names = [c["name"] for c in report.drifted_columns]
    if report.drifted:
        what = f"{len(names)} of {count(len(report.columns), 'column')} ({', '.join(names)})" if names else "the schema"
        line(f"result: DRIFT in {what}")
    else:
        line("result: no drift above the thresholds")


def print_history(history: DriftHistory) -> None:
    dep = history.deployment
    since = f"{dep.ref} live since {when(dep.deployed_at)}" if dep else "no live deployment"
    line(f"drift in {history.environment} ({since}), {count(len(history.records), 'batch')}:")
    features = history.features()
    rows = []
    for r in history.records:
        scores = {c["name"]: c for c in r.report.get("columns", [])}
        cells = []
        for f in features:
            c = scores.get(f)
            cells.append(
                "-" if c is None or c.get("score") is None else f"{c['score']:.3f}{'*' if c['drifted'] else ''}"
            )
        rows.append([when(r.created_at), r.current, *cells, "DRIFT" if r.drifted else "ok"])
    table(["time", "batch", *features, "result"], rows)
    line("scores: PSI for numeric columns, Jensen-Shannon distance for categorical ones; * marks drift")


def _thresholds(values: list[str] | None) -> dict[str, float]:

    out: dict[str, float] = {}
    for item in values or []:
        for part in item.split(","):
            key, sep, text = part.partition("=")
            if not sep:
                key, text = "psi", key
            try:
                out[key.strip()] = float(text)
            except ValueError:
                msg = f"invalid --threshold {part!r}: write psi=0.2, ks=0.3, js=0.1, missing=0.05 or a bare PSI number"
                raise InvalidInput(msg) from None
    return out


def drift(
    ctx: typer.Context,
    reference: Annotated[
        str | None, typer.Argument(metavar="REFERENCE", help="The reference version (e.g. the training data).")
    ] = None,
    current: Annotated[str | None, typer.Argument(metavar="CURRENT", help="The version to compare with it.")] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            "-t",
            help="Drift bounds: psi=0.2, ks=0.3, js=0.1, missing=0.05 (repeatable or comma-separated; "
            "a bare number is the PSI bound).",
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option("--env", "-e", help="Monitor: store the report with the deployment live in this environment."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="The deployed model, when several are live in --env.")
    ] = None,
    history: Annotated[
        bool, typer.Option("--history", help="Show the stored reports of --env batch by batch since the deployment.")
    ] = False,
    exact: Annotated[
        bool, typer.Option("--exact", help="Read both versions' data for exact statistics instead of the profiles.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Compare a version's distributions with a reference's; exit 1 when drift exceeds a threshold.

    Numeric columns: PSI and Kolmogorov-Smirnov; categorical ones: chi-square and
    Jensen-Shannon; every column: missing values; the table: schema changes.
    With --env the report is stored (a monitor run) with the live deployment, and
    REFERENCE may be left out: the deployed model's training data is used.

    Examples: datatrail drift features/train@1 batches/b7@1 --threshold psi=0.25;
    datatrail drift batches/b7@1 --env production; datatrail drift --history --env production
    """

    trail = _trail(ctx)
    if history:
        if env is None or reference is not None:
            msg = "--history takes no versions and needs --env, e.g. datatrail drift --history --env production"
            raise InvalidInput(msg)
        found = trail.drift_history(env, model=model)
        if json_out:
            emit_json(found.to_dict())
        else:
            print_history(found)
        return
    limits = _thresholds(threshold)
    if env is not None:
        if reference is None:
            msg = "give the CURRENT version to monitor, e.g. datatrail drift batches/b7@1 --env production"
            raise InvalidInput(msg)
        ref, cur = (None, reference) if current is None else (reference, current)
        record = trail.monitor(cur, reference=ref, env=env, model=model, thresholds=limits, exact=exact)
        report = record.drift
    else:
        if reference is None or current is None:
            msg = "give REFERENCE and CURRENT versions (or --env to compare with the deployed model's training data)"
            raise InvalidInput(msg)
        report = trail.drift(reference, current, thresholds=limits, exact=exact)
    if json_out:
        emit_json(report.to_dict())
    else:
        print_drift(report)
    if report.drifted:
        raise typer.Exit(1)


# ---------------------------------------------------------------- reproduce


def print_reproduce(report: ReproduceReport) -> None:
    steps, checked = count(len(report.steps), "step"), count(len(report.checks), "version")
    line(f"provenance of {report.target.ref}: {steps}, {checked} checked")
    line("sources:")
    for c in report.sources:
        line(f"  {c.status:<10} {c.ref}  {c.uri or '-'}")
    for i, step in enumerate(report.steps, 1):
        run = step.run
        line(f"step {i}: run {run.job} [{run.state.value}] {run.id[:8]} by {run.user or '-'} at {when(run.started_at)}")
        commit = run.code.get("commit")
        code = f"{commit[:12]}{' (dirty)' if run.code.get('dirty') else ''}" if commit else "- (not in a git tree)"
        line(f"  code:    {code}")
        line(f"  command: {run.command or '-'}")
        if run.params:
            line(f"  params:  {json.dumps(run.params, sort_keys=True, default=str)}")
        for role, checks in (("in ", step.inputs), ("out", step.outputs)):
            for c in checks:
                line(f"  {role} {c.status:<10} {c.ref}{'  ' + c.detail if c.detail and c.status != 'ok' else ''}")
    if report.ok:
        line("result: every version is present with its recorded digest")
    else:
        problems = "; ".join(f"{c.ref} {c.status}" for c in report.problems)
        line(f"result: {count(len(report.problems), 'problem')}: {problems}")


def reproduce(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version whose provenance to walk.")],
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when an input is missing or its content changed.")
    ] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Read every byte, ignoring the stat cache.")] = False,
    exec_: Annotated[
        bool,
        typer.Option(
            "--exec",
            help="Restore the run's exact inputs (REF: a run id, or a version: its run) in a scratch folder, "
            "run its recorded command there, and compare each output's digest (same/differs); exit 1 unless all same.",
        ),
    ] = False,
    into: Annotated[
        Path | None, typer.Option("--into", metavar="DIR", help="With --exec: the (empty) folder to re-run in.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Walk a version's whole provenance: each step's inputs re-hashed, its code commit, params and command.

    Example: datatrail reproduce models/penguins@1 --check

    With --exec the run is done again: inputs restored from the content cache or a
    remote (verified), code from the recorded git commit (else the files the command
    names), the command run in a scratch folder, each output compared with its record.

    Example: datatrail reproduce models/penguins@1 --exec
    """
    if exec_:
        if check or no_cache:
            msg = "--check and --no-cache walk the provenance; --exec re-runs: use one or the other"
            raise InvalidInput(msg)
        rerun = _trail(ctx).rerun(ref, into=into)
        if json_out:
            emit_json(rerun.to_dict())
        else:
            run = rerun.run
            line(f"re-ran {run.job} ({run.id[:8]}) in {rerun.folder}: exit {rerun.exit_code}; code: {rerun.code}")
            for o in rerun.outputs:
                line(f"  {o.status:<8} {o.ref}  {o.path}")
            line("result: every output is the same" if rerun.ok else "result: the outputs are not reproduced")
        if not rerun.ok:
            raise typer.Exit(1)
        return
    if into is not None:
        msg = "--into goes with --exec"
        raise InvalidInput(msg)
    report = _trail(ctx).reproduce(ref, use_cache=not no_cache)
    if json_out:
        emit_json(report.to_dict())
    else:
        print_reproduce(report)
    if check and not report.ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------- demo


def print_quality(ctx_trail_uri: str, version: Any) -> None:
    """The profile summary and the check results of a version, from the store at ``ctx_trail_uri``."""
    from datatrail.service import connect  # the service and its store: not on --help (start-up)

    with connect(ctx_trail_uri) as trail:
        profile = trail.profile(version) or {}
        checks = trail.check_results(version)
    figures = [
        count(profile.get("row_count") or 0, "row"),
        count(profile.get("column_count") or 0, "column"),
        count(profile.get("missing_cells") or 0, "missing cell"),
        count(profile.get("duplicate_rows") or 0, "duplicate row"),
    ]
    line(", ".join(figures))
    table(
        ["column", "type", "nulls", "distinct", "min", "median", "max"],
        [
            [
                c["name"],
                c.get("type"),
                quantity(c.get("null_count")),
                quantity(c.get("distinct_count")),
                value(c.get("min"), 16),
                value((c.get("quantiles") or {}).get("p50")),
                value(c.get("max"), 16),
            ]
            for c in profile.get("columns", [])
        ],
    )
    if checks:
        print_checks(checks, latest_only=True)


def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder for the demo's data and store (default: a new temporary folder)."),
    ] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Then serve the web UI on the demo's store.")] = False,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port for --serve.")] = 8000,
    data_only: Annotated[
        bool,
        typer.Option(
            "--data-only",
            help="Only write the sample data, data/raw.csv (the Palmer penguins, 344 rows), "
            "into --dir or else the current folder, and stop: what the README's Quickstart starts from.",
        ),
    ] = False,
) -> None:
    """Run a real ML pipeline on the Palmer penguins data and show what datatrail recorded.

    Ingest → clean (with checks) → features → train a scikit-learn classifier →
    evaluate → deploy → monitor a shifted batch that raises a drift alert; then
    the lineage, the quality summary, the drift report and an HTML lineage file.
    Needs the demo extra: pip install 'datatrail[demo]'.

    Examples: datatrail demo --dir /tmp/penguins --serve;
    datatrail demo --data-only (just data/raw.csv here, to try the commands on)
    """
    if data_only:
        if serve:
            msg = "--data-only writes the sample data and stops; drop --serve, or --data-only"
            raise InvalidInput(msg)
        from datatrail.ml.demo import write_sample_data  # the demo's modules: for `datatrail demo` only (start-up)

        path, rows, written = write_sample_data(directory or Path())
        state = "wrote" if written else "unchanged:"
        line(f"{state} {path}: the Palmer penguins, {count(rows, 'row')} (from the palmerpenguins package)")
        return
    from datatrail.ml.demo import run_demo  # the demo's modules: for `datatrail demo` only (start-up)

    result = run_demo(directory, say=line)
    line("")
    line("== lineage of predictions/batch-2.csv (upstream) ==")
    for row in result.lineage.tree_lines():
        line(row)
    line("")
    line(f"== quality of {result.clean.ref} ==")
    print_quality(ctx_trail_uri=result.store_uri, version=result.clean)
    line("")
    line("== drift report of the shifted batch ==")
    print_drift(result.alert.drift)
    line("")
    line(f"lineage picture: {result.html}")
    line(f"explore: cd {result.root} && datatrail show {result.model.ref}; datatrail drift --history --env production")
    if serve:
        import uvicorn

        from datatrail.cli.server import http_protocol  # the serve command's module: for `demo --serve` only (start-up)
        from datatrail.server.app import create_app  # FastAPI: for `demo --serve` only (start-up)

        line(f"serving the demo store on http://127.0.0.1:{port} (Ctrl-C stops)")
        app = create_app(result.store_uri)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", http=http_protocol())


def register(app: typer.Typer) -> None:
    for command in (deploy, deployments, impact, drift, reproduce, demo):
        app.command()(command)
