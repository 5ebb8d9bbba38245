"""The WeChat callback in safe (AES) and compatible mode, checked against WeChat's own samples."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.store.models import InboundStatus
from bot.texts import Texts
from simulator.wechat_side import WeChatSide, sign
from tests.fixtures_gateway import AES_KEY, StartBot

TEXTS = Texts()

# WeChat's official 消息加解密 sample code (the cryptoDemo download linked from the "消息加解密说明"
# page, https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html).
# Copies of it are in many repositories, e.g. the Python sample as
# https://github.com/charlesXu86/Chatbot_CN/blob/7e1cd5c26b67e8679160d65faa35792b9bcf76f6/Chatbot_Web/impl/weixin/Sample.py
# and the Java test as
# https://github.com/Wyl015/wuyiling/blob/91349987a9773733edfc9e08b2b63d1e8e113037/work-test/src/main/resources/Utils/aes/WXBizMsgCryptTest.java
SAMPLE_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

# Python sample (Sample.py, "测试解密接口"): a compatible-mode text message with its msg_signature.
PY_TOKEN, PY_APP_ID = "spamtest", "wx2c2769f8efd9abc2"
PY_TIMESTAMP, PY_NONCE = "1409735669", "1320562132"
PY_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
PY_FROM_XML = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]>"
    "</FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]>"
    "</Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655"
    "HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWN"
    "lZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp"
    "3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJ"
    "SgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>"
)

# Java sample (WXBizMsgCryptTest.java): "afterAesEncrypt2" is replyMsg2 (a video message) encrypted.
JAVA_TOKEN, JAVA_APP_ID = "pamtest", "wxb11529c136998cb6"
JAVA_TIMESTAMP, JAVA_NONCE = "1409304348", "xxxxxx"
JAVA_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0Ga"
    "UzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHi"
    "DNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTm"
    "FQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGv"
    "DahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBr"
    "opU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb"
)


def _at(timestamp: str):
    moment = datetime.fromtimestamp(int(timestamp), timezone.utc)
    return lambda: moment


def test_wechats_python_sample_message_is_verified_decrypted_and_answered_encrypted(start_bot: StartBot) -> None:
    """The published compatible-mode message (token "spamtest", AppID "wx2c2769f8efd9abc2") with its
    published msg_signature, at its own timestamp; the encrypted reply is checked by the WeChat side."""
    bot = start_bot(aes_key=SAMPLE_AES_KEY, clock=_at(PY_TIMESTAMP), WECHAT_TOKEN=PY_TOKEN, WECHAT_APP_ID=PY_APP_ID)
    params = {**bot.side.signed_params(PY_TIMESTAMP, PY_NONCE), "encrypt_type": "aes", "msg_signature": PY_MSG_SIGNATURE}
    reply = bot.side.post_raw(PY_FROM_XML, params)
    assert reply.status_code == 200
    assert "<Encrypt>" in reply.body and "abcdteT" not in reply.body
    assert reply.content == TEXTS.render("not_understood", text="abcdteT", newcomer=True)
    assert (reply.fields["ToUserName"], reply.fields["FromUserName"]) == ("oyORnuP8q7ou2gfYjqLzSIWZf0rs", "gh_10f6c3c3ac5a")
    [row] = bot.inbound()
    assert (row.openid, row.dedupe_key, row.status) == ("oyORnuP8q7ou2gfYjqLzSIWZf0rs", "msg:6054768590064713728",
                                                        InboundStatus.ANSWERED)


def test_wechats_python_sample_with_a_forged_msg_signature_is_refused(start_bot: StartBot) -> None:
    bot = start_bot(aes_key=SAMPLE_AES_KEY, clock=_at(PY_TIMESTAMP), WECHAT_TOKEN=PY_TOKEN, WECHAT_APP_ID=PY_APP_ID)
    params = {**bot.side.signed_params(PY_TIMESTAMP, PY_NONCE), "encrypt_type": "aes",
              "msg_signature": PY_MSG_SIGNATURE[::-1]}
    assert bot.side.post_raw(PY_FROM_XML, params).status_code == 403
    assert bot.inbound() == []


def test_wechats_java_sample_ciphertext_is_decrypted_and_answered(start_bot: StartBot) -> None:
    """The published ciphertext "afterAesEncrypt2" (token "pamtest", AppID "wxb11529c136998cb6",
    timestamp 1409304348, nonce "xxxxxx"). That test publishes no msg_signature for it, so the
    signature is WeChat's formula over the published values."""
    bot = start_bot(aes_key=SAMPLE_AES_KEY, clock=_at(JAVA_TIMESTAMP), WECHAT_TOKEN=JAVA_TOKEN, WECHAT_APP_ID=JAVA_APP_ID)
    params = {**bot.side.signed_params(JAVA_TIMESTAMP, JAVA_NONCE), "encrypt_type": "aes",
              "msg_signature": sign(JAVA_TOKEN, JAVA_TIMESTAMP, JAVA_NONCE, JAVA_ENCRYPT)}
    body = f"<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[{JAVA_ENCRYPT}]]></Encrypt></xml>"
    reply = bot.side.post_raw(body, params)
    assert reply.content == TEXTS.render("unsupported_kind", kind="video")
    assert reply.fields["ToUserName"] == "gh_7f083739789a"
    [row] = bot.inbound()
    assert row.msg_type == "video"
    assert "eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0" in row.raw


def test_safe_mode_round_trip(start_bot: StartBot) -> None:
    bot = start_bot(aes_key=AES_KEY)
    reply = bot.side.text("oA", "帮助")
    assert reply.content == TEXTS.render("help")
    assert "帮助" not in reply.body


def test_compatible_mode_trusts_only_the_encrypted_part(start_bot: StartBot) -> None:
    bot = start_bot(aes_key=AES_KEY, compatible=True)
    genuine = bot.side.message_xml("oA", "text", Content="帮助")
    body, params = bot.side.delivery(genuine)
    tampered = body.replace("<Content><![CDATA[帮助]]></Content>", "<Content><![CDATA[伪造]]></Content>", 1)
    assert tampered != body
    reply = bot.side.post_raw(tampered, params)
    assert reply.content == TEXTS.render("help")


def test_a_message_for_another_appid_is_refused(start_bot: StartBot) -> None:
    bot = start_bot(aes_key=AES_KEY)
    stranger = WeChatSide(bot.side.client, token=bot.settings.wechat_token, app_id="wx9999999999999999", aes_key=AES_KEY)
    assert stranger.text("oA", "帮助").status_code == 403
    assert bot.inbound() == []


def test_a_plaintext_request_to_a_safe_mode_bot_is_refused(start_bot: StartBot) -> None:
    bot = start_bot(aes_key=AES_KEY)
    plain = WeChatSide(bot.side.client, token=bot.settings.wechat_token, app_id=bot.settings.wechat_app_id)
    assert plain.text("oA", "帮助").status_code == 400
    assert bot.inbound() == []


def test_undecryptable_ciphertext_with_a_valid_msg_signature_is_refused(start_bot: StartBot) -> None:
    bot = start_bot(aes_key=AES_KEY)
    now, nonce, garbage = str(int(datetime.now(timezone.utc).timestamp())), "9", "bm90IGEgY2lwaGVydGV4dA=="
    params = {**bot.side.signed_params(now, nonce), "encrypt_type": "aes",
              "msg_signature": sign(bot.settings.wechat_token, now, nonce, garbage)}
    reply = bot.side.post_raw(f"<xml><Encrypt>{garbage}</Encrypt></xml>", params)
    assert (reply.status_code, reply.body) == (400, "bad request")
    assert bot.inbound() == []


def test_a_retry_in_safe_mode_gets_the_stored_reply_under_a_fresh_nonce(start_bot: StartBot) -> None:
    bot = start_bot(aes_key=AES_KEY)
    xml = bot.side.message_xml("oA", "text", Content="帮助")
    first, retry = bot.side.deliver(xml), bot.side.deliver(xml)
    assert first.content == retry.content == TEXTS.render("help")
    assert first.body != retry.body
    [row] = bot.inbound()
    assert row.deliveries == 2
