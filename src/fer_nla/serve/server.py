"""Running the app under uvicorn: what ``fer-nla serve`` calls once its flags are parsed."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable

from fer_nla.serve import require_dependencies
from fer_nla.serve.network import check_port_free
from fer_nla.serve.settings import ServeSettings

APP_FACTORY = "fer_nla.serve.app:app_from_env"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Seconds uvicorn's supervisor waits for a worker's health-check answer before it kills the worker
# (uvicorn's default is 5). A worker importing torch and loading the model can leave its answering
# thread unscheduled for longer on a busy machine; with 5 s such workers were killed and restarted
# again and again (seen on 2 busy vCPUs).
WORKER_HEALTHCHECK_S = 120


def run_server(settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
               log_level: str = "info", say: Callable[[str], None] = print) -> None:
    """Serves ``settings`` on ``host:port`` until stopped (Ctrl+C, SIGTERM); ``say`` gets the
    progress lines (the model loaded, the page's address).

    Everything that can be refused is checked first, each as an :class:`~fer_nla.errors.InputError`
    naming the fix: the serve extra missing, an unknown model or missing checkpoint, a port in
    use. With one worker the model is then loaded in this process before uvicorn listens (a file
    that is not a model is refused in one line, not in a server traceback). With ``workers`` > 1
    uvicorn starts that many processes from :data:`APP_FACTORY`; the settings reach them as
    ``FER_NLA_SERVE_*`` variables (:meth:`ServeSettings.to_env`) set in this process's
    environment, which they inherit, and each loads the model when it starts."""
    require_dependencies()
    settings.check_model()
    check_port_free(host, port)
    import uvicorn

    from fer_nla.serve.app import create_app
    from fer_nla.serve.model import load_predictor

    local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # every interface: this machine's URL
    shown = f"[{local}]" if ":" in local else local
    if host not in LOOPBACK:
        say(f"listening on {host}: anyone who can reach this machine can send photos to it")
    if workers == 1:
        predictor = load_predictor(settings)
        say(f"model loaded; the page at http://{shown}:{port}/, API docs at http://{shown}:{port}/docs (Ctrl+C stops)")
        uvicorn.run(create_app(settings, predictor_factory=lambda _: predictor), host=host, port=port,
                    log_level=log_level)
        return
    os.environ.update(settings.to_env())
    say(f"{workers} workers, each loading the model; the page at http://{shown}:{port}/, API docs at "
        f"http://{shown}:{port}/docs (Ctrl+C stops)")
    options = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:  # uvicorn 0.30 and later
        options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_S
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level, **options)
