"""The package's import rule, as docs/architecture.md states it, checked on the real code.

docs/architecture.md has a section "Who may import whom" listing, for each part of cnnlib, the
parts it may import. This test reads that list and every module of cnnlib (with ``ast``: nothing
is executed), and fails when
- a module imports a part of cnnlib its own part may not import (at module level or inside a
  function), or
- the module-level imports form a cycle, or
- a function-local import of another cnnlib part is not marked as deferred on purpose: the
  import line (or the line above it) carries a comment saying why.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cnnlib"
DOC = ROOT / "docs" / "architecture.md"


def _rules() -> dict[str, set[str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Who may import whom", 1)[1].split("\n## ", 1)[0]
    rules = {}
    for line in section.splitlines():
        m = re.match(r"^\s{4}([a-z_0-9]+)\s+<-\s+(.*?)\s*$", line)
        if m:
            allowed = {p.strip() for p in m.group(2).split(",") if p.strip() and p.strip() != "-"}
            rules[m.group(1)] = allowed
    assert rules, "docs/architecture.md lost its 'Who may import whom' list"
    return rules


def _part(module: str) -> str:
    """'cnnlib.training.solver' -> 'training'; 'cnnlib.errors' -> 'errors'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = path
    return out


def _resolve(module: str, node: ast.ImportFrom, is_pkg: bool) -> str | None:
    if node.level == 0:
        return node.module
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path):
    """Yield (target module, line number, at module level?, commented?) for cnnlib imports."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    is_pkg = path.name == "__init__.py"
    functions = [n for n in ast.walk(tree)
                 if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    local = {id(n) for f in functions for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node, is_pkg)
            targets = [base] if base else []
            # "from cnnlib import data" imports the subpackage cnnlib.data
            if base == "cnnlib":
                targets = [f"cnnlib.{a.name}" for a in node.names]
        else:
            continue
        is_local = id(node) in local
        # TYPE_CHECKING blocks do not run
        here = lines[node.lineno - 1]
        above = lines[node.lineno - 2] if node.lineno > 1 else ""
        commented = "#" in here or above.strip().startswith("#")
        for t in targets:
            if t and (t == "cnnlib" or t.startswith("cnnlib.")):
                yield t, node.lineno, not is_local, commented


MODULES = _modules()
RULES = _rules()


def test_every_part_of_the_package_has_a_rule():
    parts = {_part(m) for m in MODULES} - {"__init__"}
    missing = sorted(parts - set(RULES))
    assert not missing, f"docs/architecture.md has no import rule for: {missing}"


def test_imports_follow_the_rule():
    broken = []
    for module, path in sorted(MODULES.items()):
        mine = _part(module)
        for target, line, _, _ in _imports(module, path):
            theirs = _part(target)
            if theirs in (mine, "__init__"):
                continue
            if theirs not in RULES.get(mine, set()):
                broken.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {target}")
    assert not broken, "imports that break docs/architecture.md's rule:\n" + "\n".join(broken)


def test_function_local_imports_say_why():
    silent = []
    for module, path in sorted(MODULES.items()):
        for target, line, top, commented in _imports(module, path):
            if not top and not commented and _part(target) not in (_part(module), "__init__"):
                silent.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert not silent, ("function-local imports of another part of cnnlib without a comment "
                        "saying why they are deferred:\n" + "\n".join(silent))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _module_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges = graph.setdefault(module, set())
        for target, _, top, _ in _imports(module, path):
            if not top:
                continue
            # "from cnnlib.x import y" may name a submodule y or an attribute of cnnlib.x
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != module and target in MODULES:
                # a package's __init__ importing its own submodules is not a cycle through them
                edges.add(target)
    return graph


def test_no_import_cycle_between_modules():
    graph = _module_graph()
    # Importing a submodule runs its package's __init__ first; that edge is implicit and
    # harmless when the __init__ only re-exports, so cycles are looked for without it.
    for module in graph:
        graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_cycle_between_parts():
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        mine = _part(module)
        for target, _, top, _ in _imports(module, path):
            theirs = _part(target)
            if top and theirs not in (mine, "__init__"):
                graph.setdefault(mine, set()).add(theirs)
    cycle = _cycle(graph)
    assert cycle is None, "parts of cnnlib import each other: " + " -> ".join(cycle)


@pytest.mark.parametrize("rule_part", sorted(RULES))
def test_rule_names_real_parts(rule_part):
    parts = {_part(m) for m in MODULES}
    unknown = (RULES[rule_part] | {rule_part}) - parts
    assert not unknown, f"docs/architecture.md's rule for {rule_part} names {sorted(unknown)}"
