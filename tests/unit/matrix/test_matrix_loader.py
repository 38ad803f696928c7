"""Loading and validating matrices: errors name file:line and rule id; overlays; --group."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from testpaths import DATA, REPO

from flowaudit.errors import RulesError
from flowaudit.limits import (
    MATRIX_MAX_BYTES,
    MATRIX_MAX_DEPTH,
    MATRIX_MAX_RULE_ROWS,
    MATRIX_MAX_RULES,
)
from flowaudit.matrix import load_matrix, shipped_rules_dir
from flowaudit.matrix.model import parse_address, parse_port_range, parse_protocol

RULES = DATA / "rules"

BROKEN = [
    (
        "bad_cidr",
        ":7: group 'nodes': bad address or CIDR '10.25.233.4/24': 10.25.233.4/24 has host bits set",
    ),
    ("unknown_group", ":11: rule 'etcd': unknown group 'nodez' in 'to' (defined: nodes)"),
    (
        "unknown_protocol",
        ":12: rule 'etcd': unknown protocol 'tpc' (use icmp, icmpv6, sctp, tcp, udp or a "
        "number 0-255)",
    ),
    ("bad_range", ":13: rule 'etcd': port range '2380-2379' has lo > hi"),
    ("port_out_of_range", ":13: rule 'etcd': port 65536 outside 0-65535"),
    ("unknown_key", ":15: rule 'etcd': unknown key 'direction' in rule (known: bidirectional"),
    ("duplicate_key", ":14: duplicate key 'ports'"),
    ("duplicate_id", ":16: rule 'etcd': duplicate rule id (first defined at "),
    (
        "yaml_syntax",
        ":11:4: YAML syntax error: while parsing a block collection expected <block end>, "
        "but found '<block mapping start>'",
    ),
]


@pytest.mark.parametrize(("stem", "expected"), BROKEN)
def test_broken_file_names_file_line_and_rule(stem: str, expected: str) -> None:
    path = RULES / f"{stem}.yaml"
    with pytest.raises(RulesError) as exc:
        load_matrix(path)
    assert exc.value.message.startswith(f"{path}{expected}")
    assert exc.value.usage  # exit 2 in the CLI


def test_valid_mini_loads() -> None:
    m = load_matrix(RULES / "valid_mini.yaml")
    assert m.name == "mini"
    assert [(r.id, r.protocols, r.ports, r.bidirectional) for r in m.rules] == [
        ("etcd", (6,), ((2379, 2380),), False)
    ]
    assert m.rules[0].source == f"{RULES / 'valid_mini.yaml'}:9"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_all_problems_of_a_rule_are_reported_together(tmp_path: Path) -> None:
    text = (RULES / "valid_mini.yaml").read_text().replace("to: nodes", "to: [nodes, ghost]")
    text = text.replace("protocol: tcp", "protocol: [tcp, 300]").replace("2379-2380", "x-1")
    p = _write(tmp_path, "m.yaml", text)
    with pytest.raises(RulesError) as exc:
        load_matrix(p)
    assert exc.value.message.splitlines() == [
        "3 problems in the matrix:",
        f"{p}:11: rule 'etcd': unknown group 'ghost' in 'to' (defined: nodes)",
        f"{p}:12: rule 'etcd': protocol number 300 outside 0-255",
        f"{p}:13: rule 'etcd': bad port 'x-1'",
    ]


def test_parsers() -> None:
    assert parse_protocol("TCP") == 6 and parse_protocol("icmpv6") == 58
    assert parse_protocol(132) == 132 and parse_protocol("47") == 47
    assert parse_port_range(443) == (443, 443)
    assert parse_port_range("49152-49215") == (49152, 49215)
    assert parse_port_range("0-65535") == (0, 65535)
    for bad in ("65536", -1, "10-", "a", True, 1.5):
        with pytest.raises(ValueError):
            parse_port_range(bad)
    v4 = 0xFFFF << 32
    assert parse_address("10.25.233.4-10.25.233.6") == (
        (v4 | 0x0A19E904, v4 | 0x0A19E906),
        "10.25.233.4-10.25.233.6",
    )
    assert parse_address("10.25.232.0/24") == ((v4 | 0x0A19E800, v4 | 0x0A19E8FF), "10.25.232.0/24")
    assert parse_address("2001:db8::/126") == (
        (0x20010DB8 << 96, (0x20010DB8 << 96) | 3),
        "2001:db8::/126",
    )
    for bad in ("10.25.233.1/24", "10.25.300.1", "10.0.0.9-10.0.0.1", "10.0.0.1-::1"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_group_option_configures_admin_workstations() -> None:
    base = load_matrix()
    m = load_matrix(groups={"admin_workstations": ["10.1.2.0/24", "10.1.3.7"]})
    assert m.groups["admin_workstations"].addresses == ("10.1.2.0/24", "10.1.3.7/32")
    assert m.groups["admin_workstations"].needs_configuration  # still: the seed gives none
    assert m.sha256 != base.sha256
    assert load_matrix(groups={"admin_workstations": ["10.1.2.0/24", "10.1.3.7"]}).sha256 == (
        m.sha256
    )
    assert m.rules == base.rules


def test_group_option_cannot_change_reviewed_groups_or_invent_groups() -> None:
    with pytest.raises(RulesError) as exc:
        load_matrix(groups={"nodes": ["10.9.9.9"]})
    assert exc.value.message == (
        "--group nodes: group 'nodes' is fixed by the reviewed matrix; overlays and --group "
        "may only configure groups marked needs_configuration"
    )
    with pytest.raises(RulesError, match=r"--group admins: unknown group 'admins'"):
        load_matrix(groups={"admins": ["10.9.9.9"]})
    with pytest.raises(RulesError, match=r"admin_workstations: bad address or CIDR '10.1.2.3/8'"):
        load_matrix(groups={"admin_workstations": ["10.1.2.3/8"]})


def test_overlay_file_applies_to_the_shipped_matrix() -> None:
    example = shipped_rules_dir() / "site-overlay.example.yaml"
    m = load_matrix(example)
    assert m.groups["admin_workstations"].addresses == ("192.0.2.0/28", "198.51.100.7/32")
    assert m.files == (str(shipped_rules_dir() / "tmna-vlan111.yaml"), str(example))
    # --group wins over the overlay
    m2 = load_matrix(example, groups={"admin_workstations": ["10.1.2.0/24"]})
    assert m2.groups["admin_workstations"].addresses == ("10.1.2.0/24",)


def test_directory_with_matrix_and_overlay(tmp_path: Path) -> None:
    shutil.copy(shipped_rules_dir() / "tmna-vlan111.yaml", tmp_path)
    shutil.copy(shipped_rules_dir() / "site-overlay.example.yaml", tmp_path)  # skipped
    assert load_matrix(tmp_path).groups["admin_workstations"].addresses == ()
    assert load_matrix(tmp_path).sha256 == load_matrix().sha256
    _write(tmp_path, "site.yaml", "overlay: tmna-vlan111\ngroups:\n  admin_workstations:\n"
           "    addresses: [192.0.2.0/28, 198.51.100.7]\n")  # fmt: skip
    m = load_matrix(tmp_path)
    assert m.groups["admin_workstations"].addresses == ("192.0.2.0/28", "198.51.100.7/32")
    assert m.sha256 == load_matrix(shipped_rules_dir() / "site-overlay.example.yaml").sha256


def test_overlay_errors_name_file_and_line(tmp_path: Path) -> None:
    shutil.copy(shipped_rules_dir() / "tmna-vlan111.yaml", tmp_path)
    text = (
        "overlay: tmna-vlan111\ngroups:\n  nodes:\n    addresses: [10.9.9.9]\n"
        "  admin_workstations:\n    adresses: [10.1.1.1]\n"
    )
    p = _write(tmp_path, "site.yaml", text)
    with pytest.raises(RulesError) as exc:
        load_matrix(tmp_path)
    assert exc.value.message.splitlines() == [
        "3 problems in the matrix:",
        f"{p}:6: unknown key 'adresses' in overlay group 'admin_workstations' (known: addresses)",
        f"{p}:5: overlay group 'admin_workstations' gives no addresses",
        f"{p}:3: group 'nodes' is fixed by the reviewed matrix; overlays and --group may only "
        "configure groups marked needs_configuration",
    ]
    p.write_text("overlay: other-matrix\ngroups: {}\n")
    with pytest.raises(RulesError, match=r"site.yaml:1: overlay is for 'other-matrix'"):
        load_matrix(tmp_path)


def test_directory_needs_exactly_one_matrix(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="expected exactly one matrix file .* found none"):
        load_matrix(tmp_path)
    shutil.copy(RULES / "valid_mini.yaml", tmp_path / "a.yaml")
    shutil.copy(RULES / "valid_mini.yaml", tmp_path / "b.yaml")
    with pytest.raises(RulesError, match="expected exactly one matrix file"):
        load_matrix(tmp_path)


def test_shipped_rules_dir_in_a_checkout_is_repo_rules() -> None:
    import flowaudit

    packaged = Path(flowaudit.__file__).resolve().parent / "_rules"
    repo_rules = REPO / "rules"
    expected = packaged if packaged.is_dir() else repo_rules  # installed wheel vs checkout
    assert shipped_rules_dir() == expected
    assert (expected / "tmna-vlan111.yaml").is_file()


def test_every_file_in_rules_passes_check() -> None:
    for f in sorted(shipped_rules_dir().glob("*.yaml")):
        assert load_matrix(f).name == "tmna-vlan111"


def test_sha256_ignores_comments_but_not_content(tmp_path: Path) -> None:
    text = (RULES / "valid_mini.yaml").read_text()
    a = load_matrix(_write(tmp_path, "a.yaml", "# a comment\n" + text)).sha256
    b = load_matrix(_write(tmp_path, "b.yaml", text)).sha256
    c = load_matrix(_write(tmp_path, "c.yaml", text.replace("2379-2380", "2379-2381"))).sha256
    assert a == b != c


# --- input limits (flowaudit.limits; issue 12) -------------------------------------------
def test_yaml_alias_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    text = (RULES / "valid_mini.yaml").read_text()
    text = text.replace("  nodes:\n", "  nodes: &n\n").replace("rules:\n", "  copy: *n\nrules:\n")
    p = _write(tmp_path, "alias.yaml", text)
    with pytest.raises(RulesError) as exc:
        load_matrix(p)
    assert exc.value.message == f"{p}:6:10: YAML anchors (&name) are not allowed"
    assert exc.value.usage
    # an alias without an anchor before it is refused as an alias (not a syntax error)
    p = _write(tmp_path, "alias2.yaml", text.replace("  nodes: &n\n", "  nodes:\n"))
    with pytest.raises(RulesError) as exc:
        load_matrix(p)
    assert exc.value.message == f"{p}:8:9: YAML aliases (*name) are not allowed"


def test_merge_key_alias_is_refused(tmp_path: Path) -> None:
    text = "name: m\nbase: &b {x: 1}\nscope:\n  <<: *b\n"
    with pytest.raises(RulesError, match=r":2:7: YAML anchors"):
        load_matrix(_write(tmp_path, "merge.yaml", text))


def test_nesting_is_limited_while_composing(tmp_path: Path) -> None:
    # the document's mapping is level 1; a value nested MATRIX_MAX_DEPTH - 1 deeper parses
    ok = "name: m\ndescription: " + "[" * (MATRIX_MAX_DEPTH - 1) + "]" * (MATRIX_MAX_DEPTH - 1)
    with pytest.raises(RulesError) as exc:
        load_matrix(_write(tmp_path, "ok.yaml", ok + "\n"))
    assert "nesting deeper" not in exc.value.message  # it loads; validation fails later
    deep = "name: m\ndescription: " + "[" * MATRIX_MAX_DEPTH + "]" * MATRIX_MAX_DEPTH
    p = _write(tmp_path, "deep.yaml", deep + "\n")
    with pytest.raises(RulesError) as exc:
        load_matrix(p)
    col = len("description: ") + MATRIX_MAX_DEPTH
    assert exc.value.message == f"{p}:2:{col}: nesting deeper than {MATRIX_MAX_DEPTH} levels"
    # far deeper than the interpreter's recursion limit: still a RulesError
    p = _write(tmp_path, "deeper.yaml", "a:\n" + "  - " * 1 + "[" * 20_000 + "\n")
    with pytest.raises(RulesError, match=r"deeper.yaml:2:\d+: nesting deeper than"):
        load_matrix(p)


@pytest.mark.slow
def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    text = (RULES / "valid_mini.yaml").read_text()
    pad = MATRIX_MAX_BYTES - len(text.encode())
    p = _write(tmp_path, "big.yaml", text + "#" * (pad - 1) + "\n")
    assert p.stat().st_size == MATRIX_MAX_BYTES
    assert load_matrix(p).name == "mini"  # exactly at the limit: read
    p = _write(tmp_path, "big.yaml", text + "#" * pad + "\n")
    with pytest.raises(RulesError) as exc:
        load_matrix(p)
    assert exc.value.message == f"{p}: larger than {MATRIX_MAX_BYTES:,} bytes: not read"
    assert exc.value.usage


@pytest.mark.slow
def test_rule_count_is_limited(tmp_path: Path) -> None:
    head, _, rule = (RULES / "valid_mini.yaml").read_text().partition("rules:\n")
    rules = "".join(rule.replace("id: etcd", f"id: r{i}") for i in range(MATRIX_MAX_RULES))
    p = _write(tmp_path, "many.yaml", head + "rules:\n" + rules)
    assert len(load_matrix(p).rules) == MATRIX_MAX_RULES
    p = _write(tmp_path, "many.yaml", head + "rules:\n" + rules + rule)
    with pytest.raises(RulesError) as exc:
        load_matrix(p)
    assert exc.value.message == (
        f"{p}:8: {MATRIX_MAX_RULES + 1:,} rules: more than {MATRIX_MAX_RULES:,} "
        "(see rules/README.md, limits)"
    )


def _wide(n: int, needs_configuration: bool = False) -> str:
    addrs = ", ".join(f"10.0.{i}.1" for i in range(n))  # n ranges: none contiguous
    group = "{needs_configuration: true}" if needs_configuration else f"{{addresses: [{addrs}]}}"
    return (
        "name: wide\nscope: {vlans: [111], subnets: [10.0.0.0/16]}\n"
        f"groups:\n  a: {group}\n"
        "rules:\n  - id: r\n    from: a\n    to: a\n    protocol: tcp\n    ports: 1\n"
        "    purpose: x\n    provenance: {table: T, row: '1', origin: component}\n"
    )


def test_compiled_rule_rows_are_limited(tmp_path: Path) -> None:
    from flowaudit.matrix.compile import rules_rows

    n = int(MATRIX_MAX_RULE_ROWS**0.5)
    assert n * n == MATRIX_MAX_RULE_ROWS
    m = load_matrix(_write(tmp_path, "ok.yaml", _wide(n)))
    assert len(rules_rows(m)) == MATRIX_MAX_RULE_ROWS  # the count is what compile builds
    p = _write(tmp_path, "wide.yaml", _wide(n + 1))
    with pytest.raises(RulesError) as exc:
        load_matrix(p)
    rows = (n + 1) ** 2
    assert exc.value.message == (
        f"{p}:6: rule 'r': compiles to {rows:,} rule rows (protocols × from-address ranges × "
        f"to-address ranges × port ranges); the matrix compiles to {rows:,} in all, more than "
        f"{MATRIX_MAX_RULE_ROWS:,}"
    )
    # addresses given by --group (or an overlay) count too
    p = _write(tmp_path, "unconfigured.yaml", _wide(0, needs_configuration=True))
    assert load_matrix(p).name == "wide"
    with pytest.raises(RulesError, match=r"unconfigured.yaml:6: rule 'r': compiles to 10,201"):
        load_matrix(p, {"a": [f"10.0.{i}.1" for i in range(n + 1)]})
