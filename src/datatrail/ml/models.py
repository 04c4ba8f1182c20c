"""Models held in memory, turned into bytes safely and reproducibly so they can be hashed and kept.

scikit-learn estimators go through skops (no pickle) when it is installed, else
joblib; torch modules are saved as their state dict; ONNX models as their
protobuf bytes. The bytes are written content-addressed under
``.datatrail/objects/`` and registered like any file.

>>> with trail.run("train", job_type="train") as run:                      # doctest: +SKIP
...     model = RandomForestClassifier().fit(X, y)
...     run.output(model, name="models/penguins", kind="model")
"""

from __future__ import annotations

import hashlib
import importlib
import io
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datatrail.core.errors import InvalidInput

# A fixed time for every zip entry: skops stamps the current time, which would make
# the same model hash differently on every save.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Serialized:
    payload: bytes
    format: str
    suffix: str
    properties: dict[str, Any] = field(default_factory=dict)


def _version(dist: str) -> str | None:
    from importlib import metadata  # ~10 ms (email, zipfile): only when a model is recorded, not at CLI start-up

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _stable_zip(payload: bytes) -> bytes:
    """The same skops zip with every entry's time fixed and object ids renumbered, so equal models hash equal.

    skops names objects by ``id()`` (a memory address, different in every process)
    in ``schema.json`` and in the names of the array files; they become 1, 2, 3…
    in order of first appearance, which keeps every reference intact.
    """
    import zipfile  # only for a skops model, not at CLI start-up

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(payload)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        schema = src.read("schema.json").decode("utf-8") if "schema.json" in src.namelist() else ""
        ids = {m.group(1) for m in re.finditer(r'"__id__": ?(\d+)', schema)}
        ids |= {m.group(1) for name in src.namelist() if (m := re.fullmatch(r"(\d+)\.\w+", name))}
        numbers: dict[str, str] = {}
        for m in _NUMBER.finditer(schema):
            if m.group(1) in ids and m.group(1) not in numbers:
                numbers[m.group(1)] = str(len(numbers) + 1)
        for info in src.infolist():
            data = src.read(info)
            name = info.filename
            stem, dot, ext = name.partition(".")
            if stem in numbers:
                name = f"{numbers[stem]}{dot}{ext}"
            if info.filename == "schema.json":
                data = _NUMBER.sub(lambda m: numbers.get(m.group(1), m.group(1)), schema).encode("utf-8")
            fixed = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, data)
    return out.getvalue()


_NUMBER = re.compile(r"(?<![\d.])(\d{5,})(?!\d)")


def is_sklearn(obj: Any) -> bool:
    return type(obj).__module__.split(".", 1)[0] == "sklearn" or (
        hasattr(obj, "get_params") and hasattr(obj, "fit") and "sklearn" in sys.modules
    )


def serialize(obj: Any) -> Serialized:
    """The bytes of a model object, its format and what it is (class, framework, library versions)."""
    props: dict[str, Any] = {"class": _class_name(obj)}
    if is_sklearn(obj):
        props.update(framework="scikit-learn", library_version=_version("scikit-learn"))
        try:
            sio = importlib.import_module("skops.io")
        except ImportError:
            joblib = importlib.import_module("joblib")

            buffer = io.BytesIO()
            joblib.dump(obj, buffer)
            return Serialized(buffer.getvalue(), "joblib", ".joblib", {**props, "serializer": "joblib"})
        payload = _stable_zip(sio.dumps(obj))
        return Serialized(payload, "skops", ".skops", {**props, "serializer": f"skops {_version('skops')}"})
    torch = sys.modules.get("torch")
    if torch is not None and (isinstance(obj, torch.nn.Module) or _is_state_dict(obj, torch)):
        state = obj.state_dict() if isinstance(obj, torch.nn.Module) else obj
        buffer = io.BytesIO()
        torch.save(state, buffer)
        props.update(framework="torch", library_version=_version("torch"), serializer="torch.save(state_dict)")
        return Serialized(buffer.getvalue(), "pt", ".pt", props)
    onnx = sys.modules.get("onnx")
    if onnx is not None and isinstance(obj, onnx.ModelProto):
        props.update(framework="onnx", library_version=_version("onnx"), serializer="onnx")
        return Serialized(obj.SerializeToString(), "onnx", ".onnx", props)
    msg = (
        f"cannot save a {_class_name(obj)} safely: pass a file or folder path, a scikit-learn estimator, "
        "a torch module or state dict, or an ONNX model"
    )
    raise InvalidInput(msg)


def _is_state_dict(obj: Any, torch: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def save_object(folder: Path, obj: Any) -> tuple[Path, Serialized]:
    """Serialize ``obj`` and write it into ``folder`` content-addressed (the same model is written once)."""
    found = serialize(obj)
    digest = hashlib.sha256(found.payload).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}{found.suffix}"
    if not path.exists() or path.stat().st_size != len(found.payload):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(found.payload)
        tmp.replace(path)
    return path, found


def load(payload: bytes, fmt: str | None, *, name: str, trusted: bool | Sequence[str] = False) -> Any:
    """A model from the bytes of a file saved by :func:`save_object` (already checked against its digest).

    Only what cannot run code loads by default: skops (``trusted`` lists the
    types to allow beyond its safe defaults), a torch state dict
    (``weights_only``) and ONNX. A joblib file is a pickle, which runs any code
    it holds when loaded: it loads only with ``trusted=True``. The format comes
    from the store, which whoever wrote the event controls, so it is never
    reason enough to unpickle.
    """
    if fmt == "skops":
        sio = importlib.import_module("skops.io")
        try:
            found = sio.get_untrusted_types(data=payload)
        except Exception as exc:  # zipfile's, json's: whatever a file that is not skops raises
            msg = f"{name} is not a readable skops file ({type(exc).__name__}: {exc}); add the model again"
            raise InvalidInput(msg) from None
        allowed = found if trusted is True else list(trusted or [])
        untrusted = [t for t in found if t not in allowed]
        if untrusted:
            msg = (
                f"{name} holds types skops does not trust by default ({', '.join(untrusted)}); "
                "if you made this model, load it with trusted=[those types]"
            )
            raise InvalidInput(msg)
        return sio.loads(payload, trusted=allowed)
    if fmt == "joblib":
        if trusted is not True:
            msg = (
                f"{name} is a joblib file, a pickle that runs any code it holds when loaded; "
                "load it with trusted=True only if you trust whoever wrote it and this store"
            )
            raise InvalidInput(msg)
        return importlib.import_module("joblib").load(io.BytesIO(payload))
    if fmt == "pt":
        return importlib.import_module("torch").load(io.BytesIO(payload), weights_only=True)
    if fmt == "onnx":
        # From bytes: the model's external-data paths (which could name any file) are not followed.
        return importlib.import_module("onnx").load_model_from_string(payload)
    msg = f"cannot load {name}: models of format {fmt!r} are not loaded here; load the file with its own library"
    raise InvalidInput(msg)


__all__ = ["Serialized", "load", "save_object", "serialize"]
