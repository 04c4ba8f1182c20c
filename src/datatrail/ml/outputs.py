"""``run.output(obj, name=...)`` for objects held in memory: data tables and models."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from datatrail.core.errors import InvalidInput
from datatrail.core.model import Version, validate_name, validate_namespace

if TYPE_CHECKING:
    from datatrail.capture.run import RunContext


def output_object(
    run: RunContext, obj: Any, *, name: str | None, namespace: str, kind: str, message: str | None
) -> Version:
    """Record ``obj`` as an output of ``run``: a table hashed and profiled in memory, or a model saved to a file."""
    from datatrail.capture.step import _is_data, data_info

    if name is None:
        msg = f"an output object ({type(obj).__name__}) needs a name: run.output(obj, name='models/penguins')"
        raise InvalidInput(msg)
    name, namespace = validate_name(name), validate_namespace(namespace)
    trail = run.trail
    if _is_data(obj) and kind == "dataset":
        info = data_info(obj, trail.user, trail.host)
        profile = None
        if info.format == "arrow":
            from datatrail.profiling import profile_table

            profile = profile_table(obj)
        info = dataclasses.replace(info, message=message, profile=profile)
        return run.output_info(info, name=name, namespace=namespace)
    from datatrail.ml.models import save_object

    path, saved = save_object(trail, obj)
    hashed = trail.hash(path)
    info = trail.version_info(path, hashed, message=message, kind="model", profile=False)
    info = dataclasses.replace(info, format=saved.format, properties=saved.properties)
    return run.output_info(info, name=name, namespace=namespace)


__all__ = ["output_object"]
