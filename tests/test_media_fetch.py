"""Report media is fetched from the (fake) WeChat media API in the background into MEDIA_DIR with
its checksum, retried after a failure, given up once WeChat has deleted it, and fetched once
when several bot processes share the database."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from sqlmodel import select

from bot.outbound.media import MediaFetcher
from bot.store.engine import make_engine, session
from bot.store.models import MediaFile, utcnow
from bot.texts import Texts
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)
from tests.test_weekly_report import ZEZHOU, eventually, media

MEDIA_GET = "/cgi-bin/media/get"


def row(jincheng: Campaign, media_id: str) -> MediaFile:
    with session(jincheng.engine) as db:
        return db.exec(select(MediaFile).where(MediaFile.media_id == media_id)).one()


def stored(jincheng: Campaign, media_id: str) -> MediaFile | None:
    found = row(jincheng, media_id)
    return found if found.status == "stored" else None


def test_pictures_voice_and_video_are_stored_in_the_media_dir_under_their_checksum(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    fake, side = jincheng.bot.fake, jincheng.bot.side
    sent = {
        fake.add_user_media("image", b"\xff\xd8picture", "image/jpeg"): (b"\xff\xd8picture", "image/jpeg", ".jpg"),
        fake.add_user_media("voice", b"#!AMR voice", "audio/amr"): (b"#!AMR voice", "audio/amr", ".amr"),
        # WeChat answers media/get for a video with JSON naming a video_url, fetched in turn.
        fake.add_user_media("video", b"mp4 video", "video/mp4"): (b"mp4 video", "video/mp4", ".mp4"),
    }
    jincheng.say(ZEZHOU, "周报")
    picture, voice, video = sent
    side.image(ZEZHOU, picture)
    side.voice(ZEZHOU, voice)
    side.video(ZEZHOU, video)
    for media_id, (content, content_type, suffix) in sent.items():
        found = eventually(lambda: stored(jincheng, media_id))
        assert found is not None and found.path is not None
        digest = hashlib.sha256(content).hexdigest()
        assert (found.sha256, found.size, found.content_type, found.attempts) == (digest, len(content), content_type, 1)
        assert found.path == f"{digest[:2]}/{digest}{suffix}"
        assert (jincheng.bot.settings.media_dir / found.path).read_bytes() == content
        assert found.openid == ZEZHOU and found.stored_at == jincheng.clock.now
    done = jincheng.say(ZEZHOU, "完成")
    assert "正在保存" not in done and "未能" not in done


def test_a_failed_fetch_is_retried_after_a_back_off_until_the_file_is_stored(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    fake = jincheng.bot.fake
    picture = fake.add_user_media("image", b"\xff\xd8retried", "image/jpeg")
    fake.fail_next(MEDIA_GET, 45009)  # the daily quota: WeChat refuses, the client does not retry
    jincheng.say(ZEZHOU, "周报")
    jincheng.bot.side.image(ZEZHOU, picture)
    failed = eventually(lambda: (r := row(jincheng, picture)).attempts == 1 and r.status == "pending" and r)
    assert failed and failed.last_error is not None and "45009" in failed.last_error
    assert failed.next_attempt_at == jincheng.clock.now + timedelta(seconds=30)
    assert "1 个图片、语音或视频正在保存" in jincheng.say(ZEZHOU, "完成")
    jincheng.clock.advance(seconds=30)
    found = eventually(lambda: stored(jincheng, picture))
    assert found is not None and found.attempts == 2 and found.last_error is None
    assert len([c for c in fake.calls if c.path == MEDIA_GET]) == 2


def test_a_file_still_failing_after_a_day_and_a_half_is_tried_again_an_hour_later(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    fake = jincheng.bot.fake
    picture = fake.add_user_media("image", b"\xff\xd8stubborn", "image/jpeg")
    fake.fail_next(MEDIA_GET, 45009, times=2)
    jincheng.say(ZEZHOU, "周报")
    jincheng.bot.side.image(ZEZHOU, picture)
    assert eventually(lambda: (r := row(jincheng, picture)).attempts == 1 and r.status == "pending")
    # Hourly retries since: the 49th has just failed, and the 50th is due.
    jincheng.clock.advance(hours=36)
    with session(jincheng.engine) as db:
        stubborn = db.exec(select(MediaFile).where(MediaFile.media_id == picture)).one()
        stubborn.attempts, stubborn.next_attempt_at = 49, jincheng.clock.now
        db.add(stubborn)
        db.commit()
    failed = eventually(lambda: (r := row(jincheng, picture)).attempts == 50 and r.status == "pending" and r)
    assert failed and failed.next_attempt_at == jincheng.clock.now + timedelta(hours=1)


def test_media_wechat_no_longer_has_is_given_up_and_the_report_names_it(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "周报")
    jincheng.say(ZEZHOU, "本周活动情况")
    jincheng.bot.side.image(ZEZHOU, "media-id-wechat-never-had")
    assert eventually(lambda: (r := row(jincheng, "media-id-wechat-never-had")).attempts == 1 and r.status == "pending")
    jincheng.clock.advance(days=3)  # WeChat deletes temporary media after 3 days
    given_up = eventually(lambda: (r := row(jincheng, "media-id-wechat-never-had")).status == "failed" and r)
    assert given_up and given_up.attempts == 2 and "40007" in (given_up.last_error or "")
    done = jincheng.say(ZEZHOU, "完成")
    assert "未能从微信取回：图片 1 张，请重新发送" in done


def test_two_bot_processes_on_one_database_fetch_each_file_once(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.start_bot(clock=jincheng.clock)  # a second worker, with its own fetcher
    fake = jincheng.bot.fake
    pictures = [fake.add_user_media("image", f"picture {n}".encode(), "image/jpeg") for n in range(8)]
    jincheng.say(ZEZHOU, "周报")
    for picture in pictures:
        jincheng.bot.side.image(ZEZHOU, picture)
    assert eventually(lambda: all(m.status == "stored" for m in media(jincheng)))
    assert len(media(jincheng)) == 8
    assert sorted(c.query["media_id"] for c in fake.calls if c.path == MEDIA_GET) == sorted(pictures)


def test_a_fetcher_without_the_note_it_may_send_staff_refuses_to_start(tmp_path: Path, sqlite_url: str) -> None:
    # Checked when the fetcher is made: a missing template would otherwise show only when media is lost.
    (tmp_path / "messages").mkdir()
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(LookupError, match="staff_note_media_lost"):
            MediaFetcher(engine, engine, wechat=None, media_dir=tmp_path / "media", clock=utcnow,
                         texts=Texts(tmp_path / "messages"))
    finally:
        engine.dispose()
