"""Template field values are made to fit their WeChat field type before sending, or refused."""

from __future__ import annotations

import pytest

from bot.outbound.delivery import FieldValueError, checked_field, template_data


@pytest.mark.parametrize(("field", "value", "sent"), [
    ("thing1", "报送一周活动开展情况", "报送一周活动开展情况"),
    ("thing3", "晋城市“安全生产月”活动联络员表报送截止提醒通知", "晋城市“安全生产月”活动联络员表报送截…"),
    ("thing2", "第一行\n第二行", "第一行 第二行"),
    ("time2", "2023年6月7日 18:00", "2023年6月7日 18:00"),
    ("date4", "2023年6月7日", "2023年6月7日"),
    ("phrase5", "未报送", "未报送"),
    ("character_string6", "2023-06-07", "2023-06-07"),
])
def test_a_value_that_fits_or_can_be_shortened_is_sent(field: str, value: str, sent: str) -> None:
    assert checked_field(field, value) == sent
    assert len(checked_field(field, value)) <= 20 or not field.startswith("thing")


@pytest.mark.parametrize(("field", "value"), [
    ("time2", "2023-06-07 18:00"),
    ("phrase3", "高平市商务局"),
    ("character_string1", "第2023-06-07周"),
    ("number4", "三场"),
    ("thing1", ""),
])
def test_a_value_that_breaks_its_type_is_refused_before_wechat_answers_47003(field: str, value: str) -> None:
    with pytest.raises(FieldValueError):
        checked_field(field, value)


def test_each_field_takes_the_value_of_the_variable_the_campaign_file_names() -> None:
    data = template_data({"thing1": "deadline", "time2": "due_at"},
                         {"deadline": "报送联络员表", "due_at": "2023年5月31日 23:59", "unit": "城区"})
    assert data == {"thing1": "报送联络员表", "time2": "2023年5月31日 23:59"}
