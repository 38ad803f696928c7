"""The mutants of issue 18, planted one at a time: each must be killed.

Before the property tests only one of the issue's six plausible bugs was caught. This
keeps them as a regression check of the tests themselves: every mutant below is one
small edit of the package (in a temporary copy), and the named tests must fail on it.

    python tests/mutation/planted.py          # all of them (~2 min; the TCP one rebuilds
                                              # the compiled kernels in the copy)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Mutant, baseline, report, sandbox  # noqa: E402

HYPOTHESIS = ("--hypothesis-profile=mutation",)
PLANTED = [
    Mutant(
        "reason precedence: out-of-scope checked before off-vlan",
        "flowaudit/audit/sql/violations.sql",
        "            WHEN f.vlan_id IS NOT NULL AND f.scoped_vlans AND NOT f.vlan_in_scope "
        "THEN 'off-vlan'\n"
        "            WHEN NOT f.src_in_scope OR NOT f.dst_in_scope THEN 'out-of-scope-address'\n",
        "            WHEN NOT f.src_in_scope OR NOT f.dst_in_scope THEN 'out-of-scope-address'\n"
        "            WHEN f.vlan_id IS NOT NULL AND f.scoped_vlans AND NOT f.vlan_in_scope "
        "THEN 'off-vlan'\n",
        ("tests/unit/audit/test_reason_properties.py",),
    ),
    Mutant(
        "TCP state: the 'FIN, then RST from the peer' rule deleted",
        "flowaudit/kernels/tcpstate.py",
        "            if pst == T_RESET and pi[p, C_PV0 + peer] == T_CLOSED:\n"
        "                _set_state(pi, p, peer, T_CLOSED)  # FIN then RST from the peer: "
        "normal end\n",
        "",
        ("tests/unit/flows/test_tcpstate_properties.py",),
    ),
    Mutant(
        "NetFlow v9 options template: only the option fields counted",
        "flowaudit/records/netflow/templates.py",
        "scope, count = scope_len // 4, (scope_len + opt_len) // 4",
        "scope, count = scope_len // 4, opt_len // 4",
        ("tests/unit/records/test_netflow_properties.py",),
    ),
    Mutant(
        "port complement: a range's top port skipped",
        "flowaudit/matrix/model.py",
        "        for p in range(lo, hi + 1):",
        "        for p in range(lo, hi):",
        ("tests/unit/matrix/test_ports_properties.py",),
    ),
    Mutant(
        "store: the idempotency check under the lock never true",
        "flowaudit/store.py",
        'if (store.manifest_dir / f"{record.blake3}.json").exists():',
        'if (store.manifest_dir / f"{record.blake3}.json").exists() and False:',
        ("tests/unit/ingest/test_concurrency_properties.py",),
    ),
    Mutant(
        "odd-width NetFlow counters: bytes shifted by 7 bits",
        "flowaudit/records/netflow/templates.py",
        "v = (v << np.uint64(8)) | col[:, col.shape[1] - width + i]",
        "v = (v << np.uint64(7)) | col[:, col.shape[1] - width + i]",
        ("tests/unit/records/test_netflow_properties.py",),
    ),
]


def main() -> int:
    outcomes = []
    with sandbox() as box:
        baseline(box, sorted({t for m in PLANTED for t in m.tests}), 600, HYPOTHESIS)
        for m in PLANTED:
            out = box.run(m, timeout=600, extra=HYPOTHESIS)
            print(f"{out.status:8} {out.seconds:6.1f} s  {m.name}", flush=True)
            outcomes.append(out)
    return 1 if report(outcomes, "planted mutants (issue 18)") else 0


if __name__ == "__main__":
    sys.exit(main())
