"""Properties over any text (hypothesis): the answer parser reads or refuses every text of every
field of every campaign without raising, and any run of messages through a walk never raises and
leaves stored exactly what 查看 then shows (issue 18, "Also")."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from hypothesis import given, settings, strategies as st

from bot.campaigns import FieldType, load_definition
from bot.texts import Texts
from handlers.answers import ASKABLE, MAX_COUNT, Accepted, Rejected, parse
from handlers.base import Context
from handlers.dialogue import REVIEW, Walk, describe, react, summary
from handlers.ports import PersonFacts

CAMPAIGNS = [load_definition(path) for path in sorted((Path(__file__).parent.parent / "campaigns").glob("*.toml"))]
FIELDS = [f for definition in CAMPAIGNS for form in definition.forms for f in form.answer_fields() if f.type in ASKABLE]
FORMS = [form for definition in CAMPAIGNS for form in definition.forms
         if any(f.type in ASKABLE for f in form.answer_fields())]
TODAY = date(2023, 6, 20)
# What people type, in pieces: numerals, estimates, measure words, separators, commands, brackets,
# invisible characters, emoji, and numbers too long for any column.
PIECES = ["三", "两三", "十来", "约", "余", "多", "万", "千", "1", "0", "12.5", ",", "、", " ", "　", "\t", "\n",
          "场", "人次", "篇", "-", "~", "到", ".", "5", "十", "百", "一二〇", "取消", "跳过", "修改 3", "修改 999999999",
          "返回", "确认", "是", "否", "查看", "提交", "帮助", "【", "】", "[微笑]", "😀", "\u200b", "9" * 30, "无",
          "6月8日", "2023-06-20", "13812345678", "wang@163.com", "王小明", "https://example.com/a"]
TEXTS_PEOPLE_TYPE = st.one_of(st.text(max_size=40), st.lists(st.sampled_from(PIECES), max_size=6).map("".join))
CTX = Context(texts=Texts(), facts=PersonFacts("liaison", 1, "王小明", True, 1),
              now=datetime(2023, 6, 20, 2, 0, tzinfo=timezone.utc), stored=None)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(FIELDS), text=TEXTS_PEOPLE_TYPE)
def test_any_text_is_read_or_refused_and_a_count_read_is_a_whole_number_in_range(field, text: str) -> None:
    parsed = parse(field, text, TODAY)
    assert isinstance(parsed, (Accepted, Rejected))
    if isinstance(parsed, Accepted) and field.type is FieldType.COUNT:
        assert parsed.number is not None and 0 <= parsed.number <= MAX_COUNT
        # What is stored is what the reply shows: the number's own digits.
        assert parsed.value == str(parsed.number)


@settings(max_examples=150, deadline=None)
@given(form=st.sampled_from(FORMS), messages=st.lists(TEXTS_PEOPLE_TYPE, max_size=14))
def test_any_run_of_messages_in_a_walk_never_raises_and_查看_shows_what_is_stored(form, messages: list[str]) -> None:
    walk = Walk.of(form, {})
    step, pending = walk.fields[0].answer_key, ()
    for text in messages:
        move = react(walk, step, text, pending, CTX, TODAY)
        if move.cancelled:
            break
        for value in move.values:
            f = walk.field(value.field_key)  # every value answers a field of this walk
            if f.type is FieldType.COUNT and value.text is not None:
                assert value.number is not None and 0 <= value.number <= MAX_COUNT
                assert value.text == str(value.number)
        walk = walk.with_values(move.values)
        pending = move.pending
        if move.retry is None:
            step = move.ask or (REVIEW if move.review else step)
    shown = summary(walk, CTX)
    for key, value in walk.answers.items():
        answer = describe(walk.field(key), value)
        assert answer in shown
