"""Temporary media: what an upload may be (type, extension, size), how long media lives, and the
stored record of one media file.

Follows WeChat's temporary-media pages, upload (api_uploadtempmedia) and download (api_getmedia)
(``/work/shared/wechat-rules.md`` A7, B5). Where the upload page contradicts itself, the fake takes
the strictest reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Media uploaded and media users sent are gone after 3 days.
MEDIA_LIFETIME = timedelta(days=3)


@dataclass(frozen=True)
class Media:
    """One stored media file: its type (``image``, ``voice``…), bytes, MIME type and upload time."""

    kind: str
    content: bytes
    content_type: str
    created_at: datetime


@dataclass(frozen=True)
class UploadRule:
    """What one upload type accepts: extension → MIME type, the size limit, the errcode above it."""

    extensions: dict[str, str]
    max_bytes: int
    size_errcode: int


UPLOAD_RULES: dict[str, UploadRule] = {
    # The page says both 2 MB and 10 MB for images; the fake takes 2 MB.
    "image": UploadRule({"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif"},
                        2 * 1024 * 1024, 40009),
    "voice": UploadRule({"amr": "audio/amr", "mp3": "audio/mpeg"}, 2 * 1024 * 1024, 40010),
    "video": UploadRule({"mp4": "video/mp4"}, 10 * 1024 * 1024, 40011),
    "thumb": UploadRule({"jpg": "image/jpeg", "jpeg": "image/jpeg"}, 64 * 1024, 40012),
}
# What a user may send: what may be uploaded, and short videos.
MEDIA_KINDS = frozenset(UPLOAD_RULES) | {"shortvideo"}
# The extension of the file name media/get gives a download.
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "audio/amr": "amr",
            "audio/mpeg": "mp3", "video/mp4": "mp4"}

