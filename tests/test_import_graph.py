"""The package's layers import downwards only, and no two modules import each other, even through others.

Every subpackage and top-level module of flurka_export has a place in LAYERS, bottom first. A unit may import
itself and the units of the layers below its own; units that share a layer are peers and import neither
each other nor anything above. So a circle between packages is always an upward import somewhere, and
`test_layer_imports_only_below` names it; `test_no_circle_between_modules` catches a circle inside one
package. Checked on the source with ast, so a lazy import inside a function counts too.

The order, and why each layer sits where it does:
  ops              the op's definition: imports nothing of the package
  utils, version   helpers for output paths and the version string
  onnx_io          ONNX files in and out, every flurka.* metadata key
  kernels, passes  Triton kernels of the op; ONNX graph passes (peers: neither needs the other)
  models           FLuRKA models in PyTorch (they call the kernels); which layers a model has
  trt              TensorRT plugin, profiles, engines (engines run the prepare-trt pass)
  runtimes         one Runtime per backend and its Polygraphy runner (TensorRT's uses trt)
  generate         (peer of runtimes) the decoding loop of generating models over PyTorch and ONNX Runtime
  export           PyTorch -> ONNX; checks the bodies it wrote in ONNX Runtime (runtimes)
  parity           inputs, comparison, verify across the runtimes, golden files
  optimize         the passes chained, each file exported and checked with parity
  bench, data, deploy, importers, train
                   the applications (peers): timing runs, datasets, Triton repositories, checkpoint
                   importers, the examples' training loop and accuracy checks
  serve            `serve`, on top of deploy's repositories
  cli              one module per sub-command: may use everything below
  __init__, __main__  the package's own entry points
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "flurka_export"
LAYERS = [  # bottom first
    ("ops",),
    ("utils", "version"),
    ("onnx_io",),
    ("kernels", "passes"),
    ("models",),
    ("trt",),
    ("runtimes", "generate"),
    ("export",),
    ("parity",),
    ("optimize",),
    ("bench", "data", "deploy", "importers", "train"),
    ("serve",),
    ("cli",),
    ("__init__", "__main__"),
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def _units(package: Path = PACKAGE) -> set[str]:
    """Subpackages and top-level modules (by stem, `__init__` being the package itself)."""
    return ({p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
            | {p.stem for p in package.glob("*.py")})


def _unit_of(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path, package: Path = PACKAGE) -> set[str]:
    """flurka_export units that `path` imports (first component after flurka_export); a name imported from
    the package itself (`from flurka_export import export_onnx`) counts as the unit `__init__`."""
    pkg = path.relative_to(package).parts[:-1]
    units = _units(package) if package.is_dir() else set()
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[: len(pkg) - node.level + 1]) if node.level <= len(pkg) + 1 else []
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("flurka_export"):
                parts = node.module.split(".")[1:]
            else:
                continue
            if not parts:  # "from .. import x": x is a unit, or a name from the package's __init__
                found |= {a.name if a.name in units else "__init__" for a in node.names}
                continue
            found.add(parts[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("flurka_export.")}
    return found


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(path: Path, package: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports: `from .a import b` is a.b where b is a module, else a."""
    me = _module_name(path, package)
    here = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            found |= {f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return (found & modules) - {me}


def _circles(package: Path = PACKAGE) -> list[list[str]]:
    """Sets of modules that import each other, directly or through others (Tarjan's strongly connected
    components of more than one module)."""
    paths = {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}
    graph = {m: sorted(_module_imports(p, package, set(paths))) for m, p in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return circles


def test_every_unit_has_a_layer():
    units = _units()
    assert not units - set(RANK), f"give these a place in LAYERS: {sorted(units - set(RANK))}"
    assert not set(RANK) - units, f"LAYERS names units that do not exist: {sorted(set(RANK) - units)}"
    assert len(RANK) == sum(map(len, LAYERS)), "a unit appears twice in LAYERS"


def _upward_imports(unit: str, package: Path = PACKAGE) -> list[str]:
    paths = sorted((package / unit).rglob("*.py")) if (package / unit).is_dir() else [package / f"{unit}.py"]
    bad = []
    for path in paths:
        for target in sorted(_imports(path, package) - {unit}):
            if RANK.get(target, len(LAYERS)) >= RANK[unit]:
                bad.append(f"{path.relative_to(package.parent)} imports flurka_export.{target}")
    return bad


@pytest.mark.parametrize("unit", sorted(RANK))
def test_layer_imports_only_below(unit):
    bad = _upward_imports(unit)
    below = sorted(u for u in RANK if RANK[u] < RANK[unit])
    assert not bad, (f"{unit} may import only {below or 'nothing'} from the package (LAYERS in this file): "
                     + "; ".join(bad))


def test_no_circle_between_modules():
    assert not _circles(), f"modules that import each other: {_circles()}"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "flurka_export"
    for name, source in {"__init__.py": "", **files}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(source + "\n")
    return package


@pytest.mark.parametrize("where,source", [
    ("ops", "from ..kernels import launch"),
    ("ops", "from .. import kernels"),
    ("ops/feature_maps", "from ...kernels.launch import x"),
    ("ops", "import flurka_export.kernels.launch"),
    ("ops", "def f():\n    from flurka_export.kernels import launch"),
])
def test_the_checker_sees_upward_imports(tmp_path, where, source):
    package = _tree(tmp_path, {"kernels/__init__.py": "", f"{where}/probe.py": source})
    assert _imports(package / where / "probe.py", package) == {"kernels"}


def test_the_checker_flags_imports_of_a_peer_of_a_higher_layer_and_of_the_package(tmp_path):
    package = _tree(tmp_path, {"bench/__init__.py": "from ..train import loop", "parity/__init__.py": "",
                               "parity/x.py": "def f():\n    from ..bench import run",
                               "export/__init__.py": "from .. import export_onnx", "train/__init__.py": ""})
    assert _upward_imports("bench", package) == ["flurka_export/bench/__init__.py imports flurka_export.train"]
    assert _upward_imports("parity", package) == ["flurka_export/parity/x.py imports flurka_export.bench"]
    assert _upward_imports("export", package) == ["flurka_export/export/__init__.py imports flurka_export.__init__"]


def test_the_checker_sees_circles(tmp_path):
    package = _tree(tmp_path, {"train/__init__.py": "from .a import f", "train/a.py": "from .b import g",
                               "train/b.py": "def g():\n    from . import c", "train/c.py": "from .a import f",
                               "train/d.py": "from .a import f"})
    assert _circles(package) == [["flurka_export.train.a", "flurka_export.train.b", "flurka_export.train.c"]]
