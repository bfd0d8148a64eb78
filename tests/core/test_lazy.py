"""Package names loaded on first use: the same objects as their modules', listed by dir()."""

from __future__ import annotations

import pytest

import alignuniform
import alignuniform.measure


def test_lazy_names_are_the_modules_objects_and_unknown_names_fail():
    from alignuniform.core import losses
    from alignuniform.measure import api

    assert alignuniform.uniform_loss is losses.uniform_loss
    assert alignuniform.measure.measure is api.measure
    assert {"uniform_loss", "Objective"} <= set(dir(alignuniform))
    assert "lazy_exports" not in dir(alignuniform)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = alignuniform.nope


def _top_level_names(path) -> set[str]:
    import ast

    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names |= {a.asname or a.name for a in node.names}
    return names


def test_every_package_says_what_it_holds_and_exports_names_that_exist():
    # read, not imported: the integrations' names would import Lightning and transformers
    import ast
    from pathlib import Path

    root = Path(alignuniform.__file__).parent
    for init in sorted(root.rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        assert len(ast.get_docstring(tree) or "") > 40, f"{init} says what it holds"
        lazy = _lazy_table(tree)
        assigned = next((n.value for n in tree.body if _assigns(n, "__all__")), None)
        # a literal list, or the lazy table's names (`lazy_exports` returns them as __all__)
        exported = sorted(lazy) if isinstance(assigned, ast.Call) else ast.literal_eval(assigned)
        assert exported, f"{init} exports its public names in __all__"
        modules = {p.stem for p in init.parent.glob("*.py")} | {
            p.parent.name for p in init.parent.glob("*/__init__.py")
        }
        assert not modules & set(lazy), f"{init}: a name shadows its module"
        own = _top_level_names(init)
        for name in exported:
            if name not in own:
                module = Path(root.parent, *lazy[name].split(".")).with_suffix(".py")
                if not module.is_file():
                    module = module.with_suffix("") / "__init__.py"
                assert name in _top_level_names(module), f"{init}: {name} not in {module}"


def _assigns(node, name: str) -> bool:
    import ast

    return isinstance(node, ast.Assign) and any(
        getattr(n, "id", "") == name for t in node.targets for n in ast.walk(t)
    )


@pytest.mark.parametrize("package", [alignuniform, alignuniform.measure])
def test_all_is_the_lazy_table_and_star_import_gives_its_names(package):
    import ast
    from pathlib import Path

    table = _lazy_table(ast.parse(Path(package.__file__).read_text()))
    assert table, f"{package.__name__} has a lazy table"
    assert package.__all__ == sorted(table) and "lazy_exports" not in package.__all__
    namespace: dict = {}
    exec(f"from {package.__name__} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(table)
    assert set(table) <= set(dir(package))


def _lazy_table(tree) -> dict[str, str]:
    """The {name: module} dict an ``__init__`` passes to `lazy_exports` (empty if none)."""
    import ast

    return {
        key.value: value.value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "lazy_exports"
        for key, value in zip(call.args[1].keys, call.args[1].values, strict=True)
    }
