"""Every user-visible sentence lives in ``messages/`` as a Jinja2 template, found by name.

An office can reword any reply without touching code. Undefined variables are errors, and
:func:`Texts.check` lets start-up fail when a template the code needs is missing.

The templates are the package data of the top-level ``messages`` package, read through
:mod:`importlib.resources`: the same files in a checkout and in an installed wheel.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Iterable

import jinja2

import messages

MESSAGES: Traversable = files(messages)


class Texts:
    """Renders the named templates of one ``messages`` directory (any :class:`Traversable`:
    a folder, or a package's resources)."""

    def __init__(self, directory: Traversable = MESSAGES):
        self.directory = directory
        self._env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._source),
            # Templates are read once; checking every file's mtime on each reply cost more than
            # rendering it. A reworded template takes effect when the bot restarts.
            auto_reload=False,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def _source(self, filename: str) -> str | None:
        # None tells Jinja2 there is no such template (TemplateNotFound).
        resource = self.directory / filename
        return resource.read_text(encoding="utf-8") if resource.is_file() else None

    def render(self, name: str, **context: Any) -> str:
        """The text of template ``messages/<name>.j2`` with ``context`` filled in."""
        return self._env.get_template(f"{name}.j2").render(**context).strip()

    def missing(self, names: Iterable[str]) -> list[str]:
        """The names among ``names`` that have no template file."""
        return sorted(n for n in set(names) if not (self.directory / f"{n}.j2").is_file())

    def check(self, names: Iterable[str]) -> None:
        """Raise if any of ``names`` has no template (called at start-up)."""
        missing = self.missing(names)
        if missing:
            raise LookupError(f"messages/ lacks templates: {', '.join(m + '.j2' for m in missing)}")
