"""engine/ is pure Python: no module imports streamlit (DESIGN.md, "Shape")."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "engine"
# Modules that must import cleanly; any other engine module is imported when it can be.
CORE = ["engine", "engine.cli", "engine.hospital", "engine.store", "engine.contract", "engine.errors", "engine.io"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _streamlit_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
            names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        else:
            continue
        hits += [f"{path.relative_to(REPO)}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    return hits


def test_no_engine_source_imports_streamlit() -> None:
    files = sorted(ENGINE.rglob("*.py"))
    assert ENGINE / "hospital" / "load.py" in files  # the scan sees the packages' modules
    hits = [h for f in files for h in _streamlit_imports(f)]
    assert not hits, "engine/ must never import streamlit:\n" + "\n".join(hits)


_PROBE = """
import importlib, json, sys
core, others = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in core:
    importlib.import_module(name)
skipped = {}
for name in others:
    try:
        importlib.import_module(name)
    except Exception as exc:  # a module another engineer has not finished
        skipped[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"streamlit": sorted(m for m in sys.modules if m.split(".")[0] == "streamlit"), "skipped": skipped}))
"""


def test_importing_engine_does_not_load_streamlit() -> None:
    others = sorted({_module_name(p) for p in ENGINE.rglob("*.py") if p.name != "__main__.py"} - set(CORE))
    res = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(CORE), json.dumps(others)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["streamlit"] == [], f"importing engine loaded {result['streamlit']}"
    # Modules that could not be imported were still checked by the source scan above.
    assert not set(result["skipped"]) & set(CORE)
