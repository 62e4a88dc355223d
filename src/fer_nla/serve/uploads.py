"""An uploaded photo: the request body read within its byte limit, and decoded within the pixel limit.

A photo comes as the multipart form field ``file`` (``curl -F file=@photo.jpg``, a browser
form) or as the raw request body (``curl --data-binary @photo.jpg``); for a raw body the bytes
decide, whatever ``Content-Type`` says. Every refusal is a :class:`starlette.exceptions.HTTPException`
whose ``detail`` says what was received, what is accepted and the fix:

- 413: a body over ``max_upload_bytes`` (by ``Content-Length`` before reading, and by counting
  while reading, so a missing or false ``Content-Length`` changes nothing), or an image over
  ``max_pixels`` (read from its header, before its pixels are decoded);
- 415: bytes that are not an image of :data:`ACCEPTED_FORMATS`, or a truncated or damaged one;
- 400: an empty body, an empty file field, a malformed form or ``Content-Length``;
- 422: a form without the field ``file``, or with text in it; an image whose pixel values have
  no 8-bit scale.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from fer_nla.image_files import PixelRangeError, animation_frames, to_rgb8

FIELD = "file"
# Pillow formats decoded; others (EPS, which runs Ghostscript, PSD, ICO, ...) are refused unread.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF")
ACCEPTED_TEXT = "a JPEG, PNG, WebP, BMP, GIF or TIFF image"
HOW_TO_SEND = (f"send {ACCEPTED_TEXT} as the multipart form field '{FIELD}' (curl -F file=@photo.jpg) "
               "or as the raw request body (curl --data-binary @photo.jpg)")
PAGE_HOW_TO_SEND = f"choose or drop {ACCEPTED_TEXT} on this page"  # the same advice, for the page's users
PAGE_CLIENT_HEADER = "X-Fer-Nla-Client"  # the page sends "page": its errors then use PAGE_HOW_TO_SEND
MULTIPART_ALLOWANCE = 64 * 1024
TEXT_SHOWN = 48  # characters of a text upload quoted in the 415 message, at most  # form boundaries and part headers around the file, beyond the limit
# Leading bytes of common files that are not accepted images, to name what was received.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (or a document inside one: docx, xlsx, ...)"),
    (b"%PDF", "a PDF document"), (b"\x1f\x8b", "gzip-compressed data"), (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"), (b"\x7fELF", "a Linux program"), (b"MZ", "a Windows program"),
    (b"\x00\x00\x01\x00", "an ICO icon"), (b"8BPS", "a Photoshop PSD file"), (b"%!PS", "a PostScript/EPS file"),
    (b"\x1a\x45\xdf\xa3", "a WebM/Matroska video"), (b"OggS", "an Ogg audio/video file"),
    # accepted kinds whose header is there but whose data Pillow cannot read: damaged files
    (b"\x89PNG\r\n\x1a\n", "PNG data that cannot be decoded (a truncated or damaged file)"),
    (b"\xff\xd8\xff", "JPEG data that cannot be decoded (a truncated or damaged file)"),
    (b"GIF87a", "GIF data that cannot be decoded (a truncated or damaged file)"),
    (b"GIF89a", "GIF data that cannot be decoded (a truncated or damaged file)"),
)
ISO_BRANDS: dict[bytes, str] = {  # bytes 8..12 of an ISO media file (after "ftyp")
    b"heic": "an HEIC photo (iPhone)", b"heix": "an HEIC photo (iPhone)", b"mif1": "an HEIF photo",
    b"avif": "an AVIF image", b"isom": "an MP4 video", b"mp42": "an MP4 video", b"qt  ": "a QuickTime video",
}


def megabytes(count: int) -> str:
    """``count`` bytes as decimal megabytes: ``20 MB``, ``25.3 MB``, ``0.05 MB``."""
    value = count / 1_000_000
    if value == int(value):
        return f"{value:.0f} MB"
    return f"{value:.3g} MB" if value < 10 else f"{value:.1f} MB"


@dataclass(frozen=True)
class Upload:
    """A received photo: its bytes, the ``Content-Type`` declared for them (``None``: none) and,
    from a form, the file name the client gave."""

    data: bytes
    declared_type: str | None = None
    filename: str | None = None


def too_large(count: int | str, limit: int) -> HTTPException:
    """The 413 for a body of ``count`` bytes (or a phrase such as ``"more than 20000001"``)."""
    size = f"{count:,} bytes ({megabytes(count)})" if isinstance(count, int) else f"{count} bytes"
    return HTTPException(413, f"the upload is {size}, over this server's limit of {limit:,} bytes ({megabytes(limit)}, "
                              "set by fer-nla serve --max-upload-mb); send a smaller or more compressed photo "
                              "(a JPEG of the same photo is usually several times smaller)")


def declared_length(request: Request) -> int | None:
    """The request's ``Content-Length`` (``None`` when absent); 400 when it is not a whole number."""
    text = request.headers.get("content-length")
    if text is None:
        return None
    if not text.strip().isdigit():
        raise HTTPException(400, f"Content-Length {text!r} is not a whole number of bytes")
    return int(text)


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes: first by its
    ``Content-Length``, then by counting the bytes read (chunked bodies state no length)."""
    length = declared_length(request)
    if length is not None and length > limit:
        raise too_large(length, limit)
    chunks, count = [], 0
    async for chunk in request.stream():
        count += len(chunk)
        if count > limit:
            raise too_large(f"more than {limit:,}", limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(request: Request, *, max_bytes: int) -> Upload:
    """The photo in ``request``: the form field ``file`` of a ``multipart/form-data`` body, else
    the raw body. Raises ``HTTPException`` 413 (over ``max_bytes``), 400 (empty, malformed) or
    422 (no field ``file``, or text in it), each saying what to send."""
    content_type = request.headers.get("content-type")
    multipart = (content_type or "").lower().startswith("multipart/form-data")
    body = await read_body(request, limit=max_bytes + (MULTIPART_ALLOWANCE if multipart else 0))
    if not multipart:
        if not body:
            raise HTTPException(400, f"the request body is empty; {HOW_TO_SEND}")
        return Upload(body, declared_type=content_type)
    upload = await _form_file(request, body)
    if len(upload.data) > max_bytes:
        raise too_large(len(upload.data), max_bytes)
    return upload


async def _form_file(request: Request, body: bytes) -> Upload:
    """The field ``file`` of the multipart ``body`` (already read and counted)."""

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
    except HTTPException as err:  # starlette's 400 for a form it cannot parse
        raise HTTPException(400, f"the multipart form cannot be read ({err.detail}); {HOW_TO_SEND}") from None
    try:
        value = form.get(FIELD)
        if value is None:
            names = ", ".join(repr(name) for name in form.keys()) or "none"
            raise HTTPException(422, f"the form has no field '{FIELD}' (its fields: {names}); {HOW_TO_SEND}")
        if not isinstance(value, UploadFile):
            raise HTTPException(422, f"the form field '{FIELD}' holds text ({len(value)} characters), not a file; "
                                     f"{HOW_TO_SEND}")
        data = await value.read()
        if not data:
            raise HTTPException(400, f"the file {value.filename!r} in the form field '{FIELD}' is empty (0 bytes); "
                                     f"{HOW_TO_SEND}")
        return Upload(data, declared_type=value.content_type, filename=value.filename)
    finally:
        await form.close()


def describe_bytes(data: bytes) -> str:
    """What ``data`` looks like, for a 415 message: a known file kind (``a ZIP archive``), text
    (with its first characters), or ``binary data``."""
    for magic, kind in SIGNATURES:
        if data.startswith(magic):
            return kind
    if data[4:8] == b"ftyp":
        return ISO_BRANDS.get(data[8:12], "an ISO media file (MP4/HEIF family)")
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if len(head) < 4096 or err.start < len(head) - 3:  # not merely a character cut at the end
            return "binary data"
        text = head[:err.start].decode("utf-8")
    if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        start = textwrap.shorten(text, width=TEXT_SHOWN, placeholder=" ...")  # whole words only
        return "text" if start == "..." else f"text starting {start!r}"
    return "binary data"


def not_an_image(upload: Upload) -> HTTPException:
    """The 415 for bytes that are no accepted image: what they look like, their declared type, the fix."""
    declared = f", sent as {upload.declared_type}" if upload.declared_type else ""
    name = f"{upload.filename!r}: " if upload.filename else ""
    return HTTPException(415, f"{name}received {len(upload.data):,} bytes of {describe_bytes(upload.data)}{declared}, "
                              f"not an image this server reads; {HOW_TO_SEND}")


@dataclass(frozen=True)
class DecodedImage:
    """A decoded photo: ``rgb`` (``HxWx3`` uint8, EXIF orientation applied), its ``width`` and
    ``height`` in pixels, and the ``format`` it was sent in (Pillow's name: ``JPEG``, ``PNG``...)."""

    rgb: np.ndarray
    width: int
    height: int
    format: str
    frames: int = 1  # an animated GIF/WebP/APNG: how many frames it holds (its first is classified)


def decode_upload(upload: Upload, *, max_pixels: int) -> DecodedImage:
    """The pixels of ``upload`` as :func:`fer_nla.image_files.to_rgb8` gives them (the rules every
    fer-nla reader follows: EXIF orientation, first frame, transparency on white).

    Raises ``HTTPException`` 415 for bytes that are not an image of :data:`ACCEPTED_FORMATS` or
    that are truncated or damaged, 413 for an image over ``max_pixels`` (width x height, read
    from its header before decoding), 422 for pixel values with no 8-bit scale."""
    try:
        Image.init()  # registers every plugin (MPO is not among the preloaded ones); cheap after the first call
        handle = Image.open(io.BytesIO(upload.data), formats=[f for f in ACCEPTED_FORMATS if f in Image.OPEN])
    except Image.DecompressionBombError as err:
        raise HTTPException(413, f"the image is over Pillow's decompression-bomb limit ({err}); this server takes "
                                 f"at most {max_pixels:,} pixels (--max-pixels): downscale it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):  # no image, or a damaged header
        raise not_an_image(upload) from None
    with handle:
        width, height = handle.size
        if width * height > max_pixels:
            raise HTTPException(413, f"the image is {width}x{height} = {width * height:,} pixels, over this server's "
                                     f"limit of {max_pixels:,} pixels (set by fer-nla serve --max-pixels; it bounds the "
                                     "memory one request takes); downscale the photo and send it again")
        kind = handle.format or "image"
        frames = animation_frames(handle)
        try:
            handle.load()
            rgb = np.asarray(to_rgb8(handle))
        except PixelRangeError as err:
            raise HTTPException(422, f"the {kind} image's pixels have no 8-bit scale: {err}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise HTTPException(415, f"received {len(upload.data):,} bytes of {kind} data that cannot be decoded: the "
                                     f"file is truncated or damaged ({err}); send the whole file, or re-save it as "
                                     "PNG or JPEG") from None
    return DecodedImage(rgb=rgb, width=int(rgb.shape[1]), height=int(rgb.shape[0]), format=kind, frames=frames)

