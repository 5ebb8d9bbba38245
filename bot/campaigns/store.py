"""Loading campaign definitions into the database, idempotently, without losing collected answers.

A campaign is stored once per (file key, year) as ``<key>-<year>``. Loading again updates its
labels, deadlines and due times in place; anything that would drop answers units already gave
(a removed field, form, deadline or period) is refused unless the caller forces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from bot.campaigns.format import CampaignDefinition, DeadlineDefinition, DefinitionError, parse_definition
from bot.store.engine import session
from bot.store.models import Answer, AnswerRevision, Campaign, Deadline, DeadlinePeriod, ReportItem, Submission, Unit, utcnow
from bot.campaigns.units import new_join_code


@dataclass(frozen=True)
class Loss:
    """Collected data a load would drop: answers of one field, or whole submissions."""

    deadline_id: int
    message: str
    field_key: str | None = None
    period: str | None = None
    whole_deadline: bool = False


class LoadRefused(Exception):
    """Loading would drop collected answers; :attr:`losses` says which."""

    def __init__(self, slug: str, losses: Sequence[Loss]):
        self.slug = slug
        self.losses = list(losses)
        super().__init__(f"{slug}: loading would drop collected answers: " + "; ".join(l.message for l in losses))


@dataclass(frozen=True)
class LoadResult:
    """What a load did: the stored campaign, whether it is new, and each change in a sentence."""

    campaign_id: int
    slug: str
    created: bool
    changes: tuple[str, ...]


@dataclass(frozen=True)
class CampaignSummary:
    """A stored campaign as ``campaign list`` shows it."""

    slug: str
    name: str
    issuer: str
    year: int
    timezone: str
    units: int
    next_deadline: str | None
    next_due_at: datetime | None


def definition_of(campaign: Campaign) -> CampaignDefinition:
    """The definition a stored campaign was loaded from, instantiated for its year."""
    return parse_definition(campaign.definition, campaign.slug, year=campaign.year)


def find_campaign(db: Session, slug: str) -> Campaign | None:
    """The stored campaign named ``slug`` (``<key>-<year>``), if loaded."""
    return db.exec(select(Campaign).where(Campaign.slug == slug)).first()


def load_into_db(engine: sa.Engine, definition: CampaignDefinition, year: int | None = None, *,
                 force: bool = False) -> LoadResult:
    """Store ``definition`` (for ``year``, default its own) or bring the stored copy up to date.

    Raises :class:`LoadRefused` when the update would drop collected answers and ``force`` is
    false; with ``force`` those answers are deleted and the load goes ahead.
    """
    if year is not None and year != definition.year:
        definition = definition.for_year(year)
    with session(engine) as db:
        campaign = find_campaign(db, definition.slug)
        created = campaign is None
        if campaign is None:
            campaign = Campaign(slug=definition.slug, name=definition.name, year=definition.year)
            db.add(campaign)
            db.flush()
        assert campaign.id is not None
        changes = [] if created else _form_changes(campaign, definition)
        rows = {d.key: d for d in db.exec(select(Deadline).where(Deadline.campaign_id == campaign.id))}
        losses = _losses(db, rows, definition)
        if losses and not force:
            raise LoadRefused(definition.slug, losses)
        for loss in losses:
            _discard(db, loss)
            changes.append(f"deleted (--force): {loss.message}")
        for deadline in definition.deadlines:
            changes += _store_deadline(db, campaign.id, rows.get(deadline.key), deadline)
        for key, row in rows.items():
            if key not in {d.key for d in definition.deadlines}:
                _delete_deadline(db, row)
                changes.append(f"deadline {key} removed")
        changes += _store_units(db, campaign.id, definition)
        campaign.name, campaign.issuer, campaign.year = definition.name, definition.issuer, definition.year
        campaign.timezone = definition.timezone.key
        campaign.definition = dict(definition.raw)
        campaign.loaded_at = utcnow()
        db.add(campaign)
        db.commit()
        return LoadResult(campaign.id, definition.slug, created, tuple(changes))


def _form_changes(campaign: Campaign, definition: CampaignDefinition) -> list[str]:
    """Fields added, removed or relabelled since the stored copy, for the load report."""
    try:
        old = definition_of(campaign)
    except DefinitionError:
        return ["stored definition was unreadable; replaced"]
    changes = []
    for form in definition.forms:
        old_form = next((f for f in old.forms if f.key == form.key), None)
        if old_form is None:
            changes.append(f"form {form.key} added")
            continue
        before = {f.answer_key: f for f in old_form.answer_fields()}
        after = {f.answer_key: f for f in form.answer_fields()}
        changes += [f"form {form.key}: field {k} added" for k in after if k not in before]
        changes += [f"form {form.key}: field {k} removed" for k in before if k not in after]
        changes += [f"form {form.key}: field {k} relabelled {before[k].label!r} -> {after[k].label!r}"
                    for k in after if k in before and (before[k].label, before[k].unit) != (after[k].label, after[k].unit)]
    changes += [f"form {f.key} removed" for f in old.forms if f.key not in {n.key for n in definition.forms}]
    return changes


def _answer_counts(db: Session, deadline_id: int) -> dict[str, int]:
    rows = db.exec(
        select(Answer.field_key, func.count())
        .join(Submission, col(Answer.submission_id) == col(Submission.id))
        .where(Submission.deadline_id == deadline_id)
        .group_by(Answer.field_key)
    )
    return {key: count for key, count in rows}


def _submission_counts(db: Session, deadline_id: int) -> dict[str, int]:
    rows = db.exec(
        select(Submission.period, func.count()).where(Submission.deadline_id == deadline_id).group_by(Submission.period)
    )
    return {period: count for period, count in rows}


def _losses(db: Session, rows: dict[str, Deadline], definition: CampaignDefinition) -> list[Loss]:
    """What loading ``definition`` over the stored ``rows`` would drop."""
    new = {d.key: d for d in definition.deadlines}
    losses: list[Loss] = []
    for key, row in rows.items():
        assert row.id is not None
        submissions = _submission_counts(db, row.id)
        if not submissions:
            continue
        deadline = new.get(key)
        if deadline is None:
            losses.append(Loss(row.id, f"deadline {key} was removed but has {sum(submissions.values())} "
                                       "submission(s)", whole_deadline=True))
            continue
        periods = {o.period_key for o in deadline.occurrences()}
        losses += [Loss(row.id, f"deadline {key} no longer has period {period or '(once)'}, which has "
                                f"{count} submission(s)", period=period)
                   for period, count in submissions.items() if period not in periods]
        kept = definition.form(deadline.collects).answer_keys() | {
            f.answer_key for f in definition.summed_fields(deadline.collects)}
        moved = f" (it now collects form {deadline.collects} instead of {row.collects})" if row.collects != deadline.collects else ""
        losses += [Loss(row.id, f"form {row.collects} field {field_key} has {count} answer(s) for deadline {key}"
                                f" but is no longer in the form{moved}", field_key=field_key)
                   for field_key, count in sorted(_answer_counts(db, row.id).items()) if field_key not in kept]
    return losses


def _delete_answers(db: Session, answer_ids: Iterable[int | None]) -> None:
    # Optional only because SQLModel types a primary key None until the row is inserted.
    ids = list(answer_ids)
    if ids:
        db.exec(sa.delete(AnswerRevision).where(col(AnswerRevision.answer_id).in_(ids)))
        db.exec(sa.delete(Answer).where(col(Answer.id).in_(ids)))


def _delete_submissions(db: Session, deadline_id: int, period: str | None) -> None:
    query = select(col(Submission.id)).where(Submission.deadline_id == deadline_id)
    if period is not None:
        query = query.where(Submission.period == period)
    submission_ids = list(db.exec(query))
    if submission_ids:
        _delete_answers(db, db.exec(select(col(Answer.id)).where(col(Answer.submission_id).in_(submission_ids))))
        db.exec(sa.delete(ReportItem).where(col(ReportItem.submission_id).in_(submission_ids)))
        db.exec(sa.delete(Submission).where(col(Submission.id).in_(submission_ids)))


def _discard(db: Session, loss: Loss) -> None:
    """Delete what ``loss`` describes (only ever with --force)."""
    if loss.field_key is not None:
        answers = db.exec(
            select(col(Answer.id))
            .join(Submission, col(Answer.submission_id) == col(Submission.id))
            .where(Submission.deadline_id == loss.deadline_id, Answer.field_key == loss.field_key)
        )
        _delete_answers(db, answers)
    else:
        _delete_submissions(db, loss.deadline_id, None if loss.whole_deadline else loss.period)


def _delete_deadline(db: Session, row: Deadline) -> None:
    db.exec(sa.delete(DeadlinePeriod).where(col(DeadlinePeriod.deadline_id) == row.id))
    _delete_submissions(db, row.id or 0, None)
    db.delete(row)


def _store_deadline(db: Session, campaign_id: int, row: Deadline | None, deadline: DeadlineDefinition) -> list[str]:
    """Insert or update one deadline and its periods; the changes, in sentences."""
    changes = []
    values: dict[str, Any] = dict(kind=deadline.kind.value, title=deadline.title, collects=deadline.collects,
                                  rule=deadline.rule())
    if row is None:
        row = Deadline(campaign_id=campaign_id, key=deadline.key, **values)
        changes.append(f"deadline {deadline.key} added")
    else:
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if changed:
            changes.append(f"deadline {deadline.key}: {', '.join(changed)} updated")
        for name, value in values.items():
            setattr(row, name, value)
    db.add(row)
    db.flush()
    assert row.id is not None
    periods = {p.period: p for p in db.exec(select(DeadlinePeriod).where(DeadlinePeriod.deadline_id == row.id))}
    occurrences = deadline.occurrences()
    for occurrence in occurrences:
        period = periods.get(occurrence.period_key)
        if period is None:
            db.add(DeadlinePeriod(deadline_id=row.id, period=occurrence.period_key, due_at=occurrence.due_at))
        elif period.due_at != occurrence.due_at:
            changes.append(f"deadline {deadline.key} {occurrence.period_key or '(once)'}: due "
                           f"{occurrence.due_at.isoformat()} instead of {period.due_at.isoformat()}")
            period.due_at = occurrence.due_at
            db.add(period)
    keys = {o.period_key for o in occurrences}
    for key, period in periods.items():
        if key not in keys:
            db.delete(period)
            changes.append(f"deadline {deadline.key}: period {key or '(once)'} removed")
    return changes


def _store_units(db: Session, campaign_id: int, definition: CampaignDefinition) -> list[str]:
    """Add or update the units the file names; the file's join code wins, else one is generated."""
    changes = []
    for entry in definition.units:
        unit = db.exec(select(Unit).where(Unit.campaign_id == campaign_id, Unit.name == entry.name)).first()
        if unit is None:
            unit = Unit(campaign_id=campaign_id, name=entry.name, join_code=entry.join_code or new_join_code(db))
            changes.append(f"unit {entry.name} added")
        elif entry.join_code and unit.join_code != entry.join_code:
            unit.join_code = entry.join_code
            changes.append(f"unit {entry.name}: join code changed")
        unit.group = entry.group
        db.add(unit)
    return changes


def list_campaigns(engine: sa.Engine, now: datetime | None = None) -> list[CampaignSummary]:
    """Every stored campaign with its next due time after ``now`` (default: the present)."""
    now = now or utcnow()
    with session(engine) as db:
        summaries = []
        for campaign in db.exec(select(Campaign).order_by(col(Campaign.year), col(Campaign.slug))):
            upcoming = db.exec(
                select(Deadline.title, DeadlinePeriod.due_at)
                .join(DeadlinePeriod, col(DeadlinePeriod.deadline_id) == col(Deadline.id))
                .where(Deadline.campaign_id == campaign.id, col(DeadlinePeriod.due_at) >= now)
                .order_by(col(DeadlinePeriod.due_at), col(Deadline.id))
            ).first()
            units = db.exec(select(func.count()).select_from(Unit).where(Unit.campaign_id == campaign.id)).one()
            summaries.append(CampaignSummary(campaign.slug, campaign.name, campaign.issuer, campaign.year,
                                             campaign.timezone, units,
                                             upcoming[0] if upcoming else None, upcoming[1] if upcoming else None))
        return summaries
