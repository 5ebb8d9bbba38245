"""WeChat's error answers: the global return codes with their English ``errmsg``, the
:class:`WeChatError` a rule raises, and the ``rid`` every real error message ends with.

Follows WeChat's Global_Return_Code page and the stable_token error table
(``/work/shared/wechat-rules.md`` A1, A2, A6, A7, A9 quote the codes the fake answers).
"""

from __future__ import annotations

import secrets

# Global return codes with WeChat's English messages (Global_Return_Code; stable_token error table).
ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40010: "invalid voice size",
    40011: "invalid video size",
    40012: "invalid thumb size",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40037: "invalid template_id",
    40117: "invalid button media_id size",
    40118: "invalid sub button media_id size",
    40125: "invalid appsecret",
    40164: "invalid ip, not in whitelist",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41005: "media data missing",
    41006: "media_id missing",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    44001: "empty media data",
    44002: "empty post data",
    44003: "empty news data",
    44004: "empty content",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    46003: "menu no exist",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
}


class WeChatError(Exception):
    """An API answer with a non-zero errcode; the HTTP layer turns it into WeChat's JSON."""

    def __init__(self, errcode: int, errmsg: str | None = None):
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg if errmsg is not None else ERRMSG.get(errcode, "fake fault")


def rid() -> str:
    """A request id like the one WeChat appends to every ``errmsg``: ``xxxxxxxx-xxxxxxxx-xxxxxxxx``."""
    return "-".join(secrets.token_hex(4) for _ in range(3))
