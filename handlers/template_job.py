"""``TEMPLATESENDJOBFINISH``: WeChat says how a template message ended; the reminders ledger keeps it.

https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
(event section): ``MsgID`` is the template message's msgid, ``Status`` is ``success``,
``failed:user block`` or ``failed: system failed`` (and undocumented ``failed:…`` seen in practice).
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.base import Context, DialogueState, Incoming, Outcome


@dataclass(frozen=True)
class TemplateJobFinished:
    """Record WeChat's final status of the template message ``msgid`` (verbatim)."""

    msgid: str
    status: str


def is_template_job_finished(incoming: Incoming, state: DialogueState) -> bool:
    return incoming.kind == "event" and incoming.event == "TEMPLATESENDJOBFINISH"


def record_job(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """No reply (WeChat shows nothing for this event); the status goes to the delivery ledger."""
    msgid = incoming.fields.get("msg_id", "")
    if not msgid:
        return Outcome()
    return Outcome(changes=(TemplateJobFinished(msgid=msgid, status=incoming.fields.get("status", "")),))
