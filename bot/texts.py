"""Every user-visible sentence lives in ``messages/`` as a Jinja2 template, found by name.

An office can reword any reply without touching code. Undefined variables are errors, and
:func:`Texts.check` lets start-up fail when a template the code needs is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import jinja2

MESSAGES_DIR = Path(__file__).resolve().parent.parent / "messages"


class Texts:
    """Renders the named templates of one ``messages`` directory."""

    def __init__(self, directory: Path = MESSAGES_DIR):
        self.directory = directory
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(directory)),
            # Templates are read once; checking every file's mtime on each reply cost more than
            # rendering it. A reworded template takes effect when the bot restarts.
            auto_reload=False,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

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
