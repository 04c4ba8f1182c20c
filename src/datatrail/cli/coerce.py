"""Plain option values without importing pydantic: most commands' start-up.

Typer (0.20 and later) converts every parameter's value through a pydantic
``TypeAdapter``, built when the value is first converted. Importing pydantic and
building the adapters costs more than the rest of `datatrail ls` together. Most
values need no conversion: a string option given as a string, an absent option
of any type (`add` without `--tag` or `--checks`), a whole number within its
bounds. :func:`light` gives a command's parameters a converter that returns
those as they are and hands anything else to typer's own, so every message
about a bad value stays typer's.

With a typer that converts values otherwise (no ``_runtime_param``), nothing is changed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

try:  # typer >= 0.20
    from typer._coercion import RuntimeParam, build_runtime_param
except ImportError:  # pragma: no cover - older typer converts with click, already light
    RuntimeParam = None  # type: ignore[assignment,misc]


def _plain(value: Any, annotation: Any, info: Any) -> bool:
    """Whether typer's adapter would return ``value`` unchanged (its checks cannot fail)."""
    if value is None:
        return True
    if annotation is str:
        return type(value) is str
    if annotation is int and type(value) is int:
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        clamp = getattr(info, "clamp", False)
        return not clamp and (low is None or value >= low) and (high is None or value <= high)
    return annotation is bool and type(value) is bool


if RuntimeParam is not None:

    @dataclasses.dataclass(frozen=True)
    class _Light(RuntimeParam):
        """Returns a plain value as it is; anything else goes to typer's converter, built then."""

        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if _plain(value, self.annotation, self.parameter_info):
                return value
            if self.annotation is int and type(value) is str and value.isascii() and value.isdigit():
                number = int(value)
                if _plain(number, int, self.parameter_info):
                    return number
            full = build_runtime_param(self.descriptor)
            param._runtime_param = full  # from now on, typer's own
            return full._coerce_value(value, param, ctx)


def light(params: list[Any]) -> None:
    """Give each parameter without a file type or parser of its own the light converter (see the module
    docstring): str, int and bool values pass when plain, and an absent value of any type (typer converts
    None to None, or to () for a repeatable option, before any converter) needs no adapter built."""
    if RuntimeParam is None:
        return
    for param in params:
        desc = getattr(param, "type_descriptor", None)
        if desc is None or getattr(param, "_runtime_param", "absent") is not None:
            continue
        if desc.file_annotation is None and desc.parameter_info.parser is None:
            param._runtime_param = _Light(desc.parameter_info, desc.annotation, desc)
