"""Session keys are defined once (dashboard/keys.py) and pages reach the engine only where allowed.

An AST check, no Streamlit run: fast and independent of machine speed.
"""
import ast
from pathlib import Path

from dashboard import keys

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted([*REPO.glob("dashboard/*.py"), *REPO.glob("pages/*.py")])
SESSION_METHODS = {"get", "pop", "setdefault", "__getitem__", "__setitem__", "__contains__"}

# Engine modules a page may import directly: engine.errors only (pages catch InputError to show its
# describe()). Since issue 18 item 5 every other engine call goes through dashboard/ (state.py and the
# page's own state module); never grow this list.
ALLOWED_PAGE_ENGINE_IMPORTS: dict[str, set[str]] = {
    "data.py": {"engine.errors"},
    "fairness.py": set(),
    "forecasts.py": {"engine.errors"},
    "governance.py": {"engine.errors"},
    "overview.py": set(),
    "rollout.py": {"engine.errors"},
    "schedule.py": {"engine.errors"},
    "simulation.py": {"engine.errors"},
    "whatif.py": set(),
}


def _is_session_state(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "session_state"


def literal_session_keys(tree: ast.AST) -> list[int]:
    """Lines where st.session_state is indexed, read, popped or tested with a string literal."""
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_session_state(node.value):
            if isinstance(node.slice, (ast.Constant, ast.JoinedStr)):
                bad.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in SESSION_METHODS and _is_session_state(node.func.value):
            if node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                bad.append(node.lineno)
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) \
                and any(_is_session_state(c) for c in node.comparators):
            if isinstance(node.left, (ast.Constant, ast.JoinedStr)):
                bad.append(node.lineno)
    return bad


def engine_imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "engine":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "engine"}
    return found


def test_the_check_sees_a_literal_key() -> None:
    src = 'import streamlit as st\nst.session_state["x"] = 1\nst.session_state.get("y")\nif "z" in st.session_state: pass\n'
    assert literal_session_keys(ast.parse(src)) == [2, 3, 4]
    assert literal_session_keys(ast.parse("st.session_state[keys.USER_KEY] = 1")) == []


def test_no_module_indexes_session_state_with_a_string_literal() -> None:
    assert MODULES, "no dashboard or page modules found"
    bad = {str(p.relative_to(REPO)): lines for p in MODULES if p.name != "keys.py"
           if (lines := literal_session_keys(ast.parse(p.read_text())))}
    assert bad == {}, f"use a constant from dashboard/keys.py instead of a string literal: {bad}"


def test_key_values_are_unique() -> None:
    values = [v for k, v in vars(keys).items() if k.endswith("_KEY") and isinstance(v, str)]
    assert len(values) == len(set(values))
    assert keys.HOSPITAL_KEY == "hospital_id"  # the browser tests and page tests refer to this string


def test_no_page_is_allowed_more_than_engine_errors() -> None:
    assert all(allowed <= {"engine.errors"} for allowed in ALLOWED_PAGE_ENGINE_IMPORTS.values())


def test_pages_import_only_the_allowed_engine_modules() -> None:
    pages = sorted(REPO.glob("pages/*.py"))
    assert pages
    extra = {p.name: sorted(got - ALLOWED_PAGE_ENGINE_IMPORTS.get(p.name, set()))
             for p in pages if (got := engine_imports(ast.parse(p.read_text()))) - ALLOWED_PAGE_ENGINE_IMPORTS.get(p.name, set())}
    assert extra == {}, f"pages call the engine through dashboard/state.py; new direct imports: {extra}"
