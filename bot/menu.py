"""The account's custom menu (WeChat's bottom menu, ``POST /cgi-bin/menu/create``, wechat-rules A9):
three groups of buttons, each a ``click`` whose key is the one the handlers already answer
(``handlers.<module>.MENU_KEY``), so a tap does what typing the word does.

WeChat allows 1–3 top buttons of at most 16 bytes (5 Chinese characters) and 1–5 sub-buttons each;
the fake WeChat checks both when the demo creates this menu.
"""

from __future__ import annotations

from typing import Any

from handlers import backstage, help as help_route, records, registration, staff, statistics, totals, weekly_report


def _click(name: str, key: str) -> dict[str, str]:
    return {"type": "click", "name": name, "key": key}


def _weekly_key(flow: str) -> str:
    return next(key for key, value in weekly_report.MENU_KEYS.items() if value == flow)


# A liaison's work first (where WeChat puts the left button), the office's in the middle, the person's own last.
MENU: dict[str, Any] = {"button": [
    {"name": "填报", "sub_button": [
        _click("填统计表", statistics.MENU_KEY),
        _click("周报", _weekly_key(weekly_report.WEEKLY)),
        _click("要情", _weekly_key(weekly_report.FEATURED)),
        _click("典型案例", records.MENU_KEY),
    ]},
    {"name": "办公", "sub_button": [
        _click("合计", totals.TOTALS_MENU_KEY),
        _click("导出", totals.EXPORT_MENU_KEY),
        _click("待审批", staff.MENU_KEY),
        _click("后台", backstage.MENU_KEY),
    ]},
    {"name": "我的", "sub_button": [
        _click("登记", registration.MENU_KEY),
        _click("我的资料", registration.DETAILS_MENU_KEY),
        _click("帮助", help_route.MENU_KEY),
    ]},
]}
