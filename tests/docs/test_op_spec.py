"""docs/op-spec.md against the registry: the feature-map table (section 5), the attribute table
(section 3) and the constants, so the page cannot drift from the code."""

import re
from pathlib import Path

from flurka_export.ops.feature_maps import OPTIONAL_ATTRIBUTES, REGISTRY
from flurka_export.ops.schema import ATTRIBUTES

OP_SPEC = Path(__file__).resolve().parents[2] / "docs" / "op-spec.md"


def _section(number: int) -> str:
    text = OP_SPEC.read_text()
    start = text.index(f"\n## {number}. ")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _table(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_feature_map_table_matches_registry():
    rows = {row[0].strip("`"): row for row in _table(_section(5))}
    missing = [name for name in REGISTRY if name not in rows]
    assert not missing, f"docs/op-spec.md section 5 has no row for the feature maps {missing}"
    assert list(rows) == list(REGISTRY), "section 5 lists feature maps the registry does not have, or out of id order"
    for name, fmap in REGISTRY.items():
        _, ident, _, m, _, attrs, proj = rows[name]
        assert int(ident) == fmap.enum_id, name
        assert m == fmap.m_formula, name
        assert [a.strip() for a in attrs.split(",") if a.strip()] == [a.name for a in fmap.attributes], name
        assert proj == ("yes" if fmap.needs_feature_proj else "no"), name


def test_attribute_table_matches_schema():
    rows = {row[0].strip("`"): row for row in _table(_section(3))}
    assert list(rows) == [a.name for a in ATTRIBUTES]
    for a in OPTIONAL_ATTRIBUTES:
        _, typ, required, default, readers = rows[a.name]
        assert (typ, required) == (a.type, "no") and float(default) == a.default, a.name
        users = [name for name, fmap in REGISTRY.items() if a in fmap.attributes]
        assert re.findall(r"[a-z]+", readers.split(";")[0]) == users, a.name


def test_constants_match_registry():
    text = _section(5)
    for fmap in REGISTRY.values():
        for name, value in fmap.constants.items():
            m = re.search(rf"{name} = (\d(?:[\d.e+-]*\d)?)", text)
            assert m, f"docs/op-spec.md section 5 does not state {name}"
            assert float(m.group(1)) == value, name
