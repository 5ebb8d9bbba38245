"""WeChat's callback protocol: signatures, AES (safe mode), XML in and out, the retry key.

No I/O and no state beyond the credentials: :class:`CallbackProtocol` turns a request's query and
body into a verified :class:`Message` (or refuses it), and seals a reply for the way it came.

Protocol: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
(messages), .../Receiving_event_pushes.html (events), .../Passive_user_reply_message.html (replies,
retries, ``success``) and .../Message_encryption_and_decryption_instructions.html (safe mode).
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping
from xml.parsers import expat

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import WeChatSigner

from bot.config import Settings
from handlers.base import Incoming

SUCCESS = "success"

# Message kinds an official account can receive (wechat-rules A8); anything else is logged and
# answered ``success`` without running a handler.
MESSAGE_KINDS = frozenset({"text", "image", "voice", "video", "shortvideo", "location", "link", "event"})
# A person's own message opens the 48-hour customer-service window (wechat-rules A1).
USER_MESSAGE_KINDS = frozenset(MESSAGE_KINDS - {"event"})
# These events open only the short 3-messages-in-1-minute window (wechat-rules A1).
INTERACTION_EVENTS = frozenset({"subscribe", "SCAN", "CLICK", "scancode_push", "scancode_waitmsg"})
KNOWN_EVENTS = frozenset(
    INTERACTION_EVENTS | {"unsubscribe", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH"}
)

# WeChat's XML field names, renamed once at the edge (as wechatpy's messages.py does).
FIELD_NAMES = {
    "MsgId": "msg_id",
    "MsgID": "msg_id",
    "MediaId": "media_id",
    "PicUrl": "pic_url",
    "Format": "format",
    "Recognition": "recognition",
    "ThumbMediaId": "thumb_media_id",
    "Location_X": "location_x",
    "Location_Y": "location_y",
    "Scale": "scale",
    "Label": "label",
    "Title": "title",
    "Description": "description",
    "Url": "url",
    "EventKey": "event_key",
    "Ticket": "ticket",
    "Latitude": "latitude",
    "Longitude": "longitude",
    "Precision": "precision",
    "Status": "status",
}

# WeChat's clock fields (the query's ``timestamp``, the message's ``CreateTime``) are Unix seconds:
# ten ASCII digits until the year 2286. Anything longer, or digits other than 0-9 (``¹²³`` passes
# ``str.isdigit``), is not from WeChat.
SECONDS_DIGITS = re.compile(r"[0-9]{1,10}")
# A MsgId (MsgID in template-message events) is a 64-bit number: at most 20 ASCII digits. A longer
# one would be cut in the stored retry key, and two messages could then pass for one.
MSG_ID_DIGITS = re.compile(r"[0-9]{0,20}")
# An OpenID is 28 characters of URL-safe base64; the bound leaves room, the alphabet leaves none,
# so a sender can carry no markup and no line break into the log or the store.
OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# MsgType and Event are WeChat's identifiers (``shortvideo``, ``TEMPLATESENDJOBFINISH``, ``scancode_push``).
MSG_TYPE = re.compile(r"[A-Za-z_]{1,30}")
EVENT = re.compile(r"[A-Za-z0-9_]{0,50}")

# Characters XML 1.0 forbids anywhere in a document (https://www.w3.org/TR/xml/#charsets).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Refused(Exception):
    """A request the gateway will not handle; ``status`` is the HTTP status, ``reason`` is logged."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Message:
    """One parsed, verified callback: the domain view plus what storage and the reply need."""

    incoming: Incoming
    account: str
    dedupe_key: str
    raw: str
    order: tuple[int, int]  # sent_order(): CreateTime, then MsgId

    @property
    def known(self) -> bool:
        return self.incoming.kind in MESSAGE_KINDS


# --- XML in -------------------------------------------------------------------------------------


def parse_xml(body: bytes | str) -> dict[str, str]:
    """Parse an untrusted WeChat XML document into a flat dict, refusing DTDs and entities.

    Nested elements (``ScanCodeInfo``, ``SendPicsInfo``) become dotted keys such as
    ``ScanCodeInfo.ScanResult``. Raises :class:`Refused` (400) for anything that is not
    ``<xml>…</xml>`` in UTF-8 with each field once.
    """
    if isinstance(body, bytes):
        try:
            # WeChat sends UTF-8 only; expat would also read a declared Latin-1 or a UTF-16 body.
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refused(400, f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    fields = _FlatFields()
    try:
        # A str is parsed as the UTF-8 it was decoded from, whatever its declaration says.
        fields.parser().Parse(body, True)
    except DefusedXmlException as exc:
        raise Refused(400, f"XML with a DTD or entities refused ({type(exc).__name__})") from None
    except (expat.ExpatError, ValueError) as exc:  # ValueError: a declared encoding expat cannot read (gbk)
        raise Refused(400, f"malformed XML: {exc}") from None
    if fields.root != "xml":
        raise Refused(400, f"root element is <{fields.root}>, not <xml>")
    if fields.repeated:
        # Which of two senders or two MsgIds counts would be up to the parser: neither does.
        raise Refused(400, f"field <{sorted(fields.repeated)[0]}> given more than once")
    return fields.values


class _FlatFields:
    """Expat callbacks that collect leaf elements under their dotted path.

    Expat straight, not an element tree: defusedxml's parser is ElementTree's pure-Python one and
    costs more than the rest of a message's handling. The refusals are defusedxml's own: a DTD is
    refused where it starts, before anything in it is read, so no entity can be declared, let
    alone expanded; entity declarations and external references are refused as well.
    """

    def __init__(self) -> None:
        self.root = ""
        self.values: dict[str, str] = {}
        # Fields (children of the root) seen so far, and those seen twice; deeper lists such as
        # SendPicsInfo.PicList.item repeat by design.
        self._fields: set[str] = set()
        self.repeated: set[str] = set()
        # Open elements below the root: [dotted name, has children, text parts].
        self._open: list[list[Any]] = []

    def parser(self) -> Any:
        """A new expat parser calling back here. Not kept: a parser and its handlers' object
        pointing at each other would be a cycle only the garbage collector frees."""
        parser = expat.ParserCreate()
        parser.buffer_text = True
        parser.StartDoctypeDeclHandler = self._refuse_dtd
        parser.EntityDeclHandler = self._refuse_entity
        parser.UnparsedEntityDeclHandler = self._refuse_unparsed_entity
        parser.ExternalEntityRefHandler = self._refuse_external
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        return parser

    def _start(self, tag: str, _attributes: dict[str, str]) -> None:
        if not self.root:
            self.root = tag
            return
        if self._open:
            self._open[-1][1] = True
            tag = self._open[-1][0] + "." + tag
        elif tag in self._fields:
            self.repeated.add(tag)
        else:
            self._fields.add(tag)
        self._open.append([tag, False, []])

    def _end(self, _tag: str) -> None:
        if not self._open:
            return
        name, has_children, parts = self._open.pop()
        if not has_children:
            text = "".join(parts)
            self.values[name] = text if name == "Content" else text.strip()  # what the person typed, spaces included

    def _text(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)

    @staticmethod
    def _refuse_dtd(name: str, sysid: str | None, pubid: str | None, _internal: bool) -> None:
        raise DTDForbidden(name, sysid, pubid)

    @staticmethod
    def _refuse_entity(name: str, _parameter: bool, value: str | None, base: str | None, sysid: str | None,
                       pubid: str | None, notation: str | None) -> None:
        raise EntitiesForbidden(name, value, base, sysid, pubid, notation)

    @staticmethod
    def _refuse_unparsed_entity(name: str, base: str | None, sysid: str | None, pubid: str | None,
                                notation: str | None) -> None:
        raise EntitiesForbidden(name, None, base, sysid, pubid, notation)

    @staticmethod
    def _refuse_external(context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
        # expat's signature wants an int (0 refuses the reference); raising says why.
        raise ExternalReferenceForbidden(context, base, sysid, pubid)


def to_message(fields: Mapping[str, str], raw: str) -> Message:
    """Translate WeChat's field names into an :class:`~handlers.base.Incoming` and its dedupe key."""
    openid = fields.get("FromUserName", "")
    kind = fields.get("MsgType", "")
    create_time = fields.get("CreateTime", "")
    if not openid or not kind or not SECONDS_DIGITS.fullmatch(create_time):
        raise Refused(400, "message lacks FromUserName, MsgType or a CreateTime of at most 10 ASCII digits")
    if not OPENID.fullmatch(openid):
        raise Refused(400, "FromUserName is not an OpenID (at most 64 letters, digits, - and _)")
    if not MSG_TYPE.fullmatch(kind):
        raise Refused(400, "MsgType is not at most 30 letters and _")
    event = fields.get("Event", "") if kind == "event" else ""
    if not EVENT.fullmatch(event):
        raise Refused(400, "Event is not at most 50 letters, digits and _")
    for name in ("MsgId", "MsgID"):
        if not MSG_ID_DIGITS.fullmatch(fields.get(name, "")):
            raise Refused(400, f"{name} is not at most 20 ASCII digits")
    incoming = Incoming(
        openid=openid,
        kind=kind,
        created_at=datetime.fromtimestamp(int(create_time), timezone.utc),
        event=event,
        text=fields.get("Content", "") if kind == "text" else fields.get("EventKey", ""),
        fields={FIELD_NAMES.get(name, name): value for name, value in fields.items()},
    )
    return Message(incoming=incoming, account=fields.get("ToUserName", ""), dedupe_key=dedupe_key(fields), raw=raw,
                   order=sent_order(fields))


def sent_order(fields: Mapping[str, str]) -> tuple[int, int]:
    """Where a message stands in its sender's order, from its fields as WeChat names them:
    CreateTime (seconds), then MsgId (messages of one second; events have none and count as 0).
    A field that is not WeChat's digits counts as 0 (a row stored before they were checked)."""
    created = fields.get("CreateTime", "")
    msg_id = fields.get("MsgId") or fields.get("MsgID") or ""
    return (int(created) if SECONDS_DIGITS.fullmatch(created) else 0,
            int(msg_id) if msg_id and MSG_ID_DIGITS.fullmatch(msg_id) else 0)


def dedupe_key(fields: Mapping[str, str]) -> str:
    """The retry key (with the sender): MsgId for messages, CreateTime+Event+EventKey for events.

    MsgIds collide across users (wechat-rules A5), hence the sender is part of the stored key.
    Events carry no MsgId; WeChat documents FromUserName + CreateTime, and Event/EventKey tell
    apart two events of the same second (a location report and a menu click). A
    TEMPLATESENDJOBFINISH carries its template message's MsgID: two of one second to one person
    are two messages, not a retry.
    """
    create_time = fields.get("CreateTime", "")
    if fields.get("MsgType") == "event":
        key = f"event:{create_time}:{fields.get('Event', '')}:{fields.get('EventKey', '')}"
        if fields.get("MsgID"):
            key += f":{fields['MsgID']}"
    else:
        msg_id = fields.get("MsgId") or fields.get("MsgID")
        key = f"msg:{msg_id}" if msg_id else f"msg:{create_time}:{fields.get('MsgType', '')}"
    return key[:200]


# --- XML out ------------------------------------------------------------------------------------


def cdata(text: str) -> str:
    """``text`` as CDATA that stays well-formed whatever it holds.

    ``]]>`` would end the section, so it is split across two sections; characters XML 1.0
    forbids are dropped because no escape can carry them.
    """
    text = _NOT_XML_CHAR.sub("", text)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply_xml(to_openid: str, account: str, content: str, create_time: int) -> str:
    """A passive text reply (https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html)."""
    return (
        f"<xml><ToUserName>{cdata(to_openid)}</ToUserName><FromUserName>{cdata(account)}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(content)}</Content></xml>"
    )


# --- signatures and safe mode -------------------------------------------------------------------


class CallbackProtocol:
    """Checks and opens callbacks for one account, and seals replies: plaintext or safe mode
    (AES, when ``WECHAT_ENCODING_AES_KEY`` is set). ``clock`` gives aware now (replay check)."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]):
        self.settings = settings
        self.clock = clock
        self._crypto: WeChatCrypto | None = None
        if settings.safe_mode:
            self._crypto = WeChatCrypto(settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id)

    def check_signature(self, query: Mapping[str, str]) -> None:
        """Raise :class:`Refused` (403) unless ``signature`` signs token, timestamp and nonce and the
        timestamp is within ``TIMESTAMP_TOLERANCE_SECONDS`` of now (a replayed request)."""
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not _same(query.get("signature", ""), _sign(self.settings.wechat_token, timestamp, nonce)):
            raise Refused(403, "bad signature")
        if not SECONDS_DIGITS.fullmatch(timestamp):
            raise Refused(403, "timestamp is not at most 10 ASCII digits")
        skew = abs(self.clock().timestamp() - int(timestamp))
        if skew > self.settings.timestamp_tolerance_seconds:
            raise Refused(403, f"timestamp {timestamp} is {skew:.0f}s away from now (replay?)")

    def open(self, query: Mapping[str, str], body: bytes) -> Message:
        """The verified, decrypted and parsed message of a POSTed callback; :class:`Refused` (400,
        403) for anything else."""
        self.check_signature(query)
        encrypted = query.get("encrypt_type", "raw").lower() == "aes"
        if encrypted and self._crypto is None:
            raise Refused(400, "encrypt_type=aes but no WECHAT_ENCODING_AES_KEY is configured (plaintext mode)")
        if not encrypted and self._crypto is not None:
            raise Refused(400, "plaintext request, but safe mode is configured (WECHAT_ENCODING_AES_KEY is set)")
        envelope = parse_xml(body)
        if self._crypto is None:
            return to_message(envelope, body.decode("utf-8"))  # parse_xml refused any other encoding
        # Compatible mode also sends the plaintext fields; only the signed, encrypted part counts.
        plain = self._decrypt(self._crypto, envelope, query)
        return to_message(parse_xml(plain.encode("utf-8")), plain)

    def _decrypt(self, crypto: WeChatCrypto, envelope: Mapping[str, str], query: Mapping[str, str]) -> str:
        if not envelope.get("Encrypt"):
            raise Refused(400, "safe-mode message without <Encrypt>")
        try:
            # A dict, not XML: wechatpy would otherwise run xmltodict on untrusted input.
            return str(crypto.decrypt_message(
                {"Encrypt": envelope["Encrypt"]}, query.get("msg_signature", ""),
                query.get("timestamp", ""), query.get("nonce", ""),
            ))
        except InvalidSignatureException:
            raise Refused(403, "bad msg_signature") from None
        except InvalidAppIdException:
            raise Refused(403, "decrypted message is for another AppID") from None
        except Exception as exc:  # wechatpy does not validate padding or lengths: any garbage lands here
            raise Refused(400, f"cannot decrypt <Encrypt> ({type(exc).__name__})") from None

    def seal(self, reply_xml: str) -> str:
        """The body that carries ``reply_xml``: itself, or in safe mode its encrypted envelope."""
        if self._crypto is None:
            return reply_xml
        # A fresh nonce each time, also when a stored reply is sent again for a retry.
        return str(self._crypto.encrypt_message(reply_xml, secrets.token_hex(8), str(int(self.clock().timestamp()))))


def _sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii"))
