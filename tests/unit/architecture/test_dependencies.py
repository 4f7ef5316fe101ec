"""What the code imports is declared in tooling/pyproject.toml, and what is declared is imported."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = ROOT / "tooling" / "pyproject.toml"
#: Declared for what they bring rather than for an import: plugins pytest or mypy load by name,
#: type stubs, and the tools the Makefile runs.
NOT_IMPORTED = {"pytest-timeout", "types-pyyaml", "types-requests", "ruff", "mypy", "import-linter"}
#: Distributions that come with a declared one and are imported through it on purpose.
TRANSITIVE_OK = {"urllib3", "requests", "gevent", "packaging", "click", "botocore"}


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    dev = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["dev"]}
    return runtime, dev


def _imports(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for folder in paths:
        for f in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text(), filename=str(f))):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    local = {
        "gpu_inference",
        "loadtest_testkit",
        "openloop_testkit",
        "aws_testkit",
        "cost_testkit",
        "tools_testkit",
    }
    return {n for n in names if n not in sys.stdlib_module_names and n not in local and not n.startswith("_")}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    index = packages_distributions()
    return {m: {canonicalize_name(d) for d in index.get(m, [])} for m in modules}


def test_every_imported_package_is_declared() -> None:
    runtime, dev = _declared()
    src = _distributions(_imports([ROOT / "tooling" / "src"]))
    missing_src = {m: d for m, d in src.items() if d and not d & (runtime | TRANSITIVE_OK)}
    assert missing_src == {}, "imported by the package but not declared in [project.dependencies]"
    tests = _distributions(_imports([ROOT / "tests", ROOT / "loadtest"]))
    missing_tests = {m: d for m, d in tests.items() if d and not d & (runtime | dev | TRANSITIVE_OK)}
    assert missing_tests == {}, "imported by tests but not declared (dev extra)"


def test_every_declared_package_is_imported() -> None:
    runtime, dev = _declared()
    used: set[str] = set()
    for dists in _distributions(
        _imports([ROOT / "tooling" / "src", ROOT / "tests", ROOT / "loadtest"])
    ).values():
        used |= dists
    unused = (runtime | dev) - used - NOT_IMPORTED
    assert unused == set(), "declared but never imported"


def test_the_check_sees_an_undeclared_import(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import yaml\nimport json\nfrom boto3 import session\n")
    found = _distributions(_imports([tmp_path]))
    assert found == {"yaml": {"pyyaml"}, "boto3": {"boto3"}}
    runtime, _ = _declared()
    assert not {"not-a-package"} & runtime
