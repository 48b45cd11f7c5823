"""Size limits of the plugin's C++ (plugins/, *.cpp and *.h): no file over 400 lines, no function over 80 lines.

The function scan is a brace matcher, not a parser: comments, string/char literals and preprocessor lines are blanked
first, then every `{` at namespace or class level whose declaration holds a `(` (and no `=`) opens a function; its
length runs from the declaration's first line to the matching `}` (the last `catch` block of a function-try-block).
"""

import re
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
_LITERAL_OR_COMMENT = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def _sources() -> list[Path]:
    """The plugin's sources and host tests; not what a build inside plugins/ generates (CMakeFiles/, build*/)."""
    generated = lambda p: any(part == "CMakeFiles" or part.startswith("build") for part in p.relative_to(PLUGINS).parts)
    files = sorted(p for ext in ("*.cpp", "*.h") for p in PLUGINS.rglob(ext) if not generated(p))
    assert len(files) >= 10, files  # the plugin and its host tests
    return files


def _blank(text: str) -> str:
    """Comments, literals, preprocessor lines and access labels (public:) replaced by spaces; newlines kept, so
    offsets keep their lines."""
    text = _LITERAL_OR_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    text = re.sub(r"(?m)^[ \t]*#.*$", lambda m: " " * len(m.group()), text)
    return re.sub(r"\b(public|protected|private)\s*:(?!:)", lambda m: " " * len(m.group()), text)


def _matching(code: str, open_pos: int) -> int:
    depth = 0
    for i in range(open_pos, len(code)):
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        if depth == 0:
            return i
    raise AssertionError("unbalanced braces")


def _outside_parens(decl: str) -> str:
    """The declaration without its parenthesized parts and operator names (default arguments, operator=)."""
    decl = re.sub(r"\boperator\b[^(]*", "operator", decl)
    while (stripped := re.sub(r"\([^()]*\)", "", decl)) != decl:
        decl = stripped
    return decl


def _member_init(decl: str) -> bool:
    """Whether a `{` after `decl` brace-initializes a member in a constructor's initializer list."""
    words = re.findall(r"\w+", decl)
    return bool(re.search(r"\)\s*(noexcept\s*)?:(?!:)", decl) and re.search(r"\w\s*$", decl)
                and words[-1] not in ("const", "noexcept", "override", "final", "try"))


def function_lengths(text: str) -> list[tuple[str, int, int]]:
    """(declaration, first line, number of lines) of every function defined in a C++ source."""
    code = _blank(text)
    found = []
    start = 0  # where the current declaration begins: after the last ; { or } at namespace or class level
    i = 0
    while i < len(code):
        c = code[i]
        if c in ";}":
            start = i + 1
        elif c == "{":
            decl = code[start:i]
            if _member_init(decl):
                i = _matching(code, i) + 1  # m{x} in a constructor's initializer list: the declaration goes on
                continue
            if "(" in decl and "=" not in _outside_parens(decl):
                end = _matching(code, i)
                while (m := re.match(r"\s*catch\s*\([^)]*\)\s*\{", code[end + 1:])):  # function-try-block
                    end = _matching(code, end + m.end())
                first = start + len(decl) - len(decl.lstrip())
                line = code.count("\n", 0, first) + 1
                found.append((" ".join(decl.split()), line, code.count("\n", first, end) + 1))
                i = end
            elif not re.search(r"\b(namespace|class|struct|union|enum|extern)\b", decl):
                i = _matching(code, i)  # an initializer: {...} holds no function
            start = i + 1
        i += 1
    return found


def test_no_file_over_400_lines():
    lines = {str(p.relative_to(PLUGINS)): len(p.read_text().splitlines()) for p in _sources()}
    long = {name: n for name, n in lines.items() if n > MAX_FILE_LINES}
    assert not long, f"plugins/ files over {MAX_FILE_LINES} lines (split them by job): {long}"


def test_no_function_over_80_lines():
    long = [f"{p.relative_to(PLUGINS)}:{line} {decl[:90]} ({n} lines)"
            for p in _sources() for decl, line, n in function_lengths(p.read_text()) if n > MAX_FUNCTION_LINES]
    listing = "\n".join(long)
    assert not long, f"plugins/ functions over {MAX_FUNCTION_LINES} lines (move steps into helpers):\n{listing}"


def test_scan_finds_functions():
    """The scan sees member, free, inline and try-block functions, and skips classes, namespaces and initializers."""
    text = """namespace a {
int const kX[] = {1, 2};  // {
struct S { public: int f() const { return 1; } int m{0}; };
int g(int x)
try
{
    char const* s = "}";
    return x;
}
catch (...)
{
    return 0;
}
S::S() : m{2} {}
S& S::operator=(S const& o) { m = o.m; return *this; }
S::S(int x)
    : m{x}
{
    g(x);
}
}
"""
    got = [(decl.split("(")[0].split()[-1], line, n) for decl, line, n in function_lengths(text)]
    assert got == [("f", 3, 1), ("g", 4, 10), ("S::S", 14, 1), ("S::operator=", 15, 1), ("S::S", 16, 5)], got
