"""Loading campaigns into the database: idempotent, answer-preserving, and per year.

Runs on SQLite, and on PostgreSQL when it is reachable (the ``engine`` fixture).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from bot.campaigns import LoadRefused, definition_of, find_campaign, list_campaigns, load_definition, load_into_db
from bot.store.engine import session
from bot.store.facts import DatabaseFacts
from handlers.answers import code_of
from tests.fixtures_cli import safetybot
from bot.store.models import Answer, AnswerRevision, Campaign, Deadline, DeadlinePeriod, Submission, Unit

CAMPAIGNS = Path(__file__).parent.parent / "campaigns"
JINCHENG = CAMPAIGNS / "jincheng-commerce-2023.toml"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def edited(tmp_path: Path, source: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of ``source`` with each (old, new) text replaced once."""
    text = source.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / source.name
    path.write_text(text, encoding="utf-8")
    return path


def give_answer(engine: sa.Engine, slug: str, deadline_key: str, period: str, field_key: str, value: str) -> int:
    """Store what a liaison of 城区商务局 answered, as the conversation would; the answer's id."""
    with session(engine) as db:
        campaign = find_campaign(db, slug)
        assert campaign is not None
        unit = db.exec(select(Unit).where(Unit.campaign_id == campaign.id, Unit.name == "城区商务局")).first()
        if unit is None:
            unit = Unit(campaign_id=campaign.id, name="城区商务局", join_code=f"TEST{slug[:4].upper()}{len(slug)}")
            db.add(unit)
            db.flush()
        deadline = db.exec(select(Deadline).where(Deadline.campaign_id == campaign.id, Deadline.key == deadline_key)).one()
        submission = db.exec(select(Submission).where(Submission.unit_id == unit.id, Submission.deadline_id == deadline.id,
                                                      Submission.period == period)).first()
        if submission is None:
            submission = Submission(unit_id=unit.id, deadline_id=deadline.id, period=period)
            db.add(submission)
            db.flush()
        answer = Answer(submission_id=submission.id, field_key=field_key, value=value, updated_by="o-liaison")
        db.add(answer)
        db.flush()
        db.add(AnswerRevision(answer_id=answer.id, old_value=None, new_value=value, changed_by="o-liaison"))
        db.commit()
        assert answer.id is not None
        return answer.id


def count(engine: sa.Engine, table: type) -> int:
    with session(engine) as db:
        return int(db.exec(select(func.count()).select_from(table)).one())


def test_all_five_notices_load_with_their_due_times(engine: sa.Engine) -> None:
    for path in sorted(CAMPAIGNS.glob("*.toml")):
        definition = load_definition(path)
        result = load_into_db(engine, definition)
        assert result.created and result.slug == definition.slug
        with session(engine) as db:
            stored = {(key, period, due) for key, period, due in db.exec(
                select(Deadline.key, DeadlinePeriod.period, DeadlinePeriod.due_at)
                .join(DeadlinePeriod, DeadlinePeriod.deadline_id == Deadline.id)
                .where(Deadline.campaign_id == result.campaign_id))}
        expected = {(d.key, o.period_key, o.due_at) for d in definition.deadlines for o in d.occurrences()}
        assert stored == expected
    assert count(engine, Campaign) == 5


def test_a_stored_campaign_gives_back_its_definition(engine: sa.Engine) -> None:
    load_into_db(engine, load_definition(JINCHENG))
    with session(engine) as db:
        campaign = find_campaign(db, "jincheng-commerce-2023")
        assert campaign is not None
        restored = definition_of(campaign)
    assert restored.form("statistics") == load_definition(JINCHENG).form("statistics")


def test_loading_the_same_file_again_changes_nothing(engine: sa.Engine) -> None:
    first = load_into_db(engine, load_definition(JINCHENG))
    periods = count(engine, DeadlinePeriod)
    again = load_into_db(engine, load_definition(JINCHENG))
    assert (again.created, again.changes, again.campaign_id) == (False, (), first.campaign_id)
    assert count(engine, DeadlinePeriod) == periods == 1 + 1 + 4 + 1 + 1 + 7


def test_reloading_an_edited_file_updates_labels_and_times_and_keeps_answers(engine: sa.Engine, tmp_path: Path) -> None:
    load_into_db(engine, load_definition(JINCHENG))
    answer_id = give_answer(engine, "jincheng-commerce-2023", "statistics", "", "study.lectures", "3")
    weekly_id = give_answer(engine, "jincheng-commerce-2023", "weekly", "2023-06-14", "text", "开展宣讲两场")
    changed = edited(tmp_path, JINCHENG,
                     ('label = "组织开展宣讲活动"', 'label = "组织开展集中宣讲活动"'),
                     ("time = 18:00:00", "time = 17:00:00"))
    result = load_into_db(engine, load_definition(changed))
    assert "form statistics: field study.lectures relabelled '组织开展宣讲活动' -> '组织开展集中宣讲活动'" in result.changes
    assert "deadline weekly 2023-06-14: due 2023-06-14T17:00:00+08:00 instead of 2023-06-14T10:00:00+00:00" in result.changes
    with session(engine) as db:
        assert {a.id: a.value for a in db.exec(select(Answer))} == {answer_id: "3", weekly_id: "开展宣讲两场"}
        campaign = find_campaign(db, "jincheng-commerce-2023")
        assert campaign is not None
        assert definition_of(campaign).form("statistics").field("study.lectures").label == "组织开展集中宣讲活动"
        due = db.exec(select(DeadlinePeriod.due_at).where(DeadlinePeriod.period == "2023-06-14")).one()
    assert due == datetime(2023, 6, 14, 17, tzinfo=SHANGHAI)


def test_removing_a_field_with_answers_is_refused_and_nothing_changes(engine: sa.Engine, tmp_path: Path) -> None:
    load_into_db(engine, load_definition(JINCHENG))
    give_answer(engine, "jincheng-commerce-2023", "statistics", "", "study.articles", "2")
    without = edited(tmp_path, JINCHENG,
                     ('  { key = "articles", type = "count", sep = "；", label = "发表评论文章或心得体会", unit = "篇" },\n', ""),
                     ('title = "报送联络员表"', 'title = "报送联络员登记表"'))
    with pytest.raises(LoadRefused) as refused:
        load_into_db(engine, load_definition(without))
    assert [loss.message for loss in refused.value.losses] == [
        "form statistics field study.articles has 1 answer(s) for deadline statistics but is no longer in the form"
    ]
    with session(engine) as db:
        assert db.exec(select(Deadline.title).where(Deadline.key == "liaison")).one() == "报送联络员表"
    assert count(engine, Answer) == 1


def test_force_removes_the_field_and_its_answers(engine: sa.Engine, tmp_path: Path) -> None:
    load_into_db(engine, load_definition(JINCHENG))
    give_answer(engine, "jincheng-commerce-2023", "statistics", "", "study.articles", "2")
    kept = give_answer(engine, "jincheng-commerce-2023", "statistics", "", "study.lectures", "3")
    without = edited(tmp_path, JINCHENG,
                     ('  { key = "articles", type = "count", sep = "；", label = "发表评论文章或心得体会", unit = "篇" },\n', ""))
    result = load_into_db(engine, load_definition(without), force=True)
    assert any(c.startswith("deleted (--force): form statistics field study.articles") for c in result.changes)
    with session(engine) as db:
        assert [a.id for a in db.exec(select(Answer))] == [kept]
        assert len(db.exec(select(AnswerRevision)).all()) == 1


def test_removing_a_form_and_its_deadline_with_submissions_is_refused(engine: sa.Engine, tmp_path: Path) -> None:
    path = CAMPAIGNS / "yincheng-town-2022.toml"
    load_into_db(engine, load_definition(path))
    give_answer(engine, "yincheng-town-2022", "plan", "", "plan", "media:42")
    text = path.read_text(encoding="utf-8")
    form = text[text.index('[[forms]]\nkey = "plan"'):text.index('[[forms]]\nkey = "weekly"')]
    deadline = text[text.index('[[deadlines]]\nkey = "plan"'):text.index('[[deadlines]]\nkey = "weekly"')]
    without = edited(tmp_path, path, (form, ""), (deadline, ""))
    with pytest.raises(LoadRefused) as refused:
        load_into_db(engine, load_definition(without))
    assert [loss.message for loss in refused.value.losses] == ["deadline plan was removed but has 1 submission(s)"]
    result = load_into_db(engine, load_definition(without), force=True)
    assert "deadline plan removed" in result.changes and "form plan removed" in result.changes
    assert count(engine, Submission) == 0 and count(engine, Answer) == 0


def test_a_weekly_period_with_submissions_cannot_silently_disappear(engine: sa.Engine, tmp_path: Path) -> None:
    path = CAMPAIGNS / "yincheng-town-2022.toml"
    load_into_db(engine, load_definition(path))
    give_answer(engine, "yincheng-town-2022", "weekly", "2022-06-29", "text", "第五周")
    shorter = edited(tmp_path, path, ("until = 2022-06-30", "until = 2022-06-25"))
    with pytest.raises(LoadRefused) as refused:
        load_into_db(engine, load_definition(shorter))
    assert refused.value.losses[0].message == "deadline weekly no longer has period 2022-06-29, which has 1 submission(s)"


def test_next_year_is_a_separate_campaign_with_its_own_wednesdays(engine: sa.Engine) -> None:
    definition = load_definition(CAMPAIGNS / "yincheng-town-2022.toml")
    load_into_db(engine, definition)
    result = load_into_db(engine, definition, year=2023)
    assert result.slug == "yincheng-town-2023" and result.created
    with session(engine) as db:
        weeks = db.exec(select(DeadlinePeriod.period).join(Deadline, DeadlinePeriod.deadline_id == Deadline.id)
                        .where(Deadline.campaign_id == result.campaign_id, Deadline.key == "weekly")
                        .order_by(DeadlinePeriod.period)).all()
    assert weeks == ["2023-06-07", "2023-06-14", "2023-06-21", "2023-06-28"]
    assert count(engine, Campaign) == 2


def test_list_shows_each_campaign_with_its_next_deadline(engine: sa.Engine) -> None:
    load_into_db(engine, load_definition(JINCHENG))
    load_into_db(engine, load_definition(CAMPAIGNS / "chongming-2023.toml"))
    summaries = list_campaigns(engine, now=datetime(2023, 6, 8, tzinfo=SHANGHAI))
    assert [(s.slug, s.next_deadline, s.next_due_at) for s in summaries] == [
        ("chongming-2023", "报送活动总结", datetime(2023, 6, 28, 17, tzinfo=SHANGHAI)),
        ("jincheng-commerce-2023", "报送一周活动开展情况", datetime(2023, 6, 14, 18, tzinfo=SHANGHAI)),
    ]
    after = list_campaigns(engine, now=datetime(2024, 1, 1, tzinfo=SHANGHAI))
    assert [s.next_deadline for s in after] == [None, None]


def test_units_named_in_the_file_get_join_codes_that_survive_a_reload(engine: sa.Engine, tmp_path: Path) -> None:
    with_units = edited(tmp_path, CAMPAIGNS / "chongming-2023.toml", ("[[key_dates]]", (
        '[[units]]\nname = "城桥镇"\ngroup = "乡镇"\n\n[[units]]\nname = "区应急局"\ngroup = "部门"\njoin_code = "QJ7K2M9P"\n\n'
        "[[key_dates]]")))
    load_into_db(engine, load_definition(with_units))
    with session(engine) as db:
        codes = {u.name: u.join_code for u in db.exec(select(Unit))}
    assert codes["区应急局"] == "QJ7K2M9P" and len(codes["城桥镇"]) == 8
    assert load_into_db(engine, load_definition(with_units)).changes == ()
    with session(engine) as db:
        assert {u.name: u.join_code for u in db.exec(select(Unit))} == codes


def test_a_join_code_written_in_lower_case_in_the_file_is_found_as_liaisons_type_it(
        engine: sa.Engine, tmp_path: Path) -> None:
    with_units = edited(tmp_path, CAMPAIGNS / "chongming-2023.toml", ("[[key_dates]]", (
        '[[units]]\nname = "区应急局"\ngroup = "部门"\njoin_code = "qj7k2m9p"\n\n[[key_dates]]')))
    load_into_db(engine, load_definition(with_units))
    with engine.connect() as conn:
        for typed in ("qj7k2m9p", "QJ7K-2M9P", "qj7k 2m9p。"):
            unit = DatabaseFacts(conn).unit_by_join_code(code_of(typed))
            assert unit is not None and unit.name == "区应急局"


def test_cli_load_reload_refuse_and_list(env_file: Path, tmp_path: Path, engine: sa.Engine,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert safetybot(env_file, "campaign", "load", str(JINCHENG)) == 0
    assert capsys.readouterr().out == "jincheng-commerce-2023: loaded\n"
    assert safetybot(env_file, "campaign", "load", str(JINCHENG)) == 0
    assert capsys.readouterr().out == "jincheng-commerce-2023: updated\n  (nothing changed)\n"
    give_answer(engine, "jincheng-commerce-2023", "statistics", "", "other.name", "消防运动会")
    without = edited(tmp_path, JINCHENG, ('  { key = "name", type = "short_text", label = "活动名称" },\n', ""))
    assert safetybot(env_file, "campaign", "load", str(without)) == 1
    err = capsys.readouterr().err
    assert "form statistics field other.name has 1 answer(s)" in err and "--force" in err
    assert safetybot(env_file, "campaign", "load", str(JINCHENG), "--year", "2027") == 0
    capsys.readouterr()
    assert safetybot(env_file, "campaign", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("jincheng-commerce-2023  2023年全市商务系统“安全生产月”活动  (晋城市商务局, 1 units)")
    assert out[0].endswith("no deadline ahead")
    assert out[1].endswith("next: 报送联络员表 by 2027-05-31 23:59")


def test_cli_load_of_a_broken_file_prints_its_problems(env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = Path(__file__).parent / "campaign_examples" / "collects_unknown_form.toml"
    assert safetybot(env_file, "campaign", "load", str(broken)) == 1
    assert "collects form 'statistic', which this file does not define" in capsys.readouterr().err


def test_cli_on_a_database_without_tables_says_to_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / "fresh.env"
    env_file.write_text(
        "WECHAT_TOKEN=safetybottest\nWECHAT_APP_ID=wx0123456789abcdef\nWECHAT_APP_SECRET=test-secret\n"
        f"ADMIN_TOKEN=test-admin-token-0123456789\nDATABASE_URL=sqlite:///{tmp_path / 'fresh.db'}\n",
        encoding="utf-8",
    )
    assert safetybot(env_file, "campaign", "list") == 1
    assert "has `safetybot db upgrade` been run?" in capsys.readouterr().err
