"""``/docs`` without the internet: Swagger UI served from the installed ``swagger-ui-bundle-v2`` package.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN, so on a machine without internet access
it stays blank. When the package (part of the ``serve`` extra) is installed with Swagger UI 5 or
later (FastAPI writes OpenAPI 3.1, which Swagger UI 4 cannot show), its files are served under
:data:`DOCS_FILES` and ``/docs`` uses them; otherwise FastAPI's CDN page is kept.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_FILES = "/docs-files"
NEEDED = ("swagger-ui-bundle.js", "swagger-ui.css")


def local_swagger_ui() -> Path | None:
    """The folder of an installed Swagger UI 5+ (``swagger_ui_bundle.swagger_ui_path``), or
    ``None`` when the package is absent, older, or lacks :data:`NEEDED` files."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    folder = Path(str(swagger_ui_path))
    found = re.search(r"swagger-ui-(\d+)\.", folder.name)
    if found is None or int(found[1]) < 5 or not all((folder / name).is_file() for name in NEEDED):
        return None
    return folder


def add_local_docs(app: FastAPI, folder: Path) -> None:
    """Serves Swagger UI's files from ``folder`` under :data:`DOCS_FILES` and ``/docs`` with them
    (create ``app`` with ``docs_url=None``)."""
    app.mount(DOCS_FILES, StaticFiles(directory=folder), name="docs-files")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
                                   swagger_js_url=f"{DOCS_FILES}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_FILES}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_FILES}/favicon-32x32.png")
