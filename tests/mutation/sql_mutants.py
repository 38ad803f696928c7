"""Mutation testing of the audit's SQL (flowaudit/audit/sql/*.sql), which mutmut cannot see.

Operators, each applied at one place of one file at a time (in a copy of the package):

* ``case-swap``    two adjacent WHEN branches of a CASE exchanged (precedence)
* ``drop-and``     a conjunct dropped (a line starting with AND, to its closing bracket)
* ``drop-or``      a disjunct dropped (a line starting with OR)
* ``between-lo`` / ``between-hi``   a port BETWEEN's bound shifted by one
* ``swap-side``    a rule's from/to side swapped in one condition (src_lo/hi <-> dst_lo/hi)
* ``join``         LEFT JOIN -> JOIN, LEFT JOIN -> RIGHT JOIN
* ``null-eq``      IS NOT DISTINCT FROM -> = (NULL keys stop matching)
* ``boundary``     >= -> >, < -> <= in the time window
* ``drop-not``     WHEN NOT x -> WHEN x

Stage 1 runs the audit's unit tests against each mutant (finding_flows.sql: the
evidence tests too); a survivor goes to stage 2, the end-to-end sample audits. Prints
the score and every survivor; tests/MUTATION.md records them with their reasons.

    python tests/mutation/sql_mutants.py [--list] [--only SUBSTRING] [--range A:B]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, Mutant, Outcome, baseline, report, sandbox  # noqa: E402

SQL = REPO / "flowaudit" / "audit" / "sql"
STAGE1 = (  # the audit's unit and property tests, quickest and most telling first
    "tests/unit/audit/test_audit.py",
    "tests/unit/audit/test_reason_properties.py",
    "tests/unit/audit/test_window_properties.py",
    "tests/unit/audit/test_coverage.py",
)
# the files the four above do not reach (or reach only in part) add the tests written for them
_RUN = ("tests/unit/audit/test_run_mutants.py", "tests/unit/audit/test_run_survivors.py")
STAGE1_EXTRA: dict[str, tuple[str, ...]] = {
    "overlay.sql": ("tests/unit/audit/test_overlay.py",),
    "control_plane_conversations.sql": ("tests/unit/audit/test_control_plane.py",),
    "conversations.sql": ("tests/unit/audit/test_many_conversations.py",),
    "violation_groups.sql": ("tests/unit/audit/test_groups.py",),
    "finding_groups.sql": ("tests/unit/audit/test_groups.py", "tests/unit/audit/test_baseline.py"),
    "coverage_findings.sql": ("tests/unit/audit/test_coverage_oracle.py",),
    "rule_observability.sql": ("tests/unit/audit/test_coverage_oracle.py",),
    "traffic_shape.sql": _RUN,
    "encrypted.sql": ("tests/unit/audit/test_overlay.py", *_RUN),
}
STAGE2 = (  # the samples' ground truth and golden reports
    "tests/e2e/test_samples.py::test_violations_equal_the_ground_truth",
    "tests/e2e/test_samples.py::test_unused_rules_follow_the_ground_truth",
    "tests/e2e/test_samples.py::test_approved_only_sample_has_no_violation",
    "tests/e2e/test_golden_reports.py::test_report_equals_golden[json-vlan111-mixed]",
    "tests/e2e/test_golden_reports.py::test_report_with_baseline_equals_golden[json]",
)
HYPOTHESIS = ("--hypothesis-profile=mutation",)


def _unique(lines: list[str], i: int, j: int, text: str) -> tuple[str, int]:
    """The smallest block of whole lines around lines[i:j] that occurs once in ``text``."""
    lo, hi = i, j
    while text.count("".join(lines[lo:hi])) != 1:
        lo, hi = max(lo - 1, 0), min(hi + 1, len(lines))
    return "".join(lines[lo:hi]), lo


def _balanced_end(lines: list[str], i: int) -> int:
    depth, j = 0, i
    while True:
        depth += lines[j].count("(") - lines[j].count(")")
        j += 1
        if depth <= 0 or j == len(lines):
            return j


def _replace_block(lines: list[str], i: int, j: int, new: list[str], text: str) -> tuple[str, str]:
    old, lo = _unique(lines, i, j, text)
    ctx = lines[lo:i] + new + lines[j : lo + len(old.splitlines(keepends=True))]
    return old, "".join(ctx)


def mutants_of(path: Path) -> list[Mutant]:
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    rel = path.relative_to(REPO).as_posix()
    tests = STAGE1 + STAGE1_EXTRA.get(path.name, ())
    out: list[Mutant] = []

    def add(op: str, i: int, j: int, new: list[str]) -> None:
        old, new_text = _replace_block(lines, i, j, new, text)
        if old != new_text:
            name = f"{path.name}:{i + 1}:{op}"
            same = sum(m.name.split("#")[0] == name for m in out)
            name += f"#{same + 1}" if same else ""  # e.g. both sides of one line swapped
            out.append(Mutant(name, rel, old, new_text, tests))

    # case-swap: WHEN branches (a WHEN line and its deeper-indented continuation lines)
    whens = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("WHEN ")]
    for a, b in zip(whens, whens[1:], strict=False):
        indent = len(lines[a]) - len(lines[a].lstrip())
        end_b = b + 1
        while end_b < len(lines) and (len(lines[end_b]) - len(lines[end_b].lstrip())) > indent:
            end_b += 1
        between = lines[a + 1 : b]
        if any(not ln.startswith(" " * (indent + 1)) for ln in between):
            continue  # not the same CASE
        add("case-swap", a, end_b, lines[b:end_b] + lines[a:b])
    for i, ln in enumerate(lines):
        s = ln.lstrip()
        if s.startswith("AND "):
            add("drop-and", i, _balanced_end(lines, i), [])
        if s.startswith("OR ") and not s.startswith("OR ("):
            add("drop-or", i, _balanced_end(lines, i), [])
        if s.startswith("WHEN NOT "):
            add("drop-not", i, i + 1, [ln.replace("WHEN NOT ", "WHEN ", 1)])
        for m in re.finditer(r"BETWEEN ((?:\w+\.)?port_lo) AND ((?:\w+\.)?port_hi)", ln):
            lo, hi = m.group(1), m.group(2)
            add("between-lo", i, i + 1, [ln.replace(m.group(0), f"BETWEEN {lo} + 1 AND {hi}")])
            add("between-hi", i, i + 1, [ln.replace(m.group(0), f"BETWEEN {lo} AND {hi} - 1")])
        for side, other in (("src", "dst"), ("dst", "src")):
            pat = f"BETWEEN r.{side}_lo AND r.{side}_hi"
            if ln.count(pat) == 1:
                swapped = f"BETWEEN r.{other}_lo AND r.{other}_hi"
                add("swap-side", i, i + 1, [ln.replace(pat, swapped)])
        if "LEFT JOIN" in ln:
            add("join-inner", i, i + 1, [ln.replace("LEFT JOIN", "JOIN", 1)])
            add("join-right", i, i + 1, [ln.replace("LEFT JOIN", "RIGHT JOIN", 1)])
        if ln.count("IS NOT DISTINCT FROM") == 1:
            add("null-eq", i, i + 1, [ln.replace("IS NOT DISTINCT FROM", "=")])
        if "$since" in ln and ">=" in ln:
            add("boundary", i, i + 1, [ln.replace(">=", ">", 1)])
        if "$until" in ln and " < " in ln:
            add("boundary", i, i + 1, [ln.replace(" < ", " <= ", 1)])
    return out


def all_mutants() -> list[Mutant]:
    return [m for p in sorted(SQL.glob("*.sql")) for m in mutants_of(p)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    ap.add_argument(
        "--only", default="", help="run only mutants whose name contains one of these (a,b,...)"
    )
    ap.add_argument("--range", default=":", help="a slice of the mutant list, e.g. 60:101")
    ap.add_argument("--timeout", type=float, default=150, help="seconds per mutant and stage")
    args = ap.parse_args()
    lo, _, hi = args.range.partition(":")
    chosen = all_mutants()[int(lo) if lo else None : int(hi) if hi else None]
    wanted = args.only.split(",")
    mutants = [m for m in chosen if any(w in m.name for w in wanted)]
    if args.list:
        for m in mutants:
            print(f"{m.name}\n  - {m.old.strip()}\n  + {m.new.strip()}")
        print(f"{len(mutants)} mutants")
        return 0
    outcomes: list[Outcome] = []
    with sandbox() as box:
        baseline(box, [*STAGE1, *STAGE2], 900, HYPOTHESIS)
        for m in mutants:
            out = box.run(m, args.timeout, HYPOTHESIS)
            if out.status == "survived":  # stage 2: the end-to-end sample audits
                m2 = Mutant(m.name, m.path, m.old, m.new, STAGE2, m.why)
                out2 = box.run(m2, args.timeout, HYPOTHESIS)
                stage = "e2e"
                out = Outcome(m, out2.status, out.seconds + out2.seconds, out2.tail)
            else:
                stage = "unit"
            print(f"{out.status:8} {stage:4} {out.seconds:6.1f} s  {m.name}", flush=True)
            outcomes.append(out)
    report(outcomes, "SQL mutants")
    return 0


if __name__ == "__main__":
    sys.exit(main())
