"""Bad requests to `POST /v1/predict` get JSON errors that say what was received and what to send:
413 over the byte or pixel limit, 415 for what is not an image, 400/422 for empty or misnamed
uploads. A fake predictor (tests/serve/serve_helpers.py) keeps these fast."""

from __future__ import annotations

import io
import zipfile

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'fer-nla[serve]'")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from serve_helpers import PHOTOS, png_bytes  # noqa: E402

from fer_nla.serve import ServeSettings  # noqa: E402
from fer_nla.serve.app import create_app  # noqa: E402
from fer_nla.serve.uploads import MULTIPART_ALLOWANCE, describe_bytes  # noqa: E402

LIMIT = 50_000  # bytes
PIXELS = 10_000


@pytest.fixture
def client(fake_factory):
    settings = ServeSettings(max_upload_bytes=LIMIT, max_pixels=PIXELS)
    with TestClient(create_app(settings, predictor_factory=fake_factory)) as test_client:
        yield test_client


def detail(answer) -> str:
    assert answer.headers["content-type"] == "application/json"
    text = answer.json()["detail"]
    assert isinstance(text, str) and "Traceback" not in text
    return text


def test_a_body_over_the_limit_is_refused_by_its_content_length(client) -> None:
    answer = client.post("/v1/predict", content=b"\xff" * (LIMIT + 1))
    assert answer.status_code == 413
    assert detail(answer).startswith("the upload is 50,001 bytes (0.05 MB), over this server's limit of 50,000 bytes")
    assert "--max-upload-mb" in detail(answer)


def test_a_chunked_body_without_a_length_is_refused_while_it_is_counted(client) -> None:
    def chunks():
        for _ in range(8):
            yield b"\xff" * 10_000  # 80,000 bytes in all, no Content-Length

    answer = client.post("/v1/predict", content=chunks())
    assert answer.status_code == 413
    assert detail(answer).startswith("the upload is more than 50,000 bytes")


def test_a_content_length_below_the_real_size_changes_nothing(client) -> None:
    body = b"\xff" * (LIMIT + 10)  # the app is handed every byte (uvicorn itself stops at the stated length)
    answer = client.post("/v1/predict", content=body, headers={"Content-Length": "10"})
    assert answer.status_code == 413 and detail(answer).startswith("the upload is more than 50,000 bytes")


def test_a_photo_just_under_the_limit_in_a_form_passes_the_framing_allowance(client) -> None:
    data = png_bytes(90, 90)  # random pixels do not compress: about 24 KB
    assert len(data) < LIMIT
    padded = data + b"\0" * (LIMIT - len(data))  # trailing bytes after the PNG's end are ignored by decoders
    answer = client.post("/v1/predict", files={"file": ("p.png", padded, "image/png")})
    assert answer.status_code == 200, answer.text
    assert MULTIPART_ALLOWANCE > 200  # the form's boundaries and headers fit in it
    over = client.post("/v1/predict", files={"file": ("p.png", padded + b"\0", "image/png")})
    assert over.status_code == 413 and "50,001 bytes" in detail(over)


def test_text_is_refused_with_what_was_received_and_what_is_accepted(client) -> None:
    answer = client.post("/v1/predict", content=b"hello, this is a note", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    text = detail(answer)
    assert text.startswith("received 21 bytes of text starting 'hello, this is a note', sent as text/plain")
    assert "JPEG, PNG, WebP, BMP, GIF or TIFF" in text and "field 'file'" in text


def test_a_zip_file_in_the_form_is_named_as_one(client) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("photo.png", png_bytes(32, 32))
    answer = client.post("/v1/predict", files={"file": ("photos.zip", archive.getvalue(), "application/zip")})
    assert answer.status_code == 415
    assert detail(answer).startswith("'photos.zip': received") and "a ZIP archive" in detail(answer)
    assert "sent as application/zip" in detail(answer)


def test_a_truncated_jpeg_is_refused_as_damaged(client) -> None:
    out = io.BytesIO()
    Image.open(io.BytesIO(png_bytes(96, 96))).save(out, format="JPEG")
    data = out.getvalue()
    assert client.post("/v1/predict", content=data).status_code == 200
    answer = client.post("/v1/predict", content=data[: len(data) // 2])
    assert answer.status_code == 415
    assert "bytes of JPEG data that cannot be decoded: the file is truncated or damaged" in detail(answer)


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(client) -> None:
    assert client.post("/v1/predict", content=png_bytes(100, 100)).status_code == 200  # exactly at the limit
    answer = client.post("/v1/predict", content=png_bytes(101, 100))
    assert answer.status_code == 413
    assert detail(answer).startswith("the image is 101x100 = 10,100 pixels, over this server's limit of 10,000 pixels")
    assert "--max-pixels" in detail(answer)


def test_an_empty_body_says_what_to_send(client) -> None:
    answer = client.post("/v1/predict")
    assert answer.status_code == 400 and detail(answer).startswith("the request body is empty; send a JPEG")


def test_an_empty_file_in_the_form_is_named(client) -> None:
    answer = client.post("/v1/predict", files={"file": ("empty.jpg", b"", "image/jpeg")})
    assert answer.status_code == 400
    assert detail(answer).startswith("the file 'empty.jpg' in the form field 'file' is empty (0 bytes)")


def test_a_form_without_the_field_file_names_the_fields_it_has(client) -> None:
    answer = client.post("/v1/predict", files={"image": ("o.jpg", (PHOTOS / "frontal_obama.jpg").read_bytes())})
    assert answer.status_code == 422
    assert detail(answer).startswith("the form has no field 'file' (its fields: 'image')")


def test_text_in_the_field_file_is_not_taken_for_a_photo(client) -> None:
    answer = client.post("/v1/predict", headers={"Content-Type": "multipart/form-data; boundary=x"},
                         content=b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nphoto.jpg\r\n--x--\r\n')
    assert answer.status_code == 422
    assert detail(answer).startswith("the form field 'file' holds text (9 characters), not a file")


def test_bad_query_parameters_are_one_readable_line(client) -> None:
    photo = png_bytes(64, 64)
    answer = client.post("/v1/predict?annotate=maybe", content=photo)
    assert answer.status_code == 422 and detail(answer).startswith("annotate: Input should be a valid boolean")
    assert "(got 'maybe')" in detail(answer)
    answer = client.post("/v1/predict?annotate=1&format=gif", content=photo)
    assert answer.status_code == 422
    assert detail(answer) == "format='gif' is not an annotated image format; use one of: png, jpeg (or leave it out)"
    answer = client.post("/v1/predict?format=gif", content=photo)  # without annotate too: a typo is never ignored
    assert answer.status_code == 422 and detail(answer).startswith("format='gif' is not an annotated image format")


def test_a_content_length_that_is_not_a_number_is_a_bad_request(client) -> None:
    answer = client.post("/v1/predict", content=b"x", headers={"Content-Length": "ten"})
    assert answer.status_code == 400 and detail(answer) == "Content-Length 'ten' is not a whole number of bytes"


@pytest.mark.parametrize(("data", "kind"), [
    (b"%PDF-1.7\n...", "a PDF document"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00", "an HEIC photo (iPhone)"),
    (b"\x00\x01\x02\x03\xfe\xff" * 10, "binary data"),
    ("näive café ".encode() * 400, "text starting 'näive café näive café näive café näive café ...'"),
    (b"x" * 5000, "text"),  # no word short enough to quote whole
    (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, "PNG data that cannot be decoded (a truncated or damaged file)"),
    (b"\xff\xd8\xff\xe0" + b"\x01\x02" * 100, "JPEG data that cannot be decoded (a truncated or damaged file)"),
])
def test_describe_bytes_names_common_files(data: bytes, kind: str) -> None:
    assert describe_bytes(data) == kind


def test_an_image_header_followed_by_garbage_is_called_a_damaged_image(client) -> None:
    answer = client.post("/v1/predict", content=b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50)
    assert answer.status_code == 415
    assert "bytes of PNG data that cannot be decoded (a truncated or damaged file)" in detail(answer)


# --- issue 24: animated images are answered with a note; the page's errors advise the page --------------------
@pytest.mark.parametrize("kind", ["GIF", "WEBP"])
def test_an_animated_image_is_answered_from_its_first_frame_with_a_note(client, kind) -> None:
    frames = [Image.new("RGB", (60, 60), (40 * k, 90, 120)) for k in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=kind, save_all=True, append_images=frames[1:], duration=100, loop=0)
    answer = client.post("/v1/predict", files={"file": (f"clip.{kind.lower()}", buffer.getvalue())})
    assert answer.status_code == 200
    body = answer.json()
    assert body["image"]["frames"] == 3
    assert f"an animated {kind} of 3 frames: its first frame was classified" in body["note"]
    still = client.post("/v1/predict", files={"file": ("still.png", png_bytes(60, 60))}).json()
    assert still["image"]["frames"] == 1 and (still["note"] is None or "animated" not in still["note"])


def test_the_pages_requests_get_advice_for_the_page_and_others_for_curl(client) -> None:
    sent = {"files": {"file": ("notes.txt", b"not a photo at all")}}
    plain = detail(client.post("/v1/predict", **sent))
    assert "curl -F file=@photo.jpg" in plain
    page = detail(client.post("/v1/predict", headers={"X-Fer-Nla-Client": "page"}, **sent))
    assert page == plain.replace(plain[plain.index("send a JPEG"):],
                                 "choose or drop a JPEG, PNG, WebP, BMP, GIF or TIFF image on this page")
