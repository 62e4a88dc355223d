"""The API of `fer-nla serve` with the built-in model on real photos (tests/data/photos), through
FastAPI's TestClient: the faces of faces.json, the annotated image, /v1/models, /healthz, /docs, the page."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'fer-nla[serve]'")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from serve_helpers import PHOTOS, TRUTH  # noqa: E402

from fer_nla import __version__  # noqa: E402
from fer_nla.builtin import DEFAULT_MODEL, builtin_path  # noqa: E402
from fer_nla.predict.detectors import Box, box_iou  # noqa: E402
from fer_nla.serve import ServeSettings  # noqa: E402
from fer_nla.serve.app import create_app  # noqa: E402
from fer_nla.serve.docs import local_swagger_ui  # noqa: E402



@pytest.fixture(scope="module")
def client(builtin_predictor):
    app = create_app(ServeSettings(), predictor_factory=lambda settings: builtin_predictor)
    with TestClient(app) as test_client:
        yield test_client


def test_the_group_photo_answers_each_face_of_faces_json_once_with_probabilities_summing_to_one(client) -> None:
    data = (PHOTOS / "group.jpg").read_bytes()
    answer = client.post("/v1/predict", files={"file": ("group.jpg", data, "image/jpeg")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    truth = [Box(*b) for b in TRUTH["group.jpg"]["faces"]]
    assert body["count"] == len(body["faces"]) == len(truth) == 14
    assert body["image"] == {"width": 1280, "height": 720, "format": "JPEG", "frames": 1}
    assert body["note"] is None and body["dropped"] == {"empty": 0, "small": 0, "duplicate": 0}
    matched = []
    for face in body["faces"]:
        ious = [box_iou(Box(*face["box"]), t) for t in truth]
        matched.append(int(np.argmax(ious)))
        assert max(ious) >= 0.4
        assert 0.5 <= face["score"] <= 1
        assert set(face["probs"]) == set(body["model"]["classes"])
        assert abs(sum(face["probs"].values()) - 1) < 1e-4
        assert face["label"] == max(face["probs"], key=face["probs"].get)
    assert sorted(matched) == list(range(14))  # every face once, none dropped, none twice


def test_the_answer_names_the_model_its_weights_and_fer_nla_version(client) -> None:
    body = client.post("/v1/predict", content=(PHOTOS / "frontal_obama.jpg").read_bytes()).json()
    digest = hashlib.sha256(builtin_path().read_bytes()).hexdigest()[:16]
    assert body["model"]["name"] == DEFAULT_MODEL and body["model"]["source"] == "built-in"
    assert body["model"]["version"] == f"sha256:{digest}"
    assert body["version"] == __version__
    assert body["model"]["input"] == "48x48 gray"
    [face] = body["faces"]
    assert face["label"] == "happiness" and face["probs"]["happiness"] > 0.9


def test_a_raw_body_and_a_form_upload_give_the_same_faces(client) -> None:
    data = (PHOTOS / "frontal_astronaut.jpg").read_bytes()
    raw = client.post("/v1/predict", content=data, headers={"Content-Type": "application/octet-stream"}).json()
    form = client.post("/v1/predict", files={"file": ("a.jpg", data, "image/jpeg")}).json()
    assert raw["faces"] == form["faces"] and len(raw["faces"]) == 1
    assert box_iou(Box(*raw["faces"][0]["box"]), Box(*TRUTH["frontal_astronaut.jpg"]["faces"][0])) >= 0.4


def test_a_photo_without_a_person_has_no_face_and_says_so(client) -> None:
    body = client.post("/v1/predict", content=(PHOTOS / "noface_cat.jpg").read_bytes()).json()
    assert body["faces"] == [] and body["count"] == 0 and body["note"] == "no face found"


@pytest.mark.parametrize(("query", "kind", "media"), [("annotate=1", "JPEG", "image/jpeg"),
                                                      ("annotate=true&format=png", "PNG", "image/png")])
def test_annotate_answers_the_photo_with_its_faces_drawn_at_the_same_size(client, query, kind, media) -> None:
    data = (PHOTOS / "frontal_obama.jpg").read_bytes()
    answer = client.post(f"/v1/predict?{query}", files={"file": ("o.jpg", data, "image/jpeg")})
    assert answer.status_code == 200 and answer.headers["content-type"] == media
    assert answer.headers["x-faces"] == "1"
    drawn = Image.open(io.BytesIO(answer.content))
    assert drawn.format == kind and drawn.size == tuple(TRUTH["frontal_obama.jpg"]["size"])
    x, y, w, h = client.post("/v1/predict", content=data).json()["faces"][0]["box"]
    pixels = np.asarray(drawn.convert("RGB")).astype(int)
    photo = np.asarray(Image.open(PHOTOS / "frontal_obama.jpg").convert("RGB")).astype(int)
    edge = slice(y + h // 4, y + 3 * h // 4)  # the middle half of the box's left edge
    assert np.abs(pixels[edge, x] - photo[edge, x]).mean() > 40  # a line is drawn there...
    assert np.abs(pixels[:, : max(0, x - 5)] - photo[:, : max(0, x - 5)]).mean() < 3  # ...and not left of it
    if kind == "PNG":  # lossless: the box colour exactly (fer_nla.predict.annotate.BOX_COLOR)
        assert (pixels[edge, x] == (0, 200, 255)).all()


def test_models_lists_the_served_model_and_the_builtin_ones_without_server_paths(client) -> None:
    body = client.get("/v1/models").json()
    assert body["serving"]["name"] == DEFAULT_MODEL and len(body["serving"]["classes"]) == 8
    assert [m["name"] for m in body["builtin"]] == [DEFAULT_MODEL] and body["builtin"][0]["default"] is True
    assert "file" not in body["builtin"][0] and "card" not in body["builtin"][0]


def test_healthz_reports_the_model_the_limits_and_an_idle_queue(client) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["model"] == DEFAULT_MODEL and body["version"] == __version__
    assert body["limits"] == {"max_upload_bytes": 20_000_000, "max_pixels": 50_000_000, "timeout_s": 30.0,
                              "upload_timeout_s": 30.0, "max_uploads": 32}
    assert body["queue"] == {"running": 0, "waiting": 0, "capacity": 17, "threads": 1} and body["uploads"] == 0


def test_docs_and_the_openapi_schema_describe_the_upload(client) -> None:
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: /docs is the documentation
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    if local_swagger_ui() is not None:  # the serve extra's Swagger UI: /docs works without the internet
        assert "cdn." not in docs.text and "/docs-files/swagger-ui-bundle.js" in docs.text
        assert client.get("/docs-files/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["required"] == ["file"]
    assert "image/*" in body and {"/v1/models", "/healthz"} <= set(schema["paths"])


def test_the_page_and_its_files_are_served_with_a_self_only_content_policy(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="photo"' in page.text and 'type="file"' in page.text and "/static/app.js" in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "/v1/predict" in script.text and "dataset.boxes" in script.text
    assert client.get("/static/style.css").status_code == 200
