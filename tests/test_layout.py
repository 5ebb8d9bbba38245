"""The house rules of the layout: which part may import which (docs/architecture.md, "Layout").

Read from the source with ``ast`` (imports inside functions count too), so a rule broken anywhere
fails here with the file, the line and the import that broke it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("bot", "handlers", "scheduler", "simulator", "tests", "benchmarks")

# (the part, the project modules it may import, or None for any but the forbidden ones, forbidden ones)
RULES: list[tuple[str, tuple[str, ...] | None, tuple[str, ...]]] = [
    # Handlers are pure: they see the campaign definition, the texts and their own types; storage
    # reaches them only through the read port they define (handlers/ports.py).
    ("handlers", ("handlers", "bot.campaigns.format", "bot.texts"), ()),
    # The product never imports the tools that stand in for WeChat, nor the tests.
    ("bot", None, ("simulator", "tests", "benchmarks")),
    ("scheduler", None, ("simulator", "tests", "benchmarks", "handlers")),
    # Storage sits below the edges and the app: it may know the handlers' change types, not who calls it.
    ("bot.store", None, ("bot.app", "bot.cli", "bot.handling", "bot.wechat", "bot.outbound", "simulator")),
    # The callback protocol is pure: no database, no handling, no outbound client.
    ("bot.wechat.callback", None, ("bot.store", "bot.handling", "bot.outbound", "bot.wechat.client")),
    # The campaign format is data: it reads files, never the database.
    *[(f"bot.campaigns.{module}", None, ("bot.store", "bot.wechat", "bot.outbound", "bot.handling", "handlers"))
      for module in ("format", "schema", "values", "problems")],
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(module: str, part: str) -> bool:
    return module == part or module.startswith(part + ".")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every project import in ``path``, ``from x import y`` giving x.y as well."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from bot import app`` imports the module bot.app.
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PROJECT_PACKAGES]


def _sources(part: str) -> list[Path]:
    base = ROOT.joinpath(*part.split("."))
    if base.with_suffix(".py").is_file():
        return [base.with_suffix(".py")]
    return sorted(base.rglob("*.py"))


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() or path.is_dir()


@pytest.mark.parametrize(("part", "allowed", "forbidden"), RULES, ids=[rule[0] for rule in RULES])
def test_each_part_imports_only_what_the_layout_allows(part: str, allowed: tuple[str, ...] | None,
                                                       forbidden: tuple[str, ...]) -> None:
    sources = _sources(part)
    assert sources, f"{part} has no source files: the rule names a part that moved"
    broken = []
    for path in sources:
        for line, name in _imports(path):
            if not _is_module(name):
                continue  # ``from bot.x import SomeName``: the module bot.x was checked on its own
            if _within(name, _module_name(path)):
                continue
            if any(_within(name, f) for f in forbidden) or (
                    allowed is not None and not any(_within(name, a) for a in allowed)):
                broken.append(f"{path.relative_to(ROOT)}:{line}: imports {name}")
    assert not broken, f"{part} breaks the layout's import rules:\n" + "\n".join(broken)


def test_the_rules_see_imports_inside_functions_too(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text("def run():\n    from simulator.fake_wechat import FakeWeChat\n", encoding="utf-8")
    assert _imports(source) == [(2, "simulator.fake_wechat"), (2, "simulator.fake_wechat.FakeWeChat")]
