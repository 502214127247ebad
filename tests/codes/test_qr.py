"""QR images a person needs: one code on demand and a printer's proof sheet. Each image is decoded
back (zxing-cpp, an independent decoder) and the code it carries verifies."""

from __future__ import annotations

import io
from typing import Any

import pytest
import zxingcpp
from django_tenants.utils import tenant_context
from PIL import Image

from codes import format as code_format
from codes import qr, services
from codes.keyring import keyring, verify
from codes.models import Batch
from tests.conftest import Brand


@pytest.fixture
def batch(alpha: Brand) -> Batch:
    keyring.clear()
    with tenant_context(alpha.tenant):
        return services.create_batch(services.BatchRequest(bottles=12, bottles_per_case=6))


def _decode(data: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


def test_one_code_on_demand_decodes_to_its_scan_url(alpha: Brand, batch: Batch) -> None:
    response = alpha.client("owner").get(f"/api/v1/codes/batches/{batch.pk}/qr/", {"kind": "inner", "index": 3})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    (text,) = _decode(response.content)
    prefix = services.url_prefix()
    assert text.startswith(prefix)
    code = verify(text[len(prefix) :], tenant_number=alpha.tenant.number)
    assert (code.kind, code.serial) == (code_format.Kind.INNER, batch.first_bottle_serial + 3)


def test_a_scan_url_is_a_version_3_symbol_at_error_correction_q(alpha: Brand, batch: Batch) -> None:
    import qrcode

    url = "HTTPS://Q.EXAMPLE.CN/C/" + "0" * 24
    symbol = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q)
    symbol.add_data(qrcode.util.QRData(url, mode=qrcode.util.MODE_ALPHA_NUM))
    symbol.make(fit=True)
    assert symbol.version == 3
    assert qr.qr_image(url, box_size=1).width == 29 + 8  # 29 modules and the quiet zone


def test_the_proof_sheet_carries_sample_codes_of_every_kind(alpha: Brand, batch: Batch) -> None:
    response = alpha.client("owner").get(f"/api/v1/codes/batches/{batch.pk}/proof/")
    assert response.status_code == 200
    texts = _decode(response.content)
    prefix = services.url_prefix()
    kinds = {verify(text[len(prefix) :]).kind for text in texts}
    assert kinds == {code_format.Kind.INNER, code_format.Kind.OUTER, code_format.Kind.CASE}
    assert len(texts) == 4 + 4 + 2  # four of each kind, and the batch has two cases


@pytest.mark.parametrize("query", [{"kind": "pallet"}, {"kind": "outer", "index": 99}, {"kind": "x"}, {"index": "-1"}])
def test_codes_the_batch_does_not_have_are_a_400(alpha: Brand, batch: Batch, query: dict[str, Any]) -> None:
    response = alpha.client("owner").get(f"/api/v1/codes/batches/{batch.pk}/qr/", query)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_code_request"


def test_qr_images_are_for_staff_only(alpha: Brand, batch: Batch) -> None:
    assert alpha.client().get(f"/api/v1/codes/batches/{batch.pk}/qr/").status_code in (401, 403)
