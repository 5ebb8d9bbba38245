"""A local WeChat API that keeps WeChat's rules and records every call.

The fake answers on WeChat's own paths with WeChat's own JSON: HTTP 200 and an ``errcode`` for
every API error, an ``errmsg`` ending in a ``rid`` like the real one (so nothing can match
messages exactly), tokens that are replaced, expire and run out, a 48-hour customer-service
window, category-template field rules, three-day temporary media and menu limits. Where the
documentation leaves a choice, the fake takes the stricter one. Each rule names its source in
``/work/shared/wechat-rules.md``; ``docs/fake-wechat.md`` lists them.

Like WeChat, the fake pushes a ``TEMPLATESENDJOBFINISH`` event to the bot's callback URL after
every template message it accepted (signed, and encrypted in safe mode, by
:class:`simulator.wechat_side.WeChatSide`), once a callback is configured.

Tests and demos drive the WeChat side (users writing, clicking, time passing) through
:class:`FakeWeChat` in Python or the ``/_fake/`` HTTP endpoints, which WeChat does not have.

The modules, each following its WeChat page:

- ``account``: :class:`FakeWeChat`, one account's state and WeChat's rules over it (tokens,
  users and their windows, quotas, templates, media, menu), and the logs it keeps
  (:class:`RecordedCall`, :class:`Push`);
- ``errors``: the global return codes, :class:`WeChatError`, the ``rid`` of every error message;
- ``template_fields``: what each category-template keyword type accepts;
- ``media``: temporary-media upload rules and lifetime;
- ``menus``: the custom-menu checks;
- ``callbacks``: the events pushed to the bot's callback (:class:`Callback`, :class:`EventPush`);
- ``api``: WeChat's API paths over HTTP, answered in WeChat's JSON;
- ``control``: the ``/_fake/`` test and demo controls;
- ``server``: :func:`create_fake_app`, :func:`serve` and :class:`BackgroundServer`.
"""

from simulator.fake_wechat.account import FakeWeChat, Push, RecordedCall
from simulator.fake_wechat.callbacks import Callback, EventPush
from simulator.fake_wechat.errors import WeChatError
from simulator.fake_wechat.server import BackgroundServer, create_fake_app, serve

__all__ = [
    "BackgroundServer",
    "Callback",
    "EventPush",
    "FakeWeChat",
    "Push",
    "RecordedCall",
    "WeChatError",
    "create_fake_app",
    "serve",
]
