"""A new user's `data/` folder: three exports of one fictional person, Robin Quinn, in three formats.

`tests/fixtures/own_chats/` holds them as text; `copy_exports` lays them out as the apps deliver them: the
WhatsApp chat inside the zip that iOS's "Export chat" writes (`_chat.txt`), the Telegram Desktop export folder,
and a generic CSV. Robin's Telegram messages partly lack `from`, as in real exports; the CSV writes the name in
lower case.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "own_chats"
ME = "Robin Quinn"
OTHERS = ("Sam Porter", "Kai Lindqvist", "Lee Moreno")
WHATSAPP_ZIP = "WhatsApp Chat - Sam Porter.zip"


def copy_exports(data: Path) -> Path:
    """The exports under `data` (created), plus a photo that is no export."""
    data.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(data / WHATSAPP_ZIP, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(FIXTURES / "WhatsApp Chat - Sam Porter.txt", "_chat.txt")
        zf.writestr("00000012-PHOTO-2024-04-13-18-05-10.jpg", b"\xff\xd8\xff\xe0 not really a photo")
    shutil.copytree(FIXTURES / "telegram", data / "Telegram Desktop" / "ChatExport_2024-06-30")
    shutil.copy(FIXTURES / "lee.csv", data / "lee.csv")
    (data / "Telegram Desktop" / "ChatExport_2024-06-30" / "photos").mkdir()
    (data / "Telegram Desktop" / "ChatExport_2024-06-30" / "photos" / "photo_1.jpg").write_bytes(b"\xff\xd8\xff")
    return data
