"""What WeChat itself does to a callback: build message XML, sign, encrypt, post, read the reply.

Used by tests, ``safetybot chat`` and the benchmark, against Starlette's TestClient or a real
server (both are ``httpx.Client``). Formats follow WeChat's pages on receiving messages and events
and on message encryption (see ``bot/wechat/gateway.py`` for the links); the crypto is wechatpy's.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import httpx
from defusedxml.ElementTree import fromstring as defused_fromstring
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner

ACCOUNT = "gh_5afe7b0751c0"
# WeChat shows at most 2,048 bytes (UTF-8) of a text message: a longer passive reply is cut or not
# shown at all, a longer customer-service text is refused (45002).
TEXT_BYTES = 2048


@dataclass(frozen=True)
class Reply:
    """The bot's answer: HTTP status, the raw body, and the reply's fields (None for ``success``)."""

    status_code: int
    body: str
    fields: dict[str, str] | None

    @property
    def content(self) -> str | None:
        """The text of a text reply, or None."""
        return None if self.fields is None else self.fields.get("Content")

    @property
    def size(self) -> int:
        """The bytes (UTF-8) of a text reply's content; 0 for any other answer."""
        return len((self.content or "").encode())

    @property
    def over_limit(self) -> bool:
        """Whether this is a text reply longer than WeChat shows (:data:`TEXT_BYTES`)."""
        return self.size > TEXT_BYTES


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 over the sorted parts, concatenated."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml(fields: Mapping[str, str | int | float]) -> str:
    parts = []
    for name, value in fields.items():
        body = str(value) if isinstance(value, (int, float)) else _cdata(value)
        parts.append(f"<{name}>{body}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


class WeChatSide:
    """Plays WeChat's server against one callback URL.

    Plaintext mode without ``aes_key``; with it, safe mode, or compatible mode (plaintext fields
    next to ``Encrypt``) when ``compatible`` is true. ``clock`` gives unix seconds.
    """

    def __init__(self, client: httpx.Client, *, token: str, app_id: str, aes_key: str | None = None,
                 path: str = "/wechat", account: str = ACCOUNT, compatible: bool = False,
                 clock: Callable[[], float] = time.time):
        self.client = client
        self.token = token
        self.app_id = app_id
        self.aes_key = aes_key
        self.path = path
        self.account = account
        self.compatible = compatible
        self.clock = clock
        self._crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None

    # --- messages (https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html)

    def text(self, openid: str, content: str, msg_id: int | None = None) -> Reply:
        """A person types ``content``."""
        return self.deliver(self.message_xml(openid, "text", msg_id, Content=content))

    def image(self, openid: str, media_id: str, pic_url: str = "http://mmbiz.qpic.cn/mmbiz_jpg/example/0",
              msg_id: int | None = None) -> Reply:
        """A person sends a picture."""
        return self.deliver(self.message_xml(openid, "image", msg_id, PicUrl=pic_url, MediaId=media_id))

    def voice(self, openid: str, media_id: str, format: str = "amr", recognition: str | None = None,
              msg_id: int | None = None) -> Reply:
        """A person sends a voice note (with WeChat's speech recognition when switched on)."""
        extra = {} if recognition is None else {"Recognition": recognition}
        return self.deliver(self.message_xml(openid, "voice", msg_id, MediaId=media_id, Format=format, **extra))

    def video(self, openid: str, media_id: str, thumb_media_id: str = "thumb0", msg_id: int | None = None) -> Reply:
        """A person sends a video."""
        return self.deliver(self.message_xml(openid, "video", msg_id, MediaId=media_id, ThumbMediaId=thumb_media_id))

    def shortvideo(self, openid: str, media_id: str, thumb_media_id: str = "thumb0",
                   msg_id: int | None = None) -> Reply:
        """A person sends a short video."""
        return self.deliver(
            self.message_xml(openid, "shortvideo", msg_id, MediaId=media_id, ThumbMediaId=thumb_media_id))

    def location(self, openid: str, x: float, y: float, scale: int = 15, label: str = "",
                 msg_id: int | None = None) -> Reply:
        """A person shares a location."""
        return self.deliver(self.message_xml(openid, "location", msg_id, Location_X=x, Location_Y=y,
                                             Scale=scale, Label=label))

    def link(self, openid: str, title: str, description: str, url: str, msg_id: int | None = None) -> Reply:
        """A person shares a link."""
        return self.deliver(self.message_xml(openid, "link", msg_id, Title=title, Description=description, Url=url))

    def event(self, openid: str, event: str, key: str = "", **extra: str | int) -> Reply:
        """An event: subscribe, unsubscribe, CLICK, VIEW, TEMPLATESENDJOBFINISH, …

        (https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html)
        """
        return self.deliver(self.event_xml(openid, event, key, **extra))

    def message_xml(self, openid: str, kind: str, msg_id: int | None = None, **fields: str | int | float) -> str:
        """The plaintext XML WeChat builds for a message; MsgId is a random 64-bit id unless given."""
        msg_id = secrets.randbits(63) if msg_id is None else msg_id
        return _xml({"ToUserName": self.account, "FromUserName": openid, "CreateTime": int(self.clock()),
                     "MsgType": kind, **fields, "MsgId": msg_id})

    def event_xml(self, openid: str, event: str, key: str = "", **extra: str | int) -> str:
        """The plaintext XML WeChat builds for an event (EventKey only where it has one)."""
        fields: dict[str, str | int | float] = {"ToUserName": self.account, "FromUserName": openid,
                                                "CreateTime": int(self.clock()), "MsgType": "event", "Event": event}
        if key or event in ("CLICK", "VIEW", "SCAN"):
            fields["EventKey"] = key
        fields.update(extra)
        return _xml(fields)

    # --- delivery ----------------------------------------------------------------------------

    def deliver(self, plain_xml: str) -> Reply:
        """Post one delivery of ``plain_xml``, signed (and encrypted) afresh as WeChat does per try."""
        return self.post_raw(*self.delivery(plain_xml))

    def delivery(self, plain_xml: str) -> tuple[str, dict[str, str]]:
        """The body and query WeChat would post for ``plain_xml`` now."""
        timestamp, nonce = str(int(self.clock())), str(secrets.randbelow(10**10))
        params = self.signed_params(timestamp, nonce)
        if not self.aes_key:
            return plain_xml, params
        encrypt = self.encrypt(plain_xml)
        params.update(encrypt_type="aes", msg_signature=sign(self.token, timestamp, nonce, encrypt))
        if self.compatible:
            return plain_xml.replace("</xml>", f"<Encrypt>{_cdata(encrypt)}</Encrypt></xml>"), params
        return _xml({"ToUserName": self.account, "Encrypt": encrypt}), params

    def encrypt(self, plain_xml: str) -> str:
        """``plain_xml`` encrypted for this account, as in the ``Encrypt`` element."""
        if not self.aes_key:
            raise ValueError("plaintext mode has no encryption")
        return str(PrpCrypto(_aes_key_bytes(self.aes_key)).encrypt(plain_xml, self.app_id).decode())

    def signed_params(self, timestamp: str, nonce: str) -> dict[str, str]:
        """The query WeChat adds to every callback: ``signature`` over (token, timestamp, nonce)."""
        return {"signature": sign(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}

    def post_raw(self, body: bytes | str, params: Mapping[str, str]) -> Reply:
        """POST ``body`` with ``params`` as they are, and read the answer."""
        body = body.encode("utf-8") if isinstance(body, str) else body
        response = self.client.post(self.path, content=body, params=dict(params),
                                    headers={"Content-Type": "text/xml"})
        return self.read_reply(response)

    def verify(self, echostr: str) -> httpx.Response:
        """The console's URL check: a signed GET with ``echostr``."""
        timestamp, nonce = str(int(self.clock())), str(secrets.randbelow(10**10))
        return self.client.get(self.path, params={**self.signed_params(timestamp, nonce), "echostr": echostr})

    def read_reply(self, response: httpx.Response) -> Reply:
        """Status, body and the reply's fields; an encrypted reply is checked and decrypted."""
        body = response.text
        if response.status_code != 200 or body in ("", "success"):
            return Reply(response.status_code, body, None)
        fields = _fields(body)
        if self._crypto is not None:
            if "Encrypt" not in fields:
                raise AssertionError(f"safe mode, but the reply is not encrypted: {body!r}")
            expected = sign(self.token, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
            if fields["MsgSignature"] != expected:
                raise AssertionError("the reply's MsgSignature is wrong")
            fields = _fields(self._crypto.decrypt_message(
                {"Encrypt": fields["Encrypt"]}, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]))
        return Reply(response.status_code, body, fields)


def _aes_key_bytes(aes_key: str) -> bytes:
    return base64.b64decode(aes_key + "=")


def _fields(xml: str) -> dict[str, str]:
    root = defused_fromstring(xml.encode("utf-8"), forbid_dtd=True)
    return {child.tag: child.text or "" for child in root}
