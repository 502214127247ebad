"""QR images for people, not for printing runs: one code on demand, and a proof sheet of sample
codes for the printer to check size, contrast and scanning before a run. Mass printing is the CSV
in the printer package (variable-data printing); rendering millions of images here would be waste.

URLs are upper case and encoded in QR alphanumeric mode at error correction Q (caps get
scratched): a 47-character scan URL fits version 3 (29 x 29 modules).
"""

from __future__ import annotations

import io

import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode.util import MODE_ALPHA_NUM, QRData

from codes import format as code_format
from codes.models import Batch, SerialGroup
from codes.services import url_prefix

SHEET_COLUMNS = 4


def qr_image(url: str, *, box_size: int = 8) -> Image.Image:
    """The QR symbol of a scan URL (alphanumeric mode, error correction Q, 4-module quiet zone)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=box_size, border=4)
    qr.add_data(QRData(url.upper(), mode=MODE_ALPHA_NUM))
    qr.make(fit=True)
    image = qr.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("RGB")


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def code_url(key: code_format.CodeKey, kind: code_format.Kind, serial: int) -> str:
    return url_prefix() + code_format.make(key, kind, serial)


def proof_sheet(batch: Batch, key: code_format.CodeKey, per_kind: int = 4) -> Image.Image:
    """A sheet with the first `per_kind` codes of each of the batch's kinds, captioned."""
    cells: list[tuple[Image.Image, str]] = []
    for kind in batch.kinds:
        serials = batch.serial_range(SerialGroup.of(kind))
        for serial in list(serials)[:per_kind]:
            url = code_url(key, kind, serial)
            cells.append((qr_image(url, box_size=6), f"{kind.name} #{serial}"))
    if not cells:
        return Image.new("RGB", (10, 10), "white")
    cell_w = max(image.width for image, _ in cells)
    cell_h = max(image.height for image, _ in cells) + 24
    rows = (len(cells) + SHEET_COLUMNS - 1) // SHEET_COLUMNS
    sheet = Image.new("RGB", (cell_w * SHEET_COLUMNS, cell_h * rows + 30), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    draw.text((8, 8), f"{batch.number} proof", fill="black", font=font)
    for index, (image, caption) in enumerate(cells):
        x, y = (index % SHEET_COLUMNS) * cell_w, 30 + (index // SHEET_COLUMNS) * cell_h
        sheet.paste(image, (x, y))
        draw.text((x + 8, y + image.height + 4), caption, fill="black", font=font)
    return sheet
