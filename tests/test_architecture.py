"""The layout shows the architecture: engine modules import each other without circles, the
engine never imports Streamlit, the top level of ``engine/`` holds only the shared core, and no
module grows past the size one concept needs."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
TOP_LEVEL_CORE = {"__init__", "__main__", "errors", "workspace", "runs", "events", "jobs", "worker",
                  "choices", "projects", "processes", "machine", "linear"}
STAGES = {"ingest", "labeling", "training", "results", "serving", "cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def engine_imports(path: Path, known: set[str]) -> set[str]:
    """Every engine module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in ENGINE.rglob("*.py")}
    known = set(paths)
    graph = {}
    for name, path in paths.items():
        # A package's __init__ is not an edge target worth counting (it holds only a docstring
        # or the lazy public API).
        graph[name] = {target for target in engine_imports(path, known)
                       if target != name and target != "engine"
                       and not (paths[target].name == "__init__.py")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_cycle_finder_sees_a_planted_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_engine_has_no_import_circle():
    assert find_cycle(import_graph()) is None


def test_engine_never_imports_streamlit():
    offenders = [module_name(path) for path in ENGINE.rglob("*.py")
                 if "streamlit" in {alias.split(".")[0] for alias in _all_imports(path)}]
    assert offenders == []


def _all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_top_level_holds_only_the_shared_core_and_the_stages():
    modules = {path.stem for path in ENGINE.glob("*.py")}
    packages = {path.name for path in ENGINE.iterdir() if (path / "__init__.py").is_file()}
    assert modules <= TOP_LEVEL_CORE, sorted(modules - TOP_LEVEL_CORE)
    assert packages <= STAGES, sorted(packages - STAGES)


# Lines per module: split by concept when one grows past this (STYLE.md section 3).
MAX_MODULE_LINES = 350
MAX_PAGE_LINES = 200
# Agreed exceptions (none now: engine/training/loop.py was split, issue 15).
SIZE_EXCEPTIONS: set[str] = set()


def oversized(paths, limit: int) -> list[str]:
    """'path (N lines)' for each file over `limit` lines that is not an agreed exception."""
    found = []
    for path in sorted(paths):
        name = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit and name not in SIZE_EXCEPTIONS:
            found.append(f"{name} ({lines} lines)")
    return found


def test_size_check_sees_an_oversized_module(tmp_path):
    big = ROOT / "engine" / "__init__.py"   # any real file, measured against a tiny limit
    assert oversized([big], limit=3) == [f"engine/__init__.py ({len(big.read_text().splitlines())} lines)"]
    assert oversized([big], limit=10_000) == []


def test_no_engine_or_ui_module_is_over_the_size_limit():
    modules = [*ENGINE.rglob("*.py"), *(ROOT / "ui").rglob("*.py")]
    assert oversized(modules, MAX_MODULE_LINES) == []


def test_pages_stay_short():
    assert oversized((ROOT / "app_pages").glob("*.py"), MAX_PAGE_LINES) == []
    assert oversized([ROOT / "streamlit_app.py"], MAX_PAGE_LINES) == []


# The run folder has one contract (engine.runs.RunFolder / RunStatus): nobody else spells these.
RUN_FOLDER_LITERALS = ('"predictions.csv"', '"model.keras"', '("finished", "halted")')


def spelled_run_files(paths) -> list[str]:
    """'path: literal' for each product module outside engine/runs.py that spells a run file."""
    found = []
    for path in sorted(paths):
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        found += [f"{name}: {literal}" for literal in RUN_FOLDER_LITERALS
                  if literal in text and name != "engine/runs.py"]
    return found


def test_only_the_run_folder_contract_spells_run_file_names():
    assert spelled_run_files([ENGINE / "runs.py"]) == []          # the contract itself may
    assert spelled_run_files([Path(__file__)]) != []              # and this file is caught
    product = [*ENGINE.rglob("*.py"), *(ROOT / "ui").rglob("*.py"), *(ROOT / "app_pages").glob("*.py"),
               ROOT / "streamlit_app.py"]
    assert spelled_run_files(product) == []
