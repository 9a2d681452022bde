"""The layers' seams, checked from the source (docs/architecture.md).

The import rules are read with ``ast`` from the files under src, never by importing them,
so a module that breaks a rule is named even if it would not import. Each test lists
every offender (file:line and what it does), not just the first.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from shared_context_server.config import LimitSettings, QuotaSettings
from shared_context_server.domain.limits import Limits
from shared_context_server.domain.quotas import Quotas

PACKAGE = "shared_context_server"
SRC = Path(__file__).parents[1] / "src" / PACKAGE

# What the domain (pure rules and values) must not depend on.
DOMAIN_MUST_NOT_IMPORT = ("services", "storage", "mcp", "web", "cli", "events", "config", "app")
# The storage modules a service may import: the unit of work and the repositories'
# protocols, never an implementation (storage/sql, the legacy sql_* mixins, tables...).
SERVICE_STORAGE_SEAMS = ("storage.store", "storage.unit_of_work", "storage.repositories")
# The adapters: they reach storage only through app.py (the composition root) and services.
ADAPTERS = ("mcp", "web", "cli")
# The only storage modules that may know which backend they run on.
BACKEND_MODULES = ("storage/sql/sqlite.py", "storage/sql/postgres.py", "storage/engine.py")
# Migration scripts are history, run once per database: their DDL differs per backend
# (FTS5 against tsvector) and an old revision is never rewritten to a newer seam.
BACKEND_SCRIPTS = ("storage/migrations/",)
BACKEND_NAMES = {"sqlite", "postgresql", "postgres", "psycopg", "pysqlite"}


@dataclasses.dataclass(frozen=True)
class Import:
    path: str  # relative to the package, e.g. "services/messages.py"
    line: int
    target: str  # the imported module, relative to the package, e.g. "storage.sql.store"

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {PACKAGE}.{self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    """Whether ``dotted`` (relative to the package) is a module or package in src."""
    base = SRC.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _sources() -> Iterator[Path]:
    yield from sorted(SRC.rglob("*.py"))


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imports(path: Path) -> Iterator[Import]:
    """Every import of the package's own modules in ``path``: top level, inside functions
    and under ``TYPE_CHECKING`` alike; ``from a import b`` names ``a.b`` if that is a
    module, else ``a``."""
    rel = path.relative_to(SRC).as_posix()
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    target = alias.name.removeprefix(PACKAGE).removeprefix(".")
                    yield Import(rel, node.lineno, target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                base = node.module.removeprefix(PACKAGE).removeprefix(".")
            else:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                yield Import(rel, node.lineno, sub if _is_module(sub) else base)


def _under(dotted: str, prefix: str) -> bool:
    return dotted == prefix or dotted.startswith(prefix + ".")


def _layer(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _offenders(found: list[object], rule: str) -> str:
    listed = "\n".join(f"  {item}" for item in found)
    return f"{len(found)} offender(s) of the rule: {rule}\n{listed}"


def test_the_domain_imports_no_outer_layer() -> None:
    found = [
        imp
        for path in _sources()
        if _layer(path) == "domain"
        for imp in _imports(path)
        if any(_under(imp.target, outer) for outer in DOMAIN_MUST_NOT_IMPORT)
    ]
    rule = (
        "domain/ holds pure rules and values: it imports none of "
        + ", ".join(DOMAIN_MUST_NOT_IMPORT)
        + " (settings become domain values in app.py)"
    )
    assert not found, _offenders(list(found), rule)


def test_services_reach_storage_only_through_the_unit_of_work_and_repositories() -> None:
    found = [
        imp
        for path in _sources()
        if _layer(path) == "services"
        for imp in _imports(path)
        if _under(imp.target, "storage")
        and not any(_under(imp.target, seam) for seam in SERVICE_STORAGE_SEAMS)
    ]
    rule = (
        "services import storage only via "
        + ", ".join(
            f"{s}{'.*' if s.endswith('repositories') else ''}" for s in SERVICE_STORAGE_SEAMS
        )
        + " (what else they need belongs in a repository protocol or the domain)"
    )
    assert not found, _offenders(list(found), rule)


def test_adapters_never_import_storage() -> None:
    found = [
        imp
        for path in _sources()
        if _layer(path) in ADAPTERS
        for imp in _imports(path)
        if _under(imp.target, "storage")
    ]
    rule = (
        "the adapters (" + ", ".join(ADAPTERS) + ") never import storage: they call services, "
        "and what they need built comes from app.py, the composition root"
    )
    assert not found, _offenders(list(found), rule)


def _is_dialect_name(node: ast.expr) -> bool:
    """``<anything>.dialect.name``, ``dialect.name`` or ``<url>.get_backend_name()``."""
    if isinstance(node, ast.Attribute) and node.attr == "name":
        owner = node.value
        return (isinstance(owner, ast.Name) and owner.id == "dialect") or (
            isinstance(owner, ast.Attribute) and owner.attr == "dialect"
        )
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get_backend_name"
    )


def _is_backend_name(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in BACKEND_NAMES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_backend_name(e) for e in node.elts)
    return False


def _dialect_branches(path: Path) -> Iterator[str]:
    rel = path.relative_to(SRC).as_posix()
    compared: set[int] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_dialect_name(o) or _is_backend_name(o) for o in operands):
                compared.update(id(o) for o in operands)
                yield f"{rel}:{node.lineno} compares a backend name: {ast.unparse(node)}"
    for node in ast.walk(_tree(path)):
        if (
            isinstance(node, ast.Attribute | ast.Call)
            and id(node) not in compared
            and _is_dialect_name(node)
        ):
            yield f"{rel}:{node.lineno} reads a backend name: {ast.unparse(node)}"


def test_shared_storage_modules_never_branch_on_the_backend() -> None:
    found = []
    for path in _sources():
        rel = path.relative_to(SRC).as_posix()
        if _layer(path) != "storage" or rel in BACKEND_MODULES:
            continue
        if rel.startswith(BACKEND_SCRIPTS):
            continue
        found += list(_dialect_branches(path))
    rule = (
        "a shared storage module never compares (or hands on) a dialect's name: it asks "
        "the Dialect it was given (storage/sql/dialect.py), implemented in "
        + " and ".join(BACKEND_MODULES[:2])
        + "; only those and "
        + BACKEND_MODULES[2]
        + " know the backend"
    )
    assert not found, _offenders(list(found), rule)


@pytest.mark.parametrize(
    ("settings", "value"), [(LimitSettings, Limits), (QuotaSettings, Quotas)], ids=str
)
def test_domain_values_have_the_fields_and_defaults_of_their_settings(
    settings: type[LimitSettings | QuotaSettings], value: type[Limits | Quotas]
) -> None:
    """app.py builds the domain value from its settings field by field: both name the
    same fields with the same defaults."""
    from_settings = {name: info.default for name, info in settings.model_fields.items()}
    of_value = {f.name: f.default for f in dataclasses.fields(value)}
    assert of_value == from_settings
    assert value(**settings().model_dump()) == value()


def test_the_rules_see_what_they_check() -> None:
    """The walk is not vacuous: it finds the modules and imports the rules are about."""
    layers = {_layer(path) for path in _sources()}
    assert {"domain", "services", "storage", "mcp", "web", "cli", "app"} <= layers
    messages = SRC / "services" / "messages.py"
    assert any(imp.target == "storage.store" for imp in _imports(messages))
    assert any(imp.target == "domain.access" for imp in _imports(messages))
    branch = ast.parse('conn.dialect.name == "postgresql"', mode="eval").body
    assert isinstance(branch, ast.Compare)
    assert _is_dialect_name(branch.left)
    assert _is_backend_name(branch.comparators[0])
