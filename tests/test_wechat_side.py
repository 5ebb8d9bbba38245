"""WeChatSide builds what WeChat sends: checked with wechatpy's parser and crypto, not with our gateway."""

from __future__ import annotations

import httpx
import pytest
from wechatpy.crypto import WeChatCrypto
from wechatpy.parser import parse_message

from simulator.wechat_side import WeChatSide
from tests.fixtures_gateway import AES_KEY

TOKEN, APP_ID = "safetybottest", "wx0123456789abcdef"


def _side(aes_key: str | None = None, compatible: bool = False) -> WeChatSide:
    # No request is sent in these tests; the client is only a required argument.
    return WeChatSide(httpx.Client(), token=TOKEN, app_id=APP_ID, aes_key=aes_key, compatible=compatible,
                      clock=lambda: 1_700_000_000)


@pytest.mark.parametrize(
    ("xml", "kind", "checks"),
    [
        (_side().message_xml("oA", "text", 9_007_199_254_740_993, Content="三场 ]]> 活动"), "text",
         {"content": "三场 ]]> 活动", "id": 9_007_199_254_740_993}),
        (_side().message_xml("oA", "image", PicUrl="http://p/1", MediaId="m1"), "image", {"media_id": "m1"}),
        (_side().message_xml("oA", "voice", MediaId="m2", Format="amr", Recognition="你好"), "voice",
         {"recognition": "你好"}),
        (_side().message_xml("oA", "video", MediaId="m3", ThumbMediaId="t3"), "video", {"thumb_media_id": "t3"}),
        (_side().message_xml("oA", "shortvideo", MediaId="m4", ThumbMediaId="t4"), "shortvideo", {"media_id": "m4"}),
        (_side().message_xml("oA", "location", Location_X=23.1, Location_Y=113.3, Scale=15, Label="晋城"), "location",
         {"label": "晋城"}),
        (_side().message_xml("oA", "link", Title="通知", Description="d", Url="https://e.org"), "link",
         {"url": "https://e.org"}),
        (_side().event_xml("oA", "subscribe"), "subscribe", {}),
        (_side().event_xml("oA", "CLICK", "HELP"), "click", {"key": "HELP"}),
        (_side().event_xml("oA", "VIEW", "https://e.org/f"), "view", {"url": "https://e.org/f"}),
        (_side().event_xml("oA", "TEMPLATESENDJOBFINISH", MsgID=7, Status="success"), "templatesendjobfinish",
         {"status": "success"}),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_built_messages_parse_as_wechat_messages(xml: str, kind: str, checks: dict[str, object]) -> None:
    message = parse_message(xml)
    assert (message.event if message.type == "event" else message.type) == kind
    assert (message.source, message.target, message.time) == ("oA", "gh_5afe7b0751c0", 1_700_000_000)
    for attribute, expected in checks.items():
        assert getattr(message, attribute) == expected


def test_a_safe_mode_delivery_is_signed_and_decrypts_with_wechatpy() -> None:
    side = _side(AES_KEY)
    plain = side.message_xml("oA", "text", Content="帮助")
    body, params = side.delivery(plain)
    assert "帮助" not in body and params["encrypt_type"] == "aes"
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    assert crypto.decrypt_message(body, params["msg_signature"], params["timestamp"], params["nonce"]) == plain


def test_a_compatible_mode_delivery_carries_both_parts() -> None:
    side = _side(AES_KEY, compatible=True)
    plain = side.message_xml("oA", "text", Content="帮助")
    body, params = side.delivery(plain)
    assert "<Content><![CDATA[帮助]]></Content>" in body and "<Encrypt>" in body
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    assert crypto.decrypt_message(body, params["msg_signature"], params["timestamp"], params["nonce"]) == plain
