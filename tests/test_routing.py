"""The routing table: a word that opens a dialogue opens it anywhere, also in the middle of another
walk, where it is no answer to the question asked."""

from __future__ import annotations

from handlers import records, registration, statistics, weekly_report
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)

ME = "oLiaisonZezhou"
# The words of every route that opens a dialogue (登记, 修改资料, 填报, 周报 and 要情, 典型案例).
OPENING_WORDS = sorted(registration.KEYWORDS | registration.DETAILS_KEYWORDS | statistics.KEYWORDS
                       | weekly_report.OPENERS.keys() | records.KEYWORDS)


def test_every_opening_word_typed_mid_walk_opens_its_dialogue_instead_of_answering(jincheng: Campaign) -> None:
    """The liaison changes their details (修改资料) and, asked for their name, types an opening
    word: they see what that word shows when no dialogue is open."""
    assert {"填表", "注册", "活动记录", "我的资料", "典型案例", "周报"} <= set(OPENING_WORDS)
    jincheng.register(ME, "泽州县商务局", name="王小明")
    taken_as_answer = []
    for word in OPENING_WORDS:
        alone = jincheng.say(ME, word)
        jincheng.say(ME, "取消")
        jincheng.say(ME, "修改资料")
        assert "姓名" in jincheng.say(ME, "修改 1")
        if jincheng.say(ME, word) != alone:
            taken_as_answer.append(word)
        jincheng.say(ME, "取消")
    assert taken_as_answer == []


def test_an_opening_word_is_read_as_a_walk_command_is(jincheng: Campaign) -> None:
    """Surrounding spaces and end punctuation do not hide an opening word, in a walk or outside one."""
    jincheng.register(ME, "泽州县商务局")
    opened = jincheng.say(ME, "填报")
    assert jincheng.say(ME, "填报。") == opened
    jincheng.say(ME, "修改资料")
    jincheng.say(ME, "修改 1")
    assert jincheng.say(ME, " 填报！") == opened
