"""Texts with nothing in them to read: WeChat's stand-ins for what it does not pass on to an
official account, and blank texts.

A GIF sticker or other content WeChat cannot forward reaches the account as a text such as
``【收到不支持的消息类型，暂无法显示】`` (``[Unsupported Message]`` from an English-language phone);
the built-in emoticons come as their codes (``[微笑]``, ``/::)``). Such a text, or one of only
spaces and invisible characters, is answered before any dialogue sees it: no report item,
answer or code lookup is made of it, and the dialogue in progress stays where it was.
"""

from __future__ import annotations

import re

from handlers.answers import visible
from handlers.base import Context, DialogueState, Incoming, Outcome
from handlers.weekly_report import COLLECTING, FEATURED, WEEKLY

TEMPLATES = ("unreadable_text",)

# The placeholders WeChat puts in a text message's Content for what it does not forward
# (wechatpy#656, WeiXinMPSDK#1087: 【收到不支持的消息类型，暂无法显示】 and
# [收到不支持的消息类型,暂时无法显示]; the English client's [Unsupported Message]; newer content on
# an old client: 当前微信版本不支持展示该内容，请升级至最新版本), matched whole after NFKC, without
# case and brackets: a report that mentions a picture "暂无法显示" is still a report.
PLACEHOLDER = re.compile(
    r"(?:收到)?(?:一条)?(?:暂)?不支持(?:的|此|该)?消息类型[,，]?(?:暂时?无法显示|请.*查看)?"
    r"|unsupported message|(?:当前)?(?:微信)?版本不支持展示该内容[,，]?(?:请升级至最新版本)?")
# What a chat list shows for a sticker, when a person copies or forwards it as text.
STICKER_NAMES = frozenset({"动画表情", "表情", "gif表情", "表情包", "自定义表情", "图片表情", "sticker", "emoji"})
# WeChat's built-in emoticons in text: a bracketed name ([微笑], [OK], [666]) or an old-style code
# (/::D); an English-language phone names content in words ([Animated Sticker], [Voice Call]).
EMOTICON_CODE = re.compile(r"\[(?:666|[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z ]{0,19})\]|/:[!-.0-~]{1,6}")
BRACKETS = "[]【】()（）<>《》 "


def is_placeholder(text: str) -> bool:
    """Whether ``text`` is WeChat's stand-in for a sticker or content it did not forward, or only
    emoticons (codes like [微笑] and /::D, or pictographs like 👍), with nothing else typed."""
    word = visible(text).lower()
    if not word:
        return False
    bare = word.strip(BRACKETS).rstrip("。.!")
    if PLACEHOLDER.fullmatch(bare) or bare in STICKER_NAMES:
        return True
    rest = EMOTICON_CODE.sub("", word)
    return all(c.isspace() or _pictograph(c) for c in rest)


def _pictograph(char: str) -> bool:
    # Emoji (U+1F000 and up) and their joiners, skin tones and variation selectors. Dingbats such
    # as ✓ and × are left out: they answer yes/no questions.
    return ord(char) >= 0x1F000 or char in "\u200d\ufe0e\ufe0f\u20e3"


def is_blank(text: str) -> bool:
    """Whether ``text`` shows as nothing: spaces (full-width ones too), line breaks, zero-width
    and filler characters only."""
    return not visible(text)


def is_unreadable(incoming: Incoming, state: DialogueState) -> bool:
    """A text that is a WeChat placeholder or blank."""
    return incoming.kind == "text" and (is_blank(incoming.text) or is_placeholder(incoming.text))


def explain(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Say that nothing was read or kept, and what to send instead where the person is: in 周报 or
    要情 the kinds of message it takes, in another dialogue to reply to its question, else 帮助.
    The state stays as it was."""
    collecting = state.flow in (WEEKLY, FEATURED) and state.step == COLLECTING
    return Outcome(replies=(ctx.texts.render(
        "unreadable_text", blank=is_blank(incoming.text), report="要情" if state.flow == FEATURED else "周报",
        collecting=collecting, dialogue=bool(state.flow)),))
