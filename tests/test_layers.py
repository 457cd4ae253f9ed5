"""The package map in docs/architecture.md ("Package map") is the code's import graph, exactly."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS = ("engine", "dashboard", "pages")


def unit(module: str) -> str:
    """engine.plan.model -> engine.plan; engine.cli -> engine.cli; dashboard.state -> dashboard."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "engine" and len(parts) > 1 else parts[0]


def code_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    files = [*REPO.glob("engine/**/*.py"), *REPO.glob("dashboard/*.py"), *REPO.glob("pages/*.py")]
    for path in files:
        mod = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        src = unit(mod)
        edges.setdefault(src, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            for name in names:
                if name.split(".")[0] in OURS and unit(name) != src:
                    edges[src].add(unit(name))
    return edges


def doc_graph() -> dict[str, set[str]]:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```layers block"
    edges: dict[str, set[str]] = {}
    for line in block.group(1).strip().splitlines():
        src, _, rest = line.partition("->")
        edges[src.strip()] = set(rest.replace("|", " ").replace("debt:", " ").split())
    return edges


def test_the_package_map_is_the_import_graph() -> None:
    code, doc = code_graph(), doc_graph()
    assert set(code) == set(doc), f"units in the code, not in the map: {sorted(set(code) - set(doc))}; " \
                                  f"in the map, not in the code: {sorted(set(doc) - set(code))}"
    new = {u: sorted(code[u] - doc[u]) for u in code if code[u] - doc[u]}
    gone = {u: sorted(doc[u] - code[u]) for u in code if doc[u] - code[u]}
    assert not new, f"imports the map does not allow (decide, then write them in docs/architecture.md): {new}"
    assert not gone, f"edges in the map the code no longer has (remove them from docs/architecture.md): {gone}"


def test_the_engine_never_imports_the_dashboard_or_pages() -> None:
    code = code_graph()
    bad = {u: sorted(d & {"dashboard", "pages"}) for u, d in code.items() if u.startswith("engine") and d & {"dashboard", "pages"}}
    assert not bad, bad
