"""The package's layers import downwards only: ops is the bottom (the op's definition), kernels may use
ops, and nothing below imports a layer above it. Checked on the source with ast, so a lazy import inside a
function counts too."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "flurka_export"
SUBPACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
# What each layer may import from the package (besides itself and the top-level helper modules).
ALLOWED = {
    "ops": set(),
    "kernels": {"ops"},
    "passes": {"ops"},
}
TOP_LEVEL_MODULES = {"onnx_io", "utils", "version"}


def _imports(path: Path, package: Path = PACKAGE) -> set[str]:
    """flurka_export submodules that `path` imports (first component after flurka_export)."""
    pkg = path.relative_to(package).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[: len(pkg) - node.level + 1]) if node.level <= len(pkg) + 1 else []
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # "from .. import x": x is a subpackage of the top level
                    found |= {a.name for a in node.names}
                    continue
            elif node.module and node.module.startswith("flurka_export"):
                parts = node.module.split(".")[1:]
                if not parts:
                    found |= {a.name for a in node.names}
                    continue
            else:
                continue
            found.add(parts[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("flurka_export.")}
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_below(layer):
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for target in _imports(path) - {layer} - ALLOWED[layer]:
            if target in SUBPACKAGES or target in TOP_LEVEL_MODULES and layer == "ops":
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports flurka_export.{target}")
    assert not bad, f"{layer} may import only {sorted(ALLOWED[layer]) or 'nothing'} from the package: " + "; ".join(bad)


@pytest.mark.parametrize("where,source", [
    ("ops", "from ..kernels import launch"),
    ("ops", "from .. import kernels"),
    ("ops/feature_maps", "from ...kernels.launch import x"),
    ("ops", "import flurka_export.kernels.launch"),
    ("ops", "def f():\n    from flurka_export.kernels import launch"),
])
def test_the_checker_sees_upward_imports(tmp_path, where, source):
    probe = tmp_path / "flurka_export" / where / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(source + "\n")
    assert "kernels" in _imports(probe, tmp_path / "flurka_export")
