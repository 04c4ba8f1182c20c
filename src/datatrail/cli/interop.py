"""Interoperability commands: import (dvc, mlflow, openlineage), export (openlineage, prov, attestation,
atlas) and verify-attestation."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.output import document, emit_json, error, line, note
from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.text import count, quantity
from datatrail.core.times import parse_time
from datatrail.files import replace_file

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]


class Source(str, Enum):
    dvc = "dvc"
    mlflow = "mlflow"
    openlineage = "openlineage"


class Target(str, Enum):
    openlineage = "openlineage"
    prov = "prov"
    attestation = "attestation"
    atlas = "atlas"
    dvc = "dvc"


class ProvFormat(str, Enum):
    json = "json"
    provn = "provn"


def _refuse(msg: str) -> NoReturn:

    raise InvalidInput(msg)


def _only_for(kind: str, allowed: str, given: dict[str, Any]) -> None:
    """Refuse options that mean nothing for this source or target."""
    for option, value in given.items():
        if value not in (None, False):
            _refuse(f"{option} applies to `{allowed}`, not to `{kind}`")


def import_(
    ctx: typer.Context,
    source: Annotated[
        Source, typer.Argument(metavar="SOURCE", help="What to import from: dvc, mlflow or openlineage.")
    ],
    path: Annotated[
        str | None,
        typer.Argument(
            metavar="PATH",
            help="dvc: the project folder (default: .); openlineage: the file of events ('-' for standard input).",
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="mlflow: the tracking store, e.g. sqlite:///mlflow.db."
        ),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="mlflow: only this experiment (default: all).")
    ] = None,
    namespace: Annotated[
        str, typer.Option("--namespace", help="dvc, mlflow: namespace of the datasets and jobs.")
    ] = "default",
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="openlineage: import the valid events and list the bad lines, instead of importing nothing.",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary of what was added.")] = False,
) -> None:
    """Import what DVC, MLflow or an OpenLineage producer recorded. Importing again adds only what changed.

    dvc: each .dvc file's outputs become versions; each stage in dvc.lock a job with a run (its cmd and
    params) reading its deps and writing its outs. mlflow: runs with params, metrics, dataset inputs and
    logged models. openlineage: one event per line (the file transport) or a JSON array; a bad line
    imports nothing unless --skip-invalid.

    Examples:
      datatrail import dvc path/to/repo
      datatrail import mlflow --tracking-uri sqlite:///mlflow.db --experiment penguins
      datatrail import openlineage events.jsonl --json
    """

    kind = source.value
    if kind != "mlflow":
        typed = getattr(ctx.get_parameter_source("tracking_uri"), "name", None) == "COMMANDLINE"
        _only_for(kind, "mlflow", {"--tracking-uri": tracking_uri if typed else None, "--experiment": experiment})
    if kind == "openlineage":
        _only_for(kind, "dvc and mlflow", {"--namespace": namespace if namespace != "default" else None})
    else:
        _only_for(kind, "openlineage", {"--skip-invalid": skip_invalid})
    if kind == "dvc":
        from datatrail.interop.dvc import import_dvc  # only the chosen tool\'s module (start-up)

        summary = import_dvc(get_trail(ctx), path or ".", namespace=namespace)
    elif kind == "mlflow":
        from datatrail.interop.mlflow import import_mlflow  # only the chosen tool\'s module (start-up)

        if path is not None:
            _refuse("mlflow takes no PATH; name the tracking store with --tracking-uri")
        if not tracking_uri:
            _refuse("give the MLflow tracking store with --tracking-uri URI (or set MLFLOW_TRACKING_URI)")
        summary = import_mlflow(get_trail(ctx), tracking_uri, experiment=experiment, namespace=namespace)
    else:
        from datatrail.interop.openlineage import import_events  # only the chosen tool\'s module (start-up)

        if path is None:
            _refuse("give the file of events to import (one JSON event per line, or a JSON array); '-' reads stdin")
        text = sys.stdin.read() if path == "-" else _read(Path(path))
        summary = import_events(
            get_trail(ctx), text, "standard input" if path == "-" else path, skip_invalid=skip_invalid
        )
    if json_out:
        emit_json(summary.to_dict())
        return
    d = summary.to_dict()
    line(
        f"{count(d['events'], 'event')} ({quantity(d['new_events'])} new, {quantity(d['duplicate_events'])} "
        f"already stored): {count(len(d['new_versions']), 'new version')}, {count(len(d['runs']), 'run')}"
    )
    for ref in summary.new_versions:
        line(f"  new {ref}")
    for why in summary.skipped:
        note(f"note: {why}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"no such file {str(path)!r}"
        raise NotFound(msg) from None
    except (OSError, UnicodeDecodeError) as exc:
        _refuse(f"cannot read {str(path)!r}: {exc}")


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except InvalidInput:
        _refuse(f"invalid --since {value!r}: give an ISO 8601 date or time such as 2024-05-01 or 2024-05-01T12:00:00Z")


def export(
    ctx: typer.Context,
    target: Annotated[
        Target, typer.Argument(metavar="FORMAT", help="What to write: openlineage, prov, attestation, atlas or dvc.")
    ],
    ref: Annotated[
        str | None,
        typer.Argument(metavar="REF", help="prov, attestation, atlas, dvc: the version, e.g. clean/penguins@2."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="atlas: every version and run in the store.")] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="openlineage: only events at or after this time (ISO 8601).")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="openlineage: only events naming this namespace.")
    ] = None,
    fmt: Annotated[
        ProvFormat | None, typer.Option("--format", help="prov: json (PROV-JSON, default) or provn.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output (dvc: the DVC project)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With -o: replace FILE even if it is a symlink (the link, not its target).")
    ] = False,
) -> None:
    """Export to OpenLineage, W3C PROV, an in-toto/SLSA attestation, Apache Atlas entities, or DVC.

    openlineage: every stored event, one per line, as the OpenLineage file transport writes them
    (replay them into Marquez or another datatrail). prov: the provenance of a version and its
    upstream. attestation: an in-toto Statement v1 with a SLSA provenance v1 predicate for a version.
    atlas: the body of Atlas's (and Purview's) POST /api/atlas/v2/entity/bulk.
    dvc: a .dvc file and DVC cache entries for a version (-o: the DVC project, default the store's root),
    so a DVC user can go back with `dvc checkout`.

    Examples:
      datatrail export openlineage --since 2024-05-01 -o events.jsonl
      datatrail export prov clean/penguins@2 --format provn
      datatrail export attestation model.pkl -o model.intoto.json
      datatrail export atlas --all -o atlas.json
      datatrail export dvc data/images@2
    """

    kind = target.value
    if kind != "openlineage":
        _only_for(kind, "openlineage", {"--since": since, "--namespace": namespace})
    if kind != "prov":
        _only_for(kind, "prov", {"--format": fmt})
    if kind != "atlas":
        _only_for(kind, "atlas", {"--all": all_})
    if kind == "dvc":
        if ref is None:
            _refuse("give the version to export, e.g. `datatrail export dvc data/images@2`")
        if force:
            _refuse("--force does not apply to `export dvc`: DVC's cache entries are only ever added")
        from datatrail.interop.dvc_cache import export_dvc  # only the chosen tool\'s module (start-up)

        done = export_dvc(get_trail(ctx), ref, output)
        note(f"wrote {done['dvc_file']} and {done['objects']} DVC cache objects; `dvc checkout` restores {done['ref']}")
        return
    if kind == "openlineage" and ref is not None:
        _refuse("openlineage exports every event; narrow it with --since and --namespace instead of a REF")
    if kind in ("prov", "attestation") and ref is None:
        _refuse(f"give the version to export, e.g. `datatrail export {kind} clean/penguins@2`")
    if kind == "atlas" and (ref is None) == (not all_):
        _refuse("give either a REF or --all to `datatrail export atlas`")
    if force and output is None:
        _refuse("--force goes with -o FILE")
    trail = get_trail(ctx)
    if kind == "openlineage":
        from datatrail.interop.openlineage import export_events  # only the chosen tool\'s module (start-up)

        when = _since(since)
        # Streamed (a store may hold millions of events), into a new file renamed at the end,
        # so a failure never leaves half a file under the name asked for.
        written = 0
        with replace_file(output, force=force) if output is not None else nullcontext(sys.stdout) as out:
            for event in export_events(trail, since=when, namespace=namespace):
                out.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
                written += 1
        if output is not None:
            note(f"wrote {count(written, 'event')} to {output}")
        return
    text = _document(trail, kind, str(ref) if ref is not None else None, fmt)
    if output is None:
        document(text)
    else:
        with replace_file(output, force=force) as out:
            out.write(text)
        note(f"wrote the {kind} document to {output}")


def _document(trail: Any, kind: str, ref: str | None, fmt: ProvFormat | None) -> str:
    if kind == "prov":
        from datatrail.interop.prov import export_prov  # only the chosen tool\'s module (start-up)

        return export_prov(trail, str(ref), fmt.value if fmt else "json")
    if kind == "attestation":
        from datatrail.interop.attestation import build_statement  # only the chosen tool\'s module (start-up)

        doc = build_statement(trail, str(ref))
    else:
        from datatrail.interop.atlas import export_atlas  # only the chosen tool\'s module (start-up)

        doc = export_atlas(trail, ref)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def verify_attestation(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The statement (JSON, or a DSSE envelope holding one).")],
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Read every byte, ignoring the stat cache.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Check an in-toto/SLSA attestation against the store and the data on disk.

    Every subject and every dependency with a sha256 digest must name a version the store holds with
    that digest, and where the data is on disk at the version's uri, the data must hash to it too.
    Exits with status 1 naming what does not match.

    Example: datatrail verify-attestation model.intoto.json
    """
    from datatrail.interop.attestation import (  # only the chosen tool\'s module (start-up)
        load_statement,
        verify_statement,
    )

    statement = load_statement(_read(file), str(file))
    report = verify_statement(get_trail(ctx), statement, use_cache=not no_cache)
    if json_out:
        emit_json(report.to_dict())
    else:
        for c in report.checks:
            line(f"{'ok' if c.ok else 'MISMATCH':<9}{c.role} {c.name}: {c.detail}")
    if not report.ok:
        if not json_out:
            names = ", ".join(c.name for c in report.failed)
            error(f"{len(report.failed)} of {len(report.checks)} did not match: {names}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command("export")(export)
    app.command("verify-attestation")(verify_attestation)
