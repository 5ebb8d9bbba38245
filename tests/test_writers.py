"""The writers' table the app hands the gateway: every change a handler can return is written."""

from __future__ import annotations

import dataclasses
import inspect
from types import ModuleType

from bot.app import change_writers
from handlers import changes, report_changes
from handlers.changes import Value
from handlers.template_job import TemplateJobFinished


def declared(module: ModuleType) -> set[type]:
    """The dataclasses ``module`` defines (not those it imports)."""
    return {value for value in vars(module).values()
            if inspect.isclass(value) and dataclasses.is_dataclass(value) and value.__module__ == module.__name__}


def test_every_change_type_handlers_can_return_has_a_writer_and_nothing_else_has_one() -> None:
    # Value is one answer inside SaveAnswers and RequestLiaison, not a change of its own.
    returned = (declared(changes) - {Value}) | declared(report_changes) | {TemplateJobFinished}
    assert set(change_writers()) == returned
