"""Campaigns as data: the public surface other modules use.

``load_definition(path)`` reads a campaign file (see ``docs/campaign-format.md``) into a
:class:`CampaignDefinition`; ``check_file(path)`` lists every problem of a file;
``load_into_db(engine, definition)`` stores it idempotently; ``definition_of(campaign)`` gives
back the definition of a stored campaign. The definitions and their reading live in
``bot.campaigns.format``, the file's pydantic models and JSON Schema in ``bot.campaigns.schema``
(with the values they take in ``bot.campaigns.values``), the wording of a file's problems in
``bot.campaigns.problems``, and the storage in ``bot.campaigns.store``; this module only gathers them.
"""

from __future__ import annotations

from bot.campaigns.format import (
    SCHEMA_VERSION,
    CampaignDefinition,
    Contact,
    Covers,
    DeadlineDefinition,
    DeadlineKind,
    DefinitionError,
    Field,
    FieldType,
    FormDefinition,
    FormKind,
    KeyDate,
    LatePolicy,
    MessageTemplate,
    Occurrence,
    Problem,
    Reminder,
    ReminderKind,
    ReminderSchedule,
    Slogans,
    StatItem,
    TableRow,
    UnitEntry,
    check_file,
    load_definition,
    parse_definition,
)
from bot.campaigns.store import (
    CampaignSummary,
    LoadRefused,
    LoadResult,
    Loss,
    definition_of,
    find_campaign,
    list_campaigns,
    load_into_db,
)

__all__ = [
    "SCHEMA_VERSION", "CampaignDefinition", "CampaignSummary", "Contact", "Covers", "DeadlineDefinition",
    "DeadlineKind", "DefinitionError", "Field", "FieldType", "FormDefinition", "FormKind", "KeyDate",
    "LatePolicy", "LoadRefused", "LoadResult", "Loss", "MessageTemplate", "Occurrence", "Problem", "Reminder", "ReminderKind",
    "ReminderSchedule", "Slogans", "StatItem", "TableRow", "UnitEntry", "check_file", "definition_of",
    "find_campaign", "list_campaigns", "load_definition", "load_into_db", "parse_definition",
]
