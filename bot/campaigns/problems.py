"""Problems of a campaign file: each of pydantic's errors as a place, a line and a sentence of ours.

A :class:`Problem` says ``forms[statistics].items[study].fields[visits].type: unknown field type
'cnt'; use one of …`` at line 29. Its place is the error's location in the file's own words (a
list entry by its ``key``, else by its number from 1); its line is found by searching the file's
text for that place, setting by setting; its sentence is ours, either carried by the validator's
:class:`~bot.campaigns.values.Wrong` or worded here from the kind of pydantic error and the
setting's declared type.
"""

from __future__ import annotations

import enum
import re
import types
from dataclasses import dataclass, replace
from typing import Annotated, Any, Mapping, Sequence, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError

from bot.campaigns.schema import CampaignFile, Table
from bot.campaigns.values import CHOICE_NAMES, PATTERN_SENTENCES, Read, Wrong


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a campaign file: where (a path and, when found, a line) and what."""

    where: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        at = f"line {self.line}: " if self.line else ""
        return f"{at}{self.where}: {self.message}" if self.where else f"{at}{self.message}"


class DefinitionError(Exception):
    """A campaign file has problems; :attr:`problems` lists all of them."""

    def __init__(self, source: str, problems: Sequence[Problem]):
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))
        self.source = source
        self.problems = list(problems)


@dataclass(frozen=True)
class Place:
    """Where a value sits: a readable path, and regexes that find its line in the file text."""

    label: str = ""
    patterns: tuple[str, ...] = ()

    def key(self, name: str) -> "Place":
        label = f"{self.label}.{name}" if self.label else name
        # Matches `name =`, `[name]`, `[[x.name]]` and `{ name =` alike.
        return Place(label, self.patterns + (rf"(^|[\s\[.{{,]){re.escape(name)}\s*[=\].]",))

    def element(self, index: int, key: object) -> "Place":
        if isinstance(key, str) and key:
            return Place(f"{self.label}[{key}]", self.patterns + (rf'\bkey\s*=\s*"{re.escape(key)}"',))
        return Place(f"{self.label}[{index + 1}]", self.patterns)

    def line(self, text: str) -> int | None:
        """The line of this place in ``text``: each pattern is searched after the previous one's
        match, and the last one found gives the line, so a missing setting points at its table.
        A search, not a parse: an entry whose key is given twice is found at the first."""
        if not text or not self.patterns:
            return None
        position, found = 0, False
        for pattern in self.patterns:
            match = re.compile(pattern, re.M).search(text, position)
            if match is None:
                break
            position, found = match.start() + len(match.group(1) if match.groups() else ""), True
        return text.count("\n", 0, position) + 1 if found else None


def problems_of(error: ValidationError, data: Mapping[str, Any], text: str = "") -> list[Problem]:
    """Each error of validating ``data`` (parsed from ``text``) against :class:`CampaignFile`."""
    found = []
    for detail in error.errors(include_url=False):
        place, message = _worded(detail, _Spot.of(tuple(detail["loc"]), data))
        found.append(Problem(place.label, message, place.line(text)))
    return found


@dataclass(frozen=True)
class _Spot:
    """What a pydantic error location points at: a place in the file and what is declared there."""

    place: Place  # the value's own place
    table: Place  # the place of the table (or list) holding it
    expected: Any  # the type declared there, Annotated and None stripped
    metadata: tuple[Any, ...]  # its Annotated metadata and constraints
    model: type[Table] | None  # the model whose setting it is
    name: str  # the setting's name ("" for a list entry)
    kinds: tuple[type[Table], ...]  # the kinds of table its model is one of, if it is one

    @classmethod
    def of(cls, loc: tuple[int | str, ...], data: Mapping[str, Any]) -> "_Spot":
        """Walk ``loc`` from the file's root model, reading the raw ``data`` alongside for the
        keys that name list entries."""
        spot, raw = cls(Place(), Place(), CampaignFile, (), None, "", ()), data
        for step in loc:
            spot, raw = spot._step(step, raw)
        return spot

    def _step(self, step: int | str, raw: Any) -> tuple["_Spot", Any]:
        kinds, args = _kinds(self.expected), get_args(self.expected)
        if kinds:  # a tagged union's location names the kind it chose ("weekly"), not a setting
            chosen = next(kind for kind in kinds if _tag(kind) == step)
            return replace(self, expected=chosen, metadata=(), kinds=kinds), raw
        if _is_model(self.expected):  # a setting of a table
            model: type[Table] = self.expected
            field = next((f for n, f in model.model_fields.items() if (f.alias or n) == step), None)
            declared, metadata = _declared(field.annotation) if field else (None, ())
            metadata += tuple(field.metadata) if field else ()
            return _Spot(self.place.key(str(step)), self.place, declared, metadata, model, str(step), self.kinds), \
                _get(raw, step)
        if get_origin(self.expected) is list:
            declared, metadata = _declared(args[0])
            entry = _get(raw, step)
            if _holds_tables(declared):  # an entry, named by its key
                place = self.place.element(int(step), _get(entry, "key"))
                return _Spot(place, self.place, declared, metadata, None, "", ()), entry
            # A value of a list of values is shown at the list.
            return replace(self, expected=declared, metadata=metadata), entry
        if step == "[key]":  # the name of a named entry ([message_templates.<kind>])
            declared, metadata = _declared(args[0])
            return replace(self, expected=declared, metadata=metadata), raw
        declared, metadata = _declared(args[1])  # a named entry ([reminder_schedules.<name>])
        return _Spot(self.place.key(str(step)), self.place, declared, metadata, None, str(step), ()), _get(raw, step)


def _get(raw: Any, step: int | str) -> Any:
    if isinstance(raw, dict) and isinstance(step, str):
        return raw.get(step)
    if isinstance(raw, list) and isinstance(step, int) and step < len(raw):
        return raw[step]
    return None


def _is_model(expected: Any) -> bool:
    return isinstance(expected, type) and issubclass(expected, BaseModel)


def _declared(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """The type a setting holds and its metadata, without ``Annotated`` and without the None
    that marks a setting with no value (TOML has no null)."""
    metadata: tuple[Any, ...] = ()
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata += tuple(extra)
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _declared(members[0])[0], metadata + _declared(members[0])[1]
    return annotation, metadata


def _holds_tables(expected: Any) -> bool:
    return bool(_kinds(expected)) or _is_model(expected)


def _kinds(expected: Any) -> tuple[type[Table], ...]:
    """The models of a tagged union (a form is a statistics, table or record form), else ()."""
    if get_origin(expected) in (Union, types.UnionType):
        members = get_args(expected)
        if all(isinstance(m, type) and issubclass(m, Table) and "kind" in m.model_fields for m in members):
            return members
    return ()


def _tag(model: type[Table]) -> str:
    return str(_kind_of(model).value)


def _kind_of(model: type[Table]) -> enum.Enum:
    kind: enum.Enum = get_args(model.model_fields["kind"].annotation)[0]
    return kind


def _settings_of(model: type[Table]) -> list[str]:
    """A table's settings, as the file names them."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _settings(spot: _Spot) -> list[str]:
    """The settings the table at ``spot`` may have; for one kind of table, those of every kind
    (in the order of the kinds), since its ``kind`` may be the mistake."""
    names: list[str] = []
    for model in spot.kinds or ((spot.model,) if spot.model else ()):
        names += [name for name in _settings_of(model) if name not in names]
    return names


def _choices(kind: type[enum.Enum]) -> str:
    return ", ".join(str(m.value) for m in kind)


def _worded(error: Mapping[str, Any], spot: _Spot) -> tuple[Place, str]:
    """Where ``error`` is shown and what it says."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error" and isinstance(ctx.get("error"), Wrong):
        wrong: Wrong = ctx["error"]
        if wrong.at is None:
            return spot.place, wrong.message
        return (spot.table if wrong.at == "" else spot.table.key(wrong.at)), wrong.message
    if kind == "missing":
        return _missing(spot)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        choices = type(_kind_of(_kinds(spot.expected)[0]))
        if kind == "union_tag_not_found":
            return spot.place, f"kind is missing; use one of {_choices(choices)}"
        given = error["input"].get("kind")
        return spot.place.key("kind"), f"unknown {CHOICE_NAMES[choices]} {given!r}; use one of {_choices(choices)}"
    return spot.place, _wrong_value(kind, error["input"], ctx, spot) or str(error["msg"])


def _missing(spot: _Spot) -> tuple[Place, str]:
    """A setting left out: shown at its table, unless it is a table or list of its own."""
    expected, name = spot.expected, spot.name
    read = next((m for m in spot.metadata if isinstance(m, Read)), None)
    if read is not None:
        return spot.place, read.sentence(None)
    if spot.model is CampaignFile and (_is_model(expected) or get_origin(expected) is dict):
        return spot.place, f"the [{name}] section is missing"
    if get_origin(expected) is list and _holds_tables(get_args(expected)[0]):
        return spot.place, f"{name} is missing"
    if isinstance(expected, type) and issubclass(expected, enum.Enum):
        return spot.table, f"{name} is missing; use one of {_choices(expected)}"
    return spot.table, f"{name} is missing"


def _wrong_value(kind: str, raw: Any, ctx: Mapping[str, Any], spot: _Spot) -> str | None:
    """The sentence for a value pydantic refused, by the kind of error; None for one we do not word."""
    expected, name = spot.expected, spot.name
    if kind == "extra_forbidden":
        elsewhere = any(name in _settings_of(model) for model in spot.kinds)
        misplaced = spot.model.misplaced(name) if spot.model is not None and elsewhere else None
        return misplaced or f"unknown setting {name!r}; expected one of {', '.join(_settings(spot))}"
    if kind == "enum":
        return f"unknown {CHOICE_NAMES[expected]} {raw!r}; use one of {_choices(expected)}"
    if kind == "literal_error":
        return f"unknown value {raw!r}; use one of {', '.join(map(str, get_args(expected)))}"
    if kind == "string_type":
        return f"must be text in quotes, not {raw!r}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is {len(raw.strip())} characters long; at most {ctx['max_length']} fit"
    if kind == "string_pattern_mismatch":
        return PATTERN_SENTENCES[ctx["pattern"]].format(value=raw.strip())
    if kind in ("int_type", "greater_than_equal", "less_than_equal"):
        low = next(m.ge for m in spot.metadata if isinstance(m, annotated_types.Ge))
        high = next(m.le for m in spot.metadata if isinstance(m, annotated_types.Le))
        return f"must be a whole number from {low} to {high}, not {raw!r}"
    if kind == "bool_type":
        return f"must be true or false, not {raw!r}"
    if kind == "list_type":
        return "must be a list"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if spot.model is CampaignFile:
            return f"must be a [{name}] section"
        if not name:
            return "must be a table of settings"
        if _is_model(expected):
            *settings, last = _settings_of(expected)
            return f"must be a table with {', '.join(settings)} and {last}"
        return "must be a table of template field = value name"  # the one table of values: a template's data
    return None
