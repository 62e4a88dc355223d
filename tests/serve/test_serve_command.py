"""`fer-nla serve`: its flags become ServeSettings handed to uvicorn's workers through FER_NLA_SERVE_*
variables; usage errors (a missing checkpoint, a taken port, the serve extra missing) stop it
with one line and exit status 2 before anything loads."""

from __future__ import annotations

import inspect
import os
import socket
import sys

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'fer-nla[serve]'")

import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import CentreDetector  # noqa: E402

from fer_nla.cli import main  # noqa: E402
from fer_nla.errors import InputError  # noqa: E402
from fer_nla.predict.predictor import Predictor  # noqa: E402
from fer_nla.serve import ServeSettings, require_dependencies  # noqa: E402
from fer_nla.serve.network import check_port_free  # noqa: E402

ENV_KEYS = [f"FER_NLA_SERVE_{name}" for name in ("MODEL", "CHECKPOINT", "BACKEND", "DEVICE", "DETECTOR",
                                                  "MAX_UPLOAD_BYTES", "MAX_PIXELS", "TIMEOUT_S", "THREADS",
                                                  "QUEUE", "RETRY_AFTER_S")]


@pytest.fixture
def uvicorn_calls(monkeypatch, fake_backend):
    """Records uvicorn.run's arguments instead of starting a server (the model a one-worker
    server loads first is a fake); FER_NLA_SERVE_* restored after."""
    import fer_nla.serve.model

    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    loaded = []
    monkeypatch.setattr(fer_nla.serve.model, "load_predictor",
                        lambda settings: loaded.append(settings) or Predictor(fake_backend, detector=CentreDetector()))
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options, dict(os.environ), loaded)))
    yield calls
    for key in ENV_KEYS:
        os.environ.pop(key, None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_with_workers_gives_each_its_settings_through_the_environment(uvicorn_calls, capsys) -> None:
    port = free_port()
    assert main(["serve", "--port", str(port), "--workers", "3", "--max-upload-mb", "2.5", "--timeout", "7",
                 "--queue", "4", "--threads", "2"]) == 0
    [(app, options, environ, loaded)] = uvicorn_calls
    assert app == "fer_nla.serve.app:app_from_env" and options["factory"] is True
    assert options["host"] == "127.0.0.1" and options["port"] == port and options["workers"] == 3
    assert loaded == []  # each worker loads its own model
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        assert options["timeout_worker_healthcheck"] == 120  # not killed while importing torch on a busy machine
    settings = ServeSettings.from_env(environ)
    assert settings == ServeSettings(max_upload_bytes=2_500_000, timeout_s=7.0, queue=4, threads=2)
    assert f"http://127.0.0.1:{port}/" in capsys.readouterr().err


def test_serve_with_one_worker_loads_the_model_before_listening_on_loopback(uvicorn_calls, capsys) -> None:
    port = free_port()
    assert main(["serve", "--port", str(port), "--max-pixels", "1000"]) == 0
    [(app, options, environ, loaded)] = uvicorn_calls
    assert isinstance(app, FastAPI) and options == {"host": "127.0.0.1", "port": port, "log_level": "info"}
    assert loaded == [ServeSettings(max_pixels=1000)]
    assert "FER_NLA_SERVE_MAX_PIXELS" not in environ
    with TestClient(app) as client:  # the app serves the model loaded before uvicorn started
        assert client.get("/healthz").json()["limits"]["max_pixels"] == 1000
    assert "model loaded; the page at http://127.0.0.1" in capsys.readouterr().err


def test_a_file_that_is_not_a_model_is_one_line_before_the_server_starts(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("uvicorn started"))
    bad = tmp_path / "best.pt"
    bad.write_text("not a checkpoint")
    assert main(["serve", "--checkpoint", str(bad), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fer-nla serve: error: ") and "Traceback" not in err and str(bad) in err


def test_serve_warns_when_it_listens_beyond_this_machine(uvicorn_calls, capsys) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", str(free_port())]) == 0
    err = capsys.readouterr().err
    assert "listening on 0.0.0.0: anyone who can reach this machine can send photos to it" in err
    assert "the page at http://127.0.0.1:" in err and "http://0.0.0.0" not in err  # a URL that opens here


def test_a_missing_checkpoint_and_an_unknown_model_stop_before_the_server(uvicorn_calls, tmp_path, capsys) -> None:
    assert main(["serve", "--checkpoint", str(tmp_path / "best.pt")]) == 2
    assert f"--checkpoint {tmp_path / 'best.pt'} is missing" in capsys.readouterr().err
    assert main(["serve", "--model", "nope"]) == 2
    assert "no built-in model 'nope'" in capsys.readouterr().err
    assert uvicorn_calls == []


def test_a_taken_port_is_named_with_the_fix(uvicorn_calls, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert (f"--port {port} on 127.0.0.1 is already in use (another server?); stop it or choose another port, "
            f"e.g. --port {port + 1}") in capsys.readouterr().err
    assert uvicorn_calls == []


def test_a_missing_serve_extra_says_how_to_install_it(monkeypatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(InputError, match=r'serving needs uvicorn, not installed here; .*pip install "fer-nla\[serve\]"'):
        require_dependencies()
    assert main(["serve"]) == 2
    assert 'pip install "fer-nla[serve]"' in capsys.readouterr().err


def test_settings_survive_the_environment_and_bad_values_name_the_variable() -> None:
    settings = ServeSettings(checkpoint="runs/x/best.pt", backend="onnx", max_pixels=1234, timeout_s=2.5, queue=0)
    assert ServeSettings.from_env(settings.to_env()) == settings
    assert ServeSettings.from_env({}) == ServeSettings()
    with pytest.raises(InputError, match=r"FER_NLA_SERVE_QUEUE='many' is not a valid int"):
        ServeSettings.from_env({"FER_NLA_SERVE_QUEUE": "many"})
    with pytest.raises(InputError, match=r"queue=-1: expected a whole number, 0 or more"):
        ServeSettings(queue=-1)
    with pytest.raises(InputError, match=r"timeout_s=0: expected a number of seconds above 0"):
        ServeSettings(timeout_s=0)
    with pytest.raises(InputError, match="not both"):
        ServeSettings(model="ferplus-resnet10s", checkpoint="x.pt")


def test_check_port_free_refuses_an_address_of_another_machine() -> None:
    with pytest.raises(InputError, match="is not an address of this machine"):
        check_port_free("192.0.2.1", 8000)  # TEST-NET-1: never a local address


def test_a_worker_builds_its_app_from_the_environment(monkeypatch, fake_backend) -> None:
    import fer_nla.serve.app as app_module

    monkeypatch.setattr(app_module, "load_predictor", lambda settings: Predictor(fake_backend, detector=CentreDetector()))
    monkeypatch.setenv("FER_NLA_SERVE_MAX_PIXELS", "1234")
    monkeypatch.setenv("FER_NLA_SERVE_QUEUE", "3")
    with TestClient(app_module.app_from_env()) as client:
        health = client.get("/healthz").json()
    assert health["limits"]["max_pixels"] == 1234 and health["queue"]["capacity"] == 4


def test_docs_fall_back_to_fastapis_own_page_without_a_local_swagger_ui_5(monkeypatch, tmp_path, fake_backend) -> None:
    import types

    from fer_nla.serve.app import create_app
    from fer_nla.serve.docs import local_swagger_ui

    old = tmp_path / "swagger-ui-4.15.5"
    old.mkdir()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        (old / name).write_text("")
    monkeypatch.setitem(sys.modules, "swagger_ui_bundle", types.SimpleNamespace(swagger_ui_path=old))
    assert local_swagger_ui() is None  # Swagger UI 4 cannot show FastAPI's OpenAPI 3.1
    monkeypatch.setitem(sys.modules, "swagger_ui_bundle", None)  # not installed
    assert local_swagger_ui() is None
    app = create_app(ServeSettings(), predictor_factory=lambda s: Predictor(fake_backend, detector=CentreDetector()))
    with TestClient(app) as client:
        docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text and "/docs-files/" not in docs.text
