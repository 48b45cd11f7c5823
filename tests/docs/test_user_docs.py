"""The user-facing pages name every registered feature map and its attributes: README's feature-map and
attention-kind tables, and the plugin README's field and input tables (docs/op-spec.md: test_op_spec.py)."""

import re
from pathlib import Path

from flurka_export.ops.feature_maps import NEEDS_FEATURE_PROJ, OPTIONAL_ATTRIBUTES, REGISTRY

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PLUGIN_README = ROOT / "plugins" / "flurka_attention" / "README.md"


def _rows(path: Path) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in path.read_text().splitlines() if line.startswith("|")]


def _readers(text: str) -> set[str]:
    # Longest names first, and no word character or hyphen around: "favor-causal" is not "favor".
    names = sorted(REGISTRY, key=len, reverse=True)
    return set(re.findall(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])", text))


def test_readme_feature_map_table():
    listed = [row[0] for row in _rows(README) if row[0] in REGISTRY]
    missing = [m for m in REGISTRY if m not in listed]
    assert not missing, f"README.md's feature-map table ('## How FLuRKA computes') has no row for {missing}"


def test_readme_attention_kinds():
    cells = " ".join(row[0] for row in _rows(README))
    missing = [f"{p}-{m}" for m in REGISTRY for p in ("kernel", "flurka") if f"`{p}-{m}`" not in cells]
    assert not missing, f"README.md's attention-kinds table does not list {missing}"


def test_plugin_readme_fields_and_inputs():
    rows = {row[0].strip("`"): row for row in _rows(PLUGIN_README)}
    names = _readers(rows["feature_map"][-1])
    assert names == set(REGISTRY), f"{PLUGIN_README.relative_to(ROOT)}: the feature_map row lists {sorted(names)}"
    for a in OPTIONAL_ATTRIBUTES:
        want = {m.name for m in REGISTRY.values() if a in m.attributes}
        got = _readers(rows[a.name][-1].split(":")[0])
        assert got == want, f"{PLUGIN_README.relative_to(ROOT)}: the {a.name} row names {sorted(got)} as readers, not {sorted(want)}"
    proj = next(r[0] for r in _rows(PLUGIN_README) if r[0].startswith("input 3"))
    assert _readers(proj) == set(NEEDS_FEATURE_PROJ), f"{PLUGIN_README.relative_to(ROOT)}: {proj!r}"
