"""The routing table: a word that opens a dialogue opens it anywhere, also in the middle of another
walk, where it is no answer to the question asked. The opening words are the opening routes' own
(``handlers.OPENERS``); no list here repeats them."""

from __future__ import annotations

from handlers import OPENERS, ROUTES
from bot.texts import Texts
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)
from tests.test_announcements import STAFF, Newsroom, newsroom  # noqa: F401  (fixture)

TEXTS = Texts()
ME = "oLiaisonZezhou"
OPENING_WORDS = sorted({word for route in OPENERS for word in route.words})


def test_the_opening_words_are_the_opening_routes_own() -> None:
    assert {"填表", "注册", "活动记录", "我的资料", "典型案例", "周报", "要情", "登记", "修改资料", "填报"} <= set(OPENING_WORDS)
    assert all(route.words for route in OPENERS)


def test_every_word_that_opens_a_dialogue_is_an_opening_word(newsroom: Newsroom) -> None:
    """Each word of every route, typed by a liaison and by staff with no dialogue open: any that
    opens a dialogue belongs to an opening route, so typed mid-walk it opens it too."""
    room = newsroom
    room.register(ME, "泽州县商务局")
    room.staff()
    opened = set()
    for route in ROUTES:
        for word in route.words:
            for person in (ME, STAFF):
                room.say(person, word)
                conversation = room.conversation(person)
                if conversation is not None and conversation.flow:
                    opened.add(word)
                room.say(person, "取消")
    assert opened and opened <= set(OPENING_WORDS)


def test_every_opening_word_typed_mid_walk_opens_its_dialogue_instead_of_answering(jincheng: Campaign) -> None:
    """The liaison is asked a question in each walk (修改资料's name, the statistics table's first
    item, 周报, 典型案例) and types an opening word: they see what that word shows when no dialogue
    is open, and where the word is refused (通知 is the office's) that the walk is still open."""
    jincheng.register(ME, "泽州县商务局", name="王小明")
    walks = {"details": ("修改资料", "修改 1"), "statistics": ("填报",), "weekly": ("周报",), "records": ("典型案例",)}
    taken_as_answer = []
    for flow, steps in walks.items():
        for word in OPENING_WORDS:
            alone = jincheng.say(ME, word)
            jincheng.say(ME, "取消")
            for step in steps:
                jincheng.say(ME, step)
            refused = f"{alone}\n\n{TEXTS.render('dialogue_still_open', flow=flow)}"
            if jincheng.say(ME, word) not in (alone, refused):
                taken_as_answer.append((flow, word))
            jincheng.say(ME, "取消")
    assert taken_as_answer == []


def test_an_opening_word_is_read_as_a_walk_command_is(jincheng: Campaign) -> None:
    """Surrounding spaces, end punctuation and quotes do not hide an opening word, in a walk or outside one."""
    jincheng.register(ME, "泽州县商务局")
    opened = jincheng.say(ME, "填报")
    assert jincheng.say(ME, "填报。") == opened
    jincheng.say(ME, "修改资料")
    jincheng.say(ME, "修改 1")
    assert jincheng.say(ME, " 填报！") == opened
    jincheng.say(ME, "修改资料")
    assert jincheng.say(ME, "“填表”？") == opened
    # tried after the fixes: brackets a notice prints a command in, repeated marks, direction marks
    for typed in ("【填报】", "填报！！", "[统计表]", "\u200e填表\u200f", "《填报统计表》"):
        jincheng.say(ME, "周报")
        assert jincheng.say(ME, typed) == opened, typed


def test_an_opening_word_refused_during_registration_says_the_registration_is_still_open(jincheng: Campaign) -> None:
    """填报 (or 周报, 我的资料, ...) before registering is refused; typed while registering, the
    reply also says the registration is open and how to go on or leave it, and it goes on."""
    still_open = TEXTS.render("dialogue_still_open", flow="registration")
    assert "请先完成登记" in still_open and "取消" in still_open
    for word in ("填报", "周报", "我的资料", "典型案例"):
        alone = jincheng.say(ME, word)
        jincheng.say(ME, "登记")
        assert jincheng.say(ME, word) == f"{alone}\n\n{still_open}"
        jincheng.say(ME, "取消")
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    assert jincheng.say(ME, "填报") == f"{TEXTS.render('fill_needs_registration')}\n\n{still_open}"
    assert "办公电话" in jincheng.say(ME, "王小明")


def test_no_opening_word_typed_at_any_registration_step_is_taken_as_an_answer(jincheng: Campaign) -> None:
    """Every opening word, typed at the name, the mobile and the review of a registration: the
    reply is what the word shows alone (with the still-open note where it is refused) or its own
    dialogue, and the draft never holds the word."""
    taken_as_answer = []
    for word in OPENING_WORDS:
        alone = jincheng.say(ME, word)
        jincheng.say(ME, "取消")
        for steps in ((), ("王小明", "2056819"), ("王小明", "2056819", "13812345678", "跳过", "跳过", "w@163.com", "路1号")):
            jincheng.say(ME, "重新登记")
            jincheng.say(ME, jincheng.codes["泽州县商务局"])
            for text in steps:
                jincheng.say(ME, text)
            refused = f"{alone}\n\n{TEXTS.render('dialogue_still_open', flow='registration')}"
            reply = jincheng.say(ME, word)
            conversation = jincheng.conversation(ME)
            held = conversation.data if conversation is not None else {}
            if reply not in (alone, refused) and not reply.startswith(TEXTS.render(
                    "register_resumed", unit="泽州县商务局", restart="重新登记")) or word in str(held):
                taken_as_answer.append((len(steps), word))
            jincheng.say(ME, "取消")
    assert taken_as_answer == []
