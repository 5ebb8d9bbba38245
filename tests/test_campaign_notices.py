"""The five notices, encoded: each file matches its notice's tables, labels, units and deadlines.

The expected values below are copied from the notice texts (``shared/seeds``), so a change to a
campaign file that drifts from its notice fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.campaigns import CampaignDefinition, FieldType, load_definition
from bot.texts import Texts

CAMPAIGNS = Path(__file__).parent.parent / "campaigns"

# 附件2 of 晋城 (000), each item's 进展情况 cell as printed.
JINCHENG_ITEMS = [
    "组织开展宣讲活动（ ）场，参与（ ）人次； 发表评论文章或心得体会（ ）篇； 组织开展“安全生产大家谈”“班前会”“以案说法”等活动（ ）场，参与（ ）人次。",
    "参与“人人讲安全，个个会应急”网络知识竞赛（ ）人，答题（ ）人次； 参加线上“逃生演练训练营”活动发布视频（ ）个。",
    "开展企业主要负责人“安全承诺践诺”活动（ ）场，参与（ ）人次； 报道企业主要负责人“五带头”（ ）次； 开展“动火作业风险我知道”宣传活动（ ）场，参与（ ）人次； 对电焊工等危险作业人员开展安全培训（ ）场，参与（ ）人次； 开展“外包外租大排查”活动（ ）场，参与（ ）人次； 开展外包外租典型违法案例专题警示教育（ ）场，参与（ ）人次； 对外包外租项目开展大排查（ ）次。",
    "曝光重大事故隐患和突出问题（ ）个；在本级以上主流媒体公布“一案双罚”典型案例（ ）个，安全生产刑衔接(含危险作业罪)等各类典型案例（ ）个。",
    "企业组织事故应急演练（ ）场，参与（ ）人次，开展从业人员自救互救技能培训（ ）场，参与（ ）人次；农村村庄、城市社区、学校、家庭开展科普知识宣传和情景模拟、实战推演、逃生演练、自救互救等活动（ ）场，参与（ ）人次。",
    "组织开展“安全宣传咨询日”现场活动（ ）场、参与（ ）人次，网络直播（ ）场、（ ）人观看。",
    "活动名称（ ），组织（ ）场/次，参与（ ）人次。",
]
# The 崇明 (004) table of the same national campaign: its own wording, item by item.
CHONGMING_ITEMS = [
    "组织开展宣讲活动(  )场，参与(  )人次；\n发表评论文章或心得体会（  ）篇；\n组织开展“安全生产大家谈”“班前会”“以案说法”等活动(  )场，参与(  )人次。",
    "参与“人人讲安全 个个会应急”网络知识竞赛(  )人，答题(  )人次；\n参加线上“逃生演练训练营”活动发布视频（  ）个。",
    JINCHENG_ITEMS[2],
    "曝光重大事故隐患和突出问题（  ）个；\n在省级以上主流媒体公布“一案双罚”典型案例（  ）个，安全生产行刑衔接（含危险作业罪）等各类典型案例（  ）个。",
    "企业组织事故应急演练(  )场，参与(  )人次，开展从业人员自救互救技能培训(  )场，参与(  )人次；\n农村村庄、城市社区、学校、家庭开展科普知识宣传和情景模拟、实战推演、逃生演练、自救互救等活动(  )场,参与(  )人次。",
    "组织开展“安全宣传咨询日”现场活动(  )场、参与(  )人次，网络直播(  )场、(  )人观看。",
    "活动名称（      ），组织(  )场/次，参与(  )人次。",
]
# 附件1 of 大渡口 (002).
DADUKOU_ITEMS = [
    "理论学习中心组学习（  ）次，参与（  ）人次；\n\n专题学习《生命重于泰山——学习习近平总书记关于安全生产重要论述》电视专题片 □是□否；组织集中学习观看（  ）场，参与（  ）人次；\n\n开展安全生产“大讲堂”“大家谈”“公开课”“微课堂”和在线访谈、基层宣讲(   )场，参与（  ）人次。",
    "组织媒体报道集中攻坚重点任务进展情况、工作成效等（  ）次，刊发新闻报道（   ）篇；\n宣传推广经验做法（  ）个，刊发新闻报道（  ）篇；\n\n企业开展“安全红袖章”“事故隐患大扫除”“争做安全吹哨人”等活动（   ）场，参与（   ）人次。",
    "曝光问题隐患（   ）条，本辖区主流媒体曝光典型案例（   ）个，媒体转发报道（   ）篇；典型案例具体为（   ），在区县政府常务会和安全生产工作例会通报（   ）次；\n\n组织观看典型事故警示教育片（    ）场，参与（   ）人次；组织参观警示教育展览（   ）场，参与（   ）人次；企业员工举报重大隐患和违法违规行为 (   )条次；",
    "开展安全宣传咨询活动（   ）场，参与（   ）人次；\n\n创新开展线上活动（   ）场，参与（   ）人次；\n\n参与网上展览（  ）人次，参与知识竞赛（  ）人次、参与“走进安全体验场馆”（  ）人次，参与直播答题（  ）人次，参与“接力传安全——我为安全生产倡议”（  ）人次。",
    "制作各类安全宣传产品（  ）部，开展灾害避险逃生、自救互救演练（  ）场，参与（  ）人次；\n\n开展“安全行为红黑榜”“我是安全培训师”“安全生产特色工作法征集”等安全文化示范企业创建活动（  ）场，参与（  ）人次；\n\n使用全国安全宣教和应急科普平台 □是 □否",
]


JINCHENG_TITLES = (
    "开展习近平总书记关于安全生产重要论述宣贯活动",
    "着眼于“人人讲安全、个个会应急”，大力推动安全宣传“五进”活动",
    "聚焦专项排查整治行动，开展企业主要负责人“五带头”宣传活动",
    "发挥媒体监督和社会监督作用，开展全员查找身边隐患宣传活动",
    "坚持全民参与，组织开展常态化应急演练活动",
    "充分发挥地域特色，组织开展“安全宣传咨询日”活动",
    "其他特色活动",
)
CHONGMING_TITLES = (
    "开展习近平总书记关于应急管理、安全生产重要论述宣贯活动",
    "着眼于“人人讲安全、个个会应急”，大力推动安全宣传“五进”",
) + JINCHENG_TITLES[2:]
DADUKOU_TITLES = (
    "学习习近平总书记关于安全生产重要论述",
    "“专项整治集中攻坚战”专题宣传活动",
    "“安全生产渝州行”活动",
    "“6·16安全宣传咨询日”活动",
    "推进安全宣传“五进”活动",
)


@dataclass(frozen=True)
class Notice:
    """What one notice prints, to compare its campaign file against."""

    file: str
    slug: str
    issuer: str
    contact: tuple[str, str]
    deadlines: list[tuple[str, str, str, list[str]]]
    statistics_title: str | None = None
    statistics_header: tuple[str, ...] = ()
    statistics_items: list[str] | None = None
    fields_per_item: tuple[int, ...] = ()
    item_titles: tuple[str, ...] = ()
    liaison_labels: tuple[str, ...] = ()


WEEKLY_2023 = ["06-07 18:00", "06-14 18:00", "06-21 18:00", "06-28 18:00"]
MONTH_ENDS = ["06-30 23:59", "07-31 23:59", "08-31 23:59", "09-30 23:59", "10-31 23:59", "11-30 23:59", "12-31 23:59"]
HEADER = ("填报单位（盖章）", "联系人", "电话", "填报日期")

NOTICES = [
    Notice(
        file="jincheng-commerce-2023.toml", slug="jincheng-commerce-2023", issuer="晋城市商务局",
        contact=("牛英华", "2056819"),
        deadlines=[
            ("liaison", "once", "liaison", ["05-31 23:59"]),
            ("plan", "once", "plan", ["05-31 23:59"]),
            ("weekly", "weekly", "weekly", WEEKLY_2023),
            ("summary", "once", "summary", ["07-01 23:59"]),
            ("statistics", "once", "statistics", ["07-01 23:59"]),
            ("typical_cases", "monthly", "activity_record", MONTH_ENDS),
        ],
        statistics_title="晋城市“安全生产月”活动进展情况统计表", statistics_header=HEADER,
        statistics_items=JINCHENG_ITEMS, fields_per_item=(5, 3, 12, 3, 6, 4, 3), item_titles=JINCHENG_TITLES,
        liaison_labels=("单位名称", "姓名", "办公电话", "手机号码", "传真", "微信号", "电子邮箱", "通信地址"),
    ),
    Notice(
        file="luojiang-commerce-2024.toml", slug="luojiang-commerce-2024", issuer="泉州市洛江区商务局",
        contact=("小郑", "22630156"),
        deadlines=[("summary", "once", "summary", ["06-25 23:59"]), ("statistics", "once", "statistics", ["06-25 23:59"])],
        # Not printed in the notice: the closest printed table (2023, 晋城) is reused, as the file says.
        statistics_title="洛江区“安全生产月”活动进展情况统计表", statistics_header=HEADER,
        statistics_items=JINCHENG_ITEMS, fields_per_item=(5, 3, 12, 3, 6, 4, 3), item_titles=JINCHENG_TITLES,
    ),
    Notice(
        file="dadukou-commerce-2021.toml", slug="dadukou-commerce-2021", issuer="重庆市大渡口区商务委员会",
        contact=("秦轲", "68083116"),
        deadlines=[("materials", "once", "materials", ["06-28 23:59"]), ("statistics", "once", "statistics", ["06-28 23:59"])],
        statistics_title="全区商务领域“安全生产月”和“安全生产渝州行”活动进展情况统计表",
        statistics_header=("填报科室", "联系人", "电话", "填报日期"),
        statistics_items=DADUKOU_ITEMS, fields_per_item=(7, 6, 10, 9, 6), item_titles=DADUKOU_TITLES,
    ),
    Notice(
        file="yincheng-town-2022.toml", slug="yincheng-town-2022", issuer="长治市上党区荫城镇人民政府",
        contact=("王芷瑜", "15234537719"),
        deadlines=[
            ("liaison", "once", "liaison", ["05-31 23:59"]),
            ("plan", "once", "plan", ["05-31 23:59"]),
            ("weekly", "weekly", "weekly", ["06-01 18:00", "06-08 18:00", "06-15 18:00", "06-22 18:00", "06-29 18:00"]),
            ("summary", "once", "summary", ["07-04 23:59"]),
        ],
        liaison_labels=("村（单位）名称", "姓名", "职务", "办公电话", "手机号码", "备注"),
    ),
    Notice(
        file="chongming-2023.toml", slug="chongming-2023", issuer="上海市崇明区",
        contact=("金赢", "59610603"),
        deadlines=[("summary", "once", "summary", ["06-28 17:00"]), ("statistics", "once", "statistics", ["06-28 17:00"])],
        statistics_title="上海市崇明区“安全生产月”活动进展情况统计表", statistics_header=HEADER,
        statistics_items=CHONGMING_ITEMS, fields_per_item=(5, 3, 12, 3, 6, 4, 3), item_titles=CHONGMING_TITLES,
    ),
]


def as_printed(text: str) -> str:
    """Notice text without layout: no spaces or line breaks, one kind of bracket and comma."""
    text = re.sub(r"\s+", "", text).replace("(", "（").replace(")", "）").replace(",", "，")
    return text.rstrip("。；")


def definition(notice: Notice) -> CampaignDefinition:
    return load_definition(CAMPAIGNS / notice.file)


@pytest.fixture(params=NOTICES, ids=[n.slug for n in NOTICES])
def notice(request: pytest.FixtureRequest) -> Notice:
    return request.param  # type: ignore[no-any-return]


def test_the_campaign_names_its_issuer_and_contact(notice: Notice) -> None:
    campaign = definition(notice)
    assert (campaign.slug, campaign.issuer) == (notice.slug, notice.issuer)
    assert (campaign.contact.person, campaign.contact.phone or campaign.contact.mobile) == notice.contact


def test_every_deadline_of_the_notice_with_its_time(notice: Notice) -> None:
    found = [(d.key, d.kind.value, d.collects, [o.due_at.strftime("%m-%d %H:%M") for o in d.occurrences()])
             for d in definition(notice).deadlines]
    assert found == notice.deadlines


def test_every_deadline_quotes_the_notice(notice: Notice) -> None:
    assert all(d.quote for d in definition(notice).deadlines)


def test_the_statistics_table_has_the_notices_items_and_fields(notice: Notice) -> None:
    if notice.statistics_items is None:
        assert "statistics" not in {f.key for f in definition(notice).forms}
        return
    table = definition(notice).form("statistics")
    assert table.title == notice.statistics_title
    assert tuple(f.label for f in table.fields) == notice.statistics_header
    assert tuple(len(item.fields) for item in table.items) == notice.fields_per_item
    assert tuple(item.title for item in table.items) == notice.item_titles


def test_each_statistics_item_prints_as_in_the_notice(notice: Notice) -> None:
    texts = Texts()
    items = definition(notice).form("statistics").items if notice.statistics_items else ()
    printed = [texts.render("notice_fields", fields=item.fields) for item in items]
    assert [as_printed(p) for p in printed] == [as_printed(t) for t in notice.statistics_items or ()]


def test_the_liaison_form_has_the_notices_labels(notice: Notice) -> None:
    forms = {f.key: f for f in definition(notice).forms}
    labels = tuple(f.label for f in forms["liaison"].fields) if "liaison" in forms else ()
    assert labels == notice.liaison_labels


def test_counts_use_only_the_units_the_notices_print() -> None:
    units = {f.unit for n in NOTICES for form in definition(n).forms for f in form.answer_fields()
             if f.type is FieldType.COUNT}
    assert units == {"场", "人次", "篇", "个", "次", "部", "人", "条次", "条", "场/次"}


def test_a_clause_shows_a_blank_with_the_words_around_it() -> None:
    item = definition(NOTICES[0]).form("statistics").items[0]
    clause = Texts().render("notice_fields", fields=item.clause("study.lectures_people"))
    assert clause == "组织开展宣讲活动（ ）场，参与（ ）人次"


def test_jincheng_activity_record_table_of_annex_3() -> None:
    record = definition(NOTICES[0]).form("activity_record")
    assert record.annex == "附件3" and record.row_label == "活动内容"
    assert [c.label for c in record.columns] == ["时间", "刊登媒体", "媒体链接", "备注"]
    assert [r.number for r in record.rows] == [1, 2, 3, 4, 5]
    assert record.rows[4].label == "“一案双罚”，以及安全生产行刑衔接（含危险作业罪）等各类典型案例。"
    # "相关活动未在媒体刊登，“媒体刊登”“媒体链接”栏可不填写".
    assert [c.required for c in record.columns] == [True, False, False, False]
    assert record.field("r3.link").type is FieldType.URL


def test_luojiang_says_its_statistics_table_is_an_assumption() -> None:
    assert "does not print it" in definition(NOTICES[1]).form("statistics").assumption


def test_dadukou_keeps_its_ten_slogans_for_broadcasts() -> None:
    slogans = definition(NOTICES[2]).slogans
    assert slogans is not None and slogans.annex == "附件2" and len(slogans.lines) == 10
    assert slogans.lines[1] == "生命至上 安全第一"


def test_the_weekly_report_takes_text_pictures_and_video() -> None:
    for notice in (NOTICES[0], NOTICES[3]):
        weekly = definition(notice).form("weekly")
        assert [f.type for f in weekly.fields] == [FieldType.LONG_TEXT, FieldType.PICTURES, FieldType.VIDEO]
