"""The notebooks in notebooks/: executed top to bottom on the shipped samples with nbclient,
their results compared with the samples' ground truth (``samples/pcaps/*.truth.jsonl``);
the committed copies carry no outputs and use only the public API.

Each notebook ends with a "Checks" cell that displays its key results as
``application/json``; the tests read that output (and the files the notebook writes)
and compare it with values computed here from the ground truth, so a notebook that runs
but computes the wrong thing fails.
"""

from __future__ import annotations

import csv
import datetime as dt
import ipaddress
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testpaths import ADMIN, APPROVED, MIXED, REPO, SAMPLES

import flowaudit
from flowaudit import api

NOTEBOOKS = REPO / "notebooks"
NAMES = ("post-deployment-audit.ipynb", "security-review.ipynb")
CELL_TIMEOUT_S = 120


def truth(pcap: Path) -> list[dict[str, Any]]:
    lines = pcap.with_suffix(".truth.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# ------------------------------------------------------------------ running a notebook
@pytest.fixture(scope="session")
def python3_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A "python3" kernelspec for this interpreter, found first on JUPYTER_PATH.

    ipykernel's own spec runs ``python``, which jupyter_client maps to sys.executable,
    but a user-level spec (~/.local/share/jupyter/kernels/python3) would take precedence
    and may point at another Python. Writing ours removes that dependency on global
    state; IPYTHONDIR keeps the kernel's profile out of the home directory.
    """
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(root / "kernels" / "python3", overrides={"display_name": "Python 3"})
    spec = json.loads((root / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        mp.setenv("IPYTHONDIR", str(root / "ipython"))
        yield "python3"


def files_under(*folders: Path) -> set[Path]:
    return {p for f in folders for p in f.rglob("*") if "__pycache__" not in p.parts}


def execute(name: str, out_dir: Path, kernel: str) -> Any:
    """Run the notebook with OUTPUT_DIR set to ``out_dir`` (injected after the cell
    tagged ``parameters``, as papermill does); return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    (params,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    nb.cells.insert(params + 1, nbformat.v4.new_code_cell(f"OUTPUT_DIR = {str(out_dir)!r}"))
    before = files_under(NOTEBOOKS, SAMPLES)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name=kernel,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError (with the traceback) on any cell error
    assert files_under(NOTEBOOKS, SAMPLES) == before, "the notebook wrote into the repository"
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error"
            if out["output_type"] == "stream" and out["name"] == "stderr":
                assert "Warning" not in out["text"], out["text"]
    return nb


def checks(nb: Any) -> dict[str, Any]:
    """The application/json output of the notebook's last code cell."""
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    (data,) = [o["data"] for o in last.outputs if "application/json" in o.get("data", {})]
    got: dict[str, Any] = data["application/json"]
    return got


def has_images(nb: Any) -> int:
    return sum(
        "image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {})
        for c in nb.cells
        for o in c.get("outputs", [])
    )


# ------------------------------------------------------------ ground-truth oracles
def member(m: Any, ip: str, groups: tuple[str, ...]) -> bool:
    from flowaudit.matrix.model import parse_address

    a = ipaddress.ip_address(ip)
    n = (0xFFFF << 32 | int(a)) if a.version == 4 else int(a)
    specs = [s for g in groups for s in m.groups[g].addresses]
    return any(lo <= n <= hi for (lo, hi), _ in map(parse_address, specs))


def admits(m: Any, r: Any, src: str, dst: str, protocol: int, port: int) -> bool:
    """Plain Python, no DuckDB: does rule r admit initiator src → responder dst:port?"""
    if protocol not in r.protocols or not any(lo <= port <= hi for lo, hi in r.ports):
        return False
    fwd = member(m, src, r.from_groups) and member(m, dst, r.to_groups)
    rev = member(m, src, r.to_groups) and member(m, dst, r.from_groups)
    return fwd or (r.bidirectional and rev)


def rule_flows(m: Any, flows: list[dict[str, Any]]) -> dict[str, int]:
    """Flows per rule as ``rule_usage`` counts them: each flow once per rule that admits it
    (a flow with an uncertain initiator is also tried reversed, on the initiator's port)."""
    out = {}
    for r in m.rules:
        n = 0
        for t in flows:
            fwd = admits(m, r, t["src_ip"], t["dst_ip"], t["protocol"], t["dst_port"])
            rev = t["direction"] not in ("syn", "exporter") and admits(
                m, r, t["dst_ip"], t["src_ip"], t["protocol"], t["src_port"]
            )
            n += bool(fwd or rev)
        out[r.id] = n
    return out


def proto_port(protocol: int, port: int) -> str:
    name = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}[protocol]
    return name if protocol in (1, 58) else f"{name}/{port}"


def bin_10s(iso: str) -> str:
    t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return t.replace(second=t.second // 10 * 10, microsecond=0).isoformat()


# ---------------------------------------------------------------------------- tests
@pytest.mark.slow
def test_post_deployment_audit_notebook(tmp_path: Path, python3_kernel: str) -> None:

    nb = execute("post-deployment-audit.ipynb", tmp_path, python3_kernel)
    got = checks(nb)
    m = api.load_matrix(groups=ADMIN)
    result = api.audit([MIXED], groups=ADMIN)
    flows = truth(MIXED)

    # one violation row per truth group (vlan, initiator, responder, protocol, port)
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for t in flows:
        if t["label"] not in ("approved", "control-plane"):
            groups[(t["vlan"], t["src_ip"], t["dst_ip"], t["protocol"], t["dst_port"])].append(
                t["label"]
            )
    want_findings = sorted(
        [labels[0], f"{s} → {d}", proto_port(p, port), len(labels)]
        for (_, s, d, p, port), labels in groups.items()
    )
    assert got["violations"] == got["violation_rows"] == len(groups) == 14
    # the finding groups: the audit's, and they partition the violations
    assert got["groups"] == {
        g["group_id"]: [g["reason"], g["src_side"], g["dst_side"], len(g["findings"])]
        for g in result.finding_groups.to_pylist()
    }
    assert sum(g[3] for g in got["groups"].values()) == 14 and len(got["groups"]) == 12
    assert got["control_plane_flows"] == 4
    assert sorted(got["findings"].values()) == want_findings
    assert set(got["findings"]) == set(result.violations.column("finding_id").to_pylist())

    # one row per approved rule, in matrix order, with the audit's verdict and the
    # truth's flow count
    assert got["rule_rows"] == len(m.rules) == 41
    assert list(got["rules"]) == [r.id for r in m.rules]
    by_rule: dict[str, list[str]] = defaultdict(list)
    for u in result.unused_rules.to_pylist():
        by_rule[u["rule_id"]].append(u["status"])
    for r in m.rules:
        verdicts = by_rule.get(r.id, [])
        want = (
            "used"
            if not verdicts
            else "unused"
            if verdicts == ["unused"] * len(r.protocols)
            else "partly-used"
        )
        assert got["rules"][r.id][0] == want, r.id
    want_flows = rule_flows(m, [t for t in flows if t["label"] == "approved"])
    assert {k: v[1] for k, v in got["rules"].items()} == want_flows
    unused = {k for k, v in got["rules"].items() if v[0] == "unused"}
    assert unused == {k for k, n in want_flows.items() if n == 0}
    assert Counter(v[0] for v in got["rules"].values())["unused"] == 3
    assert got["empty_decisions"] is True

    # the coverage picture was drawn and its grid has the audit's statuses
    # (the sample has traffic the matrix does not approve, unused rules, partly-used ones)
    assert got["coverage_statuses"] == ["partly-used", "unapproved", "unused", "used"]
    assert has_images(nb) >= 1

    # the files for the change request
    assert set(got["reports"]) == {"audit-report.html", "audit-report.md", "signoff.csv"}
    html = (tmp_path / "audit-report.html").read_text(encoding="utf-8")
    md = (tmp_path / "audit-report.md").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    for fid in got["findings"]:
        assert fid in html and fid in md
    with (tmp_path / "signoff.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["rule"] for r in rows if r["kind"] == "rule"] == [r.id for r in m.rules]
    assert sorted(r["finding"] for r in rows if r["kind"] == "violation") == sorted(got["findings"])
    assert len(rows) == 41 + 14
    assert all(r["decision"] == "" and r["ticket"] == "" for r in rows)
    assert (tmp_path / "store").is_dir()

    # accepted findings → proposal → merged copy of the matrix → diff settles exactly them
    assert sorted(got["accepted"]) == got["settled"] == ["2f8957eb21288451", "fe11e0e7d5f0aedf"]
    change = (tmp_path / "matrix-change.md").read_text(encoding="utf-8")
    assert "### Observed findings whose verdict changes (2)" in change
    assert api.load_matrix(tmp_path / "merged-matrix.yaml", ADMIN).rules[-1].origin == "observed"


@pytest.mark.slow
def test_security_review_notebook(tmp_path: Path, python3_kernel: str) -> None:
    nb = execute("security-review.ipynb", tmp_path, python3_kernel)
    got = checks(nb)
    flows = truth(MIXED) + truth(APPROVED)
    assert got["flows"] == len(flows) == 125 + 85
    assert got["violations"] == 14 and got["groups"] == 12

    # top talkers: bytes of both directions and flows, per initiator and per responder
    for side, key in (("top_initiators", "src_ip"), ("top_responders", "dst_ip")):
        agg: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for t in flows:
            agg[t[key]][0] += 1
            agg[t[key]][1] += t["src_bytes"] + t["dst_bytes"]
        want = sorted(agg.items(), key=lambda kv: (-kv[1][1], kv[0]))  # bytes desc, ip
        assert got[side] == [[ip, n, b] for ip, (n, b) in want[:5]]
    assert got["top_initiators"][0] == ["10.25.233.5", 64, 1212674]
    assert got["top_responders"][0] == ["10.25.232.155", 42, 1561514]

    # unexpected flows over time: every truth violation flow, in its 10 s bin, by reason
    bad = [t for t in flows if t["label"] not in ("approved", "control-plane")]
    timeline: dict[str, Counter[str]] = defaultdict(Counter)
    for t in bad:
        timeline[bin_10s(t["first_seen"])][t["label"]] += 1
    assert got["unexpected_flows"] == len(bad) == 14
    assert got["timeline"] == {k: dict(v) for k, v in timeline.items()}

    # per-rule usage, unused rules as zero
    m = api.load_matrix(groups=ADMIN)
    want_rules = rule_flows(m, [t for t in flows if t["label"] == "approved"])
    assert got["per_rule"] == want_rules
    assert sorted(k for k, n in got["per_rule"].items() if n == 0) == [
        "cilium-wireguard-51871",
        "px-object-store-9010",
        "px-sdk-autoscaling-9015",
    ]

    # ad-hoc SQL: TCP states, flows and bytes per VLAN, rejected and unanswered attempts
    assert got["tcp_states"] == dict(Counter(t["state"] for t in flows if t["protocol"] == 6))
    per_vlan: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in flows:
        v = per_vlan["untagged" if t["vlan"] is None else str(t["vlan"])]
        v[0] += 1
        v[1] += t["src_bytes"] + t["dst_bytes"]
    assert got["per_vlan"] == dict(per_vlan)

    def outcome(t: dict[str, Any]) -> str | None:
        if t["protocol"] == 6:
            if t["state"] in ("REJ", "RSTRH"):
                return "rejected"
            return "unanswered" if t["state"] in ("S0", "SH", "RSTOS0") else None
        return "unanswered" if t["dst_packets"] == 0 else None

    attempts = [(outcome(t), t) for t in flows if outcome(t)]
    assert got["attempts"] == dict(Counter(o for o, _ in attempts))
    flagged = {
        (o, t["vlan"], t["src_ip"], t["dst_ip"], t["protocol"], t["dst_port"], t["state"])
        for o, t in attempts
        if t["label"] not in ("approved", "control-plane")
    }
    assert got["attempt_violations"] == len(flagged)
    assert has_images(nb) == 3  # top talkers, timeline, per-rule usage


# ----------------------------------------------------------- committed notebooks
def load(name: str) -> dict[str, Any]:
    nb: dict[str, Any] = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    return nb


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_clean(name: str) -> None:
    import nbformat

    nb = load(name)
    nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))
    assert nb["nbformat"] == 4
    assert set(nb["metadata"]) <= {"kernelspec", "language_info"}
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in nb["cells"]:
        assert set(cell["metadata"]) <= {"tags"}, cell["metadata"]
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], cell["source"]
            assert cell["execution_count"] is None, cell["source"]
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and "OUTPUT_DIR = None" in "".join(params[0]["source"])


def private_uses(source: str) -> list[str]:
    """Every use of flowaudit beyond its public API in a cell's source."""
    public = set(flowaudit.__all__)
    bad = []
    for m in re.finditer(r"\bfrom\s+flowaudit((?:\.\w+)*)\s+import\s+\(?([\w\s,]+)\)?", source):
        module, names = m.group(1), {n.split()[0] for n in m.group(2).split(",") if n.strip()}
        allowed = (
            public | {"report"} if module == "" else {"render"} if module == ".report" else set()
        )
        bad += [f"from flowaudit{module} import {n}" for n in sorted(names - allowed)]
    for m in re.finditer(r"\bflowaudit((?:\.\w+)+)", source):
        path = m.group(1).split(".")[1:]
        # flowaudit.audit is public, flowaudit.audit.engine (a subpackage's module) is not
        api_name = path[0] in public and len(path) == 1
        if not api_name and not (path[0] == "report" and path[1:] in ([], ["render"])):
            bad.append("flowaudit" + m.group(1))
    return bad


def test_private_use_detector() -> None:
    assert private_uses("from flowaudit._util.arrow import pylist") == [
        "from flowaudit._util.arrow import pylist",
        "flowaudit._util.arrow",
    ]
    assert private_uses("import flowaudit.audit.engine\nflowaudit.audit.engine.Engine()") == [
        "flowaudit.audit.engine",
        "flowaudit.audit.engine.Engine",
    ]
    assert private_uses("from flowaudit import api, audit") == ["from flowaudit import api"]
    assert private_uses("flowaudit.kernels.build.x; flowaudit.audit.sql") == [
        "flowaudit.kernels.build.x",
        "flowaudit.audit.sql",
    ]
    assert private_uses("from flowaudit.report.html import render_html") == [
        "from flowaudit.report.html import render_html",
        "flowaudit.report.html",
    ]
    assert private_uses("from flowaudit.report import render, _table") == [
        "from flowaudit.report import _table"
    ]
    ok = "import flowaudit\nfrom flowaudit.report import render\nflowaudit.query('x')"
    assert private_uses(ok) == []


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_use_only_the_public_api(name: str) -> None:
    code = ["".join(c["source"]) for c in load(name)["cells"] if c["cell_type"] == "code"]
    assert "import flowaudit" in "\n".join(code)
    for source in code:
        assert private_uses(source) == [], source
        assert "duckdb" not in source and "pyshark" not in source, source


def test_readme_describes_both_notebooks() -> None:
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert name in readme
    assert "tests/e2e/test_notebooks.py" in readme
    assert MIXED.name in readme and APPROVED.name in readme
