"""What the liaisons of a replayed 晋城 June type into the statistics table (附件2).

Shared by the demo's replay (:mod:`simulator.replay`) and the tests' June (tests/fixtures_june.py):

- 城区 submits, with estimates ("约30", "50余人");
- 泽州 submits, numbers written with measure words and in Chinese numerals;
- 高平 submits ("200人次左右", "无");
- 阳城 answers a few fields and never submits (a draft the totals leave out).

What each liaison typed, and the number they meant, is kept as :class:`Typed`, so a test sums what
was entered rather than trusting the bot's own reading of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.campaigns import FieldType, FormDefinition

CHENGQU, ZEZHOU, GAOPING, YANGCHENG = "城区商务局", "泽州县商务局", "高平市商务局", "阳城县商务局"
# Each unit's liaison: OpenID, name, mobile.
LIAISONS = {CHENGQU: ("oLiaisonChengqu", "赵敏", "13800000001"), ZEZHOU: ("oLiaisonZezhou", "王小明", "13800000002"),
            GAOPING: ("oLiaisonGaoping", "李华", "13800000003"), YANGCHENG: ("oLiaisonYangcheng", "陈静", "13800000004")}
SUBMITTED = (CHENGQU, ZEZHOU, GAOPING)
# The draft: 阳城's liaison answers this many item fields, then leaves with 取消.
DRAFT, DRAFT_FIELDS = YANGCHENG, 6
ACTIVITY = {CHENGQU: "安全知识进社区", ZEZHOU: "安全生产知识竞赛", GAOPING: "应急演练观摩"}
# The numbers a unit's liaison types are made from its seed (any unit may be replayed this way).
SEEDS = {CHENGQU: 3, ZEZHOU: 7, GAOPING: 11, YANGCHENG: 2}
DEFAULT_SEED = 5


@dataclass(frozen=True)
class Typed:
    """One answer as a liaison typed it, and what they meant: the number and whether it was an estimate."""

    text: str
    number: int | None
    approximate: bool = False


# Written the ways people write them: with the measure word, in Chinese numerals, estimates.
SPECIAL = {CHENGQU: {"study.lectures_people": Typed("约30", 30, True), "outreach.quiz_people": Typed("50余人", 50, True),
                     "drills.company_drills": Typed("三场", 3)},
           ZEZHOU: {"study.lectures": Typed("12场", 12), "study.articles": Typed("一百二十", 120)},
           GAOPING: {"study.lectures_people": Typed("200人次左右", 200, True), "leaders.pledges": Typed("无", 0)}}


def item_keys(form: FormDefinition) -> list[str]:
    """The statistics table's item answer keys in the walk's order (what :func:`typed` answers)."""
    return [f.answer_key for item in form.items for f in item.fields]


def typed(form: FormDefinition, unit: str) -> list[Typed]:
    """What the unit's liaison types for the table's item fields, in the walk's order."""
    seed, special = SEEDS.get(unit, DEFAULT_SEED), SPECIAL.get(unit, {})
    answers = []
    for position, f in enumerate(f for item in form.items for f in item.fields):
        if f.type is not FieldType.COUNT:
            answers.append(Typed(ACTIVITY.get(unit, "安全宣传"), None))
        else:
            number = seed * (position + 1) % 97
            answers.append(special.get(f.answer_key, Typed(str(number), number)))
    return answers


def answer_lines(form: FormDefinition, answers: list[Typed]) -> list[str]:
    """What the liaison sends for ``answers`` (the first fields of the walk): each item's numbers on
    one line, as a liaison in a hurry does ("3场 约30 12"); a text answer on a line of its own."""
    given = iter(answers)
    lines = []
    for item in form.items:
        line: list[str] = []
        for f, answer in zip(item.fields, given):
            if f.type is not FieldType.COUNT:
                lines += [" ".join(line)] if line else []
                lines.append(answer.text)
                line = []
            else:
                line.append(answer.text)
        lines += [" ".join(line)] if line else []
    return lines
