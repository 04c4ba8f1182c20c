from __future__ import annotations

from pathlib import Path

import pytest

import datatrail
from tests.conftest import write


def test_add_get_and_run(trail: datatrail.Trail, workdir: Path) -> None:
    raw = write(workdir / "data" / "raw.csv", "a,b\n1,2\n")
    v1 = trail.add(raw)
    assert v1.name == "data/raw.csv" and v1.number == 1
    assert trail.add(raw).number == 1
    with trail.run("clean", params={"dropna": True}) as run:
        run.input(v1)
        out = write(workdir / "data" / "clean.csv", "a,b\n1,2\n3,4\n")
        v2 = run.output(out, name="clean")
        run.log_metric("rows", 2)
    r = trail.get_run(run.id)
    assert r.state == datatrail.RunState.COMPLETE
    assert [v.ref for v in r.inputs] == ["data/raw.csv@1"]
    assert [v.ref for v in r.outputs] == ["clean@1"]
    assert r.params == {"dropna": True}
    assert r.metrics == {"rows": 2}
    g = trail.lineage(v2.ref)
    assert set(g.nodes) == {"version:default:clean@1", f"run:{run.id}", "version:default:data/raw.csv@1"}
    with pytest.raises(ValueError), trail.run("bad") as run2:
        raise ValueError("boom")
    assert trail.get_run(run2.id).state == datatrail.RunState.FAIL
    assert "boom" in (trail.get_run(run2.id).error or "")
