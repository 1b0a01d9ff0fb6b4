"""The installable package stands alone: its library imports nothing from the product's top-level folders
(datamodules/, callbacks/; only tasks/ does, and the wheel ships them), its module-level imports have no cycles,
and wandb is imported only by callbacks/ and the logger factory."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "svdd_lightning"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_library_imports_nothing_from_datamodules_or_callbacks():
    """The library (everything but tasks/, what the entry points run) never needs the data or output folders;
    tasks/ writes through callbacks/ and reads through datamodules/, which ship in the same wheel (pyproject.toml)."""
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "tasks"):
            continue
        bad = {m for m in imports(path, top_level_only=False) if m.split(".")[0] in ("datamodules", "callbacks")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_no_import_cycles_in_the_package():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in imports(path, top_level_only=True) if m in modules and m != name}
             for name, path in modules.items()}
    # A submodule imports its package's __init__ first; an __init__ importing its own children is not a cycle.
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_wandb_is_imported_only_by_callbacks_and_the_logger_factory():
    allowed = {ROOT / "svdd_lightning" / "loggers.py"}
    for path in ROOT.rglob("*.py"):
        if any(part in (".venv", "outputs", "tests") for part in path.relative_to(ROOT).parts):
            continue
        if path.parent == ROOT / "callbacks" or path in allowed:
            continue
        uses = {m for m in imports(path, top_level_only=False) if m.split(".")[0] == "wandb"}
        assert not uses, f"{path.relative_to(ROOT)} imports {sorted(uses)}"


def scripts() -> dict[str, Path]:
    """Module name -> file of every script (a file with a ``__main__`` block) under the root, benchmarks/ and
    scripts/."""
    found = {}
    for folder in (ROOT, ROOT / "benchmarks", ROOT / "scripts"):
        for path in folder.glob("*.py"):
            if "__main__" in path.read_text():
                found[module_name(path)] = path
    return found


def test_no_script_imports_another_script():
    known = scripts()
    assert {"decode", "train", "benchmark", "benchmarks.pareto", "benchmarks.speed"} <= set(known)
    found = set()
    for folder in (ROOT, ROOT / "benchmarks", ROOT / "scripts", ROOT / "svdd_lightning"):
        for path in folder.rglob("*.py") if folder.name == "svdd_lightning" else folder.glob("*.py"):
            for module in imports(path, top_level_only=False):
                if module in known and known[module] != path:
                    found.add((module_name(path), module))
    assert not found, f"scripts imported by other code: {sorted(found)}"
