"""A family is declared once (models/specs/): outside models/, the package must not branch on family or task
names, nor name a family's tensors where the spec knows them. The scan fails naming each place."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "flurka_export"
# Families and tasks, present and planned (SPEC section 7): a comparison against one is a branch on the family.
FAMILY_NAMES = {"text", "image", "classify", "mlm", "encoder", "lm", "seq2seq", "regress"}
# Tensor names a family spec declares: outside models/ they come from the spec.
SPEC_TENSOR_NAMES = {"input_ids", "attention_mask", "token_type_ids", "pixel_values", "logits", "last_hidden_state"}
NAME_FIELDS = {"task", "family"}


def _is_name_field(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in NAME_FIELDS) or \
        (isinstance(node, ast.Name) and node.id in NAME_FIELDS)


def _constants(node: ast.AST, names: set[str] | None) -> bool:
    """A string constant (in `names`, when given), or a tuple/list/set holding one."""
    elts = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return any(isinstance(e, ast.Constant) and isinstance(e.value, str) and (names is None or e.value in names)
               for e in elts)


def family_branches(source: str) -> list[tuple[int, str]]:
    """(line, code) of each comparison against a family or task name, and of each .task/.family field compared
    with a string ("x.task == ...", "task in (...)")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_constants(s, FAMILY_NAMES) for s in sides) or (
                    any(_is_name_field(s) for s in sides) and any(_constants(s, None) for s in sides)):
                found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def spec_tensor_names(source: str) -> list[tuple[int, str]]:
    """(line, name) of each string constant that is exactly a spec-declared tensor name."""
    return [(n.lineno, n.value) for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in SPEC_TENSOR_NAMES]


def _outside_models() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "models")


def test_the_scan_finds_branches_on_family_names():
    source = ("if config.task == 'image':\n    pass\n"
              "x = 1 if task in ('classify', 'mlm') else 2\n"
              "y = facts.family != 'x'\n"
              "w = task is None or task in HEADS\n"
              "z = kind == 'flurka-elu'\n"  # not a family: no finding
              "v = 'image' == name\n")
    assert [line for line, _ in family_branches(source)] == [1, 3, 4, 7]
    assert spec_tensor_names("feeds = {'input_ids': ids}\nhelp = 'e.g. input_ids:1x1'\n") == [(1, "input_ids")]


def test_no_branch_on_family_names_outside_models():
    bad = [f"{p.relative_to(PACKAGE.parent)}:{line}: {code}" for p in _outside_models()
           for line, code in family_branches(p.read_text())]
    assert not bad, ("branches on family/task names outside flurka_export/models/ (ask the family spec, "
                     "models/specs/, instead):\n" + "\n".join(bad))


def test_no_spec_tensor_names_outside_models():
    bad = [f"{p.relative_to(PACKAGE.parent)}:{line}: {name!r}" for p in _outside_models()
           for line, name in spec_tensor_names(p.read_text())]
    assert not bad, ("tensor names that the family spec declares, hard-coded outside flurka_export/models/ "
                     "(read them from spec.inputs()/outputs()/serving()):\n" + "\n".join(bad))
