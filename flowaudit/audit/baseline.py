"""Baselines: what changed since the previous report (new, persisting, resolved findings).

A baseline is a previous JSON report (schema_version 1, ``flowaudit audit --format json``).
Finding ids are stable hashes of what a finding is about (never of times or ephemeral
ports), so comparing id sets answers "what is new since last time". ``compare`` returns
the result with ``changes`` set and new findings ordered first in both tables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from flowaudit.audit.result import Changes
from flowaudit.errors import UsageError
from flowaudit.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    import pyarrow as pa

    from flowaudit.audit.result import AuditResult


#: the result type is kept (dataclasses.replace): a report stays a report
R = TypeVar("R", bound="AuditResult")


def load_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a previous JSON report; bad files raise UsageError naming the spot."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise UsageError(f"{p}: cannot read the baseline report: {e.strerror}") from e
    try:
        doc = json.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as e:
        raise UsageError(
            f"{p}:{e.lineno}:{e.colno}: the baseline is not JSON ({e.msg})",
            hint="pass a report written by `flowaudit audit --format json`",
        ) from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{p}: byte {e.start}: the baseline is not UTF-8 text") from None
    except RecursionError:
        raise UsageError(
            f"{p}: the baseline is nested too deeply to be a flowaudit report",
            hint="pass a report written by `flowaudit audit --format json`",
        ) from None
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise UsageError(
            f"{p}: not a flowaudit JSON report (no schema_version)",
            hint="pass a report written by `flowaudit audit --format json`",
        )
    if doc["schema_version"] != SCHEMA_VERSION:
        raise UsageError(
            f"{p}: baseline has schema_version {doc['schema_version']!r}; "
            f"this flowaudit reads {SCHEMA_VERSION}"
        )
    for key in ("violations", "unused_rules"):
        items = doc.get(key)
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("finding_id"), str) for i in items
        ):
            raise UsageError(f"{p}: '{key}' must be a list of findings with a finding_id")
    doc["_file"] = p.name
    doc["_sha256"] = hashlib.sha256(raw).hexdigest()
    return doc


def _resolved_summary(kind: str, f: dict[str, Any]) -> dict[str, Any]:
    keys: tuple[str, ...]
    if kind == "violation":
        keys = ("finding_id", "reason", "vlan_id", "src_ip", "dst_ip", "protocol", "dst_port")
    else:
        keys = ("finding_id", "rule_id", "status", "protocol")
    return {"kind": kind, **{k: f.get(k) for k in keys}, "last_seen": f.get("last_seen")}


def compare(result: R, baseline: dict[str, Any]) -> R:
    """``result`` with ``changes`` against ``baseline`` and new findings listed first."""
    current = [*result.violations.column("finding_id").to_pylist()]
    current += result.unused_rules.column("finding_id").to_pylist()
    before: dict[str, dict[str, Any]] = {}
    for kind, key in (("violation", "violations"), ("unused-rule", "unused_rules")):
        for f in baseline[key]:
            before[f["finding_id"]] = _resolved_summary(kind, f)
    now = set(current)
    new_groups = _new_groups(result, baseline, before)
    canonical = json.dumps(baseline, sort_keys=True, default=str).encode()
    changes = Changes(
        baseline_file=baseline.get("_file", "(in memory)"),
        baseline_sha256=baseline.get("_sha256") or hashlib.sha256(canonical).hexdigest(),
        baseline_window=dict(baseline.get("window") or {}),
        baseline_matrix_sha256=(baseline.get("matrix") or {}).get("sha256"),
        new=tuple(i for i in current if i not in before),
        persisting=tuple(i for i in current if i in before),
        resolved=tuple(i for i in before if i not in now),
        resolved_findings=tuple(v for i, v in before.items() if i not in now),
        new_groups=new_groups,
    )
    groups = result.finding_groups
    if groups is not None:  # new groups first (their findings are all new)
        gids = groups.column("group_id").to_pylist()
        groups = _new_first(groups, {g: None for g in gids if g not in new_groups}, "group_id")
    return dataclasses.replace(
        result,
        violations=_new_first(result.violations, before),
        unused_rules=_new_first(result.unused_rules, before),
        finding_groups=groups,
        changes=changes,
    )


def _new_groups(
    result: AuditResult, baseline: dict[str, Any], before: dict[str, Any]
) -> tuple[str, ...]:
    """The ids of this result's finding groups the baseline did not have. A baseline
    without ``finding_groups`` (written before groups existed): a group is new when none
    of its findings was in the baseline."""
    if result.finding_groups is None:
        return ()
    groups = result.finding_groups.select(["group_id", "findings"]).to_pylist()
    old = baseline.get("finding_groups")
    if isinstance(old, list):
        known = {g.get("group_id") for g in old if isinstance(g, dict)}
        return tuple(g["group_id"] for g in groups if g["group_id"] not in known)
    return tuple(g["group_id"] for g in groups if not any(f in before for f in g["findings"]))


def only_new(result: R) -> R:
    """``result`` with only the findings that are new since its baseline (for a mail or a
    ticket); the coverage picture and ``changes`` stay whole."""
    if result.changes is None:
        raise UsageError("only new findings: there is no baseline to compare with")
    import numpy as np

    from flowaudit.audit.result import finding_stats

    new = set(result.changes.new)
    violations = _keep(result.violations, new)
    unused = _keep(result.unused_rules, new)
    groups = result.finding_groups
    if groups is not None:  # the groups holding a new finding, with their new findings only
        import pyarrow as pa

        from flowaudit._util.arrow import bools

        lists = [[f for f in fs if f in new] for fs in groups.column("findings").to_pylist()]
        col = groups.schema.get_field_index("findings")
        groups = groups.set_column(
            col, groups.schema.field(col), pa.array(lists, groups.schema.field(col).type)
        )
        groups = groups.filter(bools(np.array([bool(x) for x in lists], dtype=bool)))
    stats = {**result.stats, **finding_stats(violations, unused, groups), "only_new": True}
    return dataclasses.replace(
        result, violations=violations, unused_rules=unused, finding_groups=groups, stats=stats
    )


def _keep(table: pa.Table, ids: set[str]) -> pa.Table:
    import numpy as np

    from flowaudit._util.arrow import bools

    mask = np.fromiter((i in ids for i in table.column("finding_id").to_pylist()), dtype=bool)
    return table.filter(bools(mask))


def _new_first(table: pa.Table, before: dict[str, Any], key: str = "finding_id") -> pa.Table:
    ids = table.column(key).to_pylist()
    order = sorted(range(len(ids)), key=lambda i: (ids[i] in before, i))
    if order == list(range(len(ids))):
        return table
    import pyarrow as pa

    from flowaudit._util.arrow import ints

    return table.take(ints(pa.int64(), order))  # a list index would import pandas


__all__ = ["compare", "load_baseline", "only_new"]
