"""The custom-menu checks: how many buttons, which types, and the byte limits of each field, with
the errcode WeChat answers for a top button and for a sub-button that breaks each.

Follows WeChat's menu-creation page, api_createcustommenu (``/work/shared/wechat-rules.md`` A9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.fake_wechat.errors import WeChatError

KEY_TYPES = frozenset({"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
                       "pic_weixin", "location_select"})
URL_TYPES = frozenset({"view", "miniprogram"})
MEDIA_TYPES = frozenset({"media_id", "view_limited"})
BUTTON_TYPES = KEY_TYPES | URL_TYPES | MEDIA_TYPES | {"article_id", "article_view_limited"}


@dataclass(frozen=True)
class _ButtonCodes:
    """The errcodes of a broken type, name, key, url and media_id, and the name's byte limit."""

    type: int
    name: int
    key: int
    url: int
    media: int
    name_bytes: int


TOP_CODES = _ButtonCodes(type=40017, name=40018, key=40019, url=40020, media=40117, name_bytes=16)
SUB_CODES = _ButtonCodes(type=40024, name=40025, key=40026, url=40027, media=40118, name_bytes=60)


def _byte_len(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else -1


def _checked_leaf(button: Any, codes: _ButtonCodes) -> dict[str, Any]:
    if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
        raise WeChatError(codes.type)
    if not 1 <= _byte_len(button.get("name")) <= codes.name_bytes:
        raise WeChatError(codes.name)
    kind = button["type"]
    if kind in KEY_TYPES and not 1 <= _byte_len(button.get("key")) <= 128:
        raise WeChatError(codes.key)
    if kind in URL_TYPES and not 1 <= _byte_len(button.get("url")) <= 1024:
        raise WeChatError(codes.url)
    if kind in MEDIA_TYPES and _byte_len(button.get("media_id")) < 1:
        raise WeChatError(codes.media)
    return dict(button)


def checked_top_button(button: Any) -> dict[str, Any]:
    """The top button as WeChat stores it (a leaf gets an empty ``sub_button``); a
    :class:`WeChatError` with the code of the first field that breaks its rule."""
    subs = button.get("sub_button") if isinstance(button, dict) else None
    if not subs:
        return {**_checked_leaf(button, TOP_CODES), "sub_button": []}
    if not isinstance(subs, list) or len(subs) > 5:
        raise WeChatError(40023)
    if not 1 <= _byte_len(button.get("name")) <= TOP_CODES.name_bytes:
        raise WeChatError(40018)
    return {"name": button["name"], "sub_button": [_checked_leaf(sub, SUB_CODES) for sub in subs]}
