"""The lab's web app: the pages of :data:`PAGES`, their API routes, the static files, and JSON
answers for every error.

A page is a :class:`~graphgrad.lab.page.Page` from its own module plus ``static/SLUG.html`` (its
body) and ``static/SLUG.js`` (its script); adding one to :data:`PAGES` puts it in the
navigation bar, serves it at ``/SLUG`` and mounts its routes.
"""

from __future__ import annotations

import contextlib
import html
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import backprop_page, graph_page, sweep_page, train_page
from .limits import LIMITS, LabError
from .web import answer

STATIC = Path(__file__).parent / "static"
PAGES = [graph_page.PAGE, backprop_page.PAGE, train_page.PAGE, sweep_page.PAGE]
LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]


def create_app(allowed_hosts=None, sweeps=None) -> Starlette:
    """The Starlette app. ``allowed_hosts`` are the Host headers it answers (loopback names
    by default, so that a web page elsewhere cannot reach it through DNS rebinding);
    ``sweeps`` is the folder under which the sweep page opens and starts sweeps (the working
    directory by default).

    >>> app = create_app()
    >>> sorted(r.path for r in app.routes if getattr(r, "path", "").startswith("/api/backprop"))
    ['/api/backprop', '/api/backprop/seed']
    """
    routes = [Route("/", index), Route("/api/pages", pages)]
    for page in PAGES:
        routes.append(Route(f"/{page.slug}", _page_view(page)))
        routes += page.routes
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware,
                               allowed_hosts=allowed_hosts or LOCAL_HOSTS)],
        exception_handlers={LabError: _lab_error, HTTPException: _http_error,
                            Exception: _server_error},
        lifespan=_lifespan,
    )
    app.state.sweeps_root = Path(sweeps if sweeps is not None else Path.cwd()).resolve()
    return app


@contextlib.asynccontextmanager
async def _lifespan(app):
    yield
    for page in PAGES:  # stop the training threads with the server
        if page.close is not None:
            page.close()


def _shell(title: str, slug: str, body: str) -> str:
    nav = "".join(
        f'<a href="/{p.slug}"{" class=current" if p.slug == slug else ""}>'
        f"{html.escape(p.title)}</a>" for p in PAGES)
    return ((STATIC / "shell.html").read_text(encoding="utf-8")
            .replace("{{title}}", html.escape(title)).replace("{{nav}}", nav)
            .replace("{{slug}}", slug).replace("{{body}}", body))


def _page_view(page):
    async def view(request):
        body = (STATIC / f"{page.slug}.html").read_text(encoding="utf-8")
        return HTMLResponse(_shell(f"{page.title} · graphgrad lab", page.slug, body))

    return view


async def index(request):
    cards = "".join(
        f'<a class="card" href="/{p.slug}"><h2>{html.escape(p.title)}</h2>'
        f"<p>{html.escape(p.summary)}</p></a>" for p in PAGES)
    body = ('<section class="intro"><h1>graphgrad lab</h1><p>The seeds\' demos on graphgrad\'s '
            "own engine: the scheduler's real events, the real gradients, the real training "
            "loop and its verdicts. Every page keeps its settings in the URL.</p></section>"
            f'<section class="cards">{cards}</section>')
    return HTMLResponse(_shell("graphgrad lab", "index", body))


async def pages(request):
    return answer({"pages": [{"slug": p.slug, "title": p.title, "summary": p.summary}
                             for p in PAGES],
                   "limits": LIMITS.__dict__})


async def _lab_error(request, exc: LabError):
    return JSONResponse({"error": exc.message, "status": exc.status}, status_code=exc.status)


async def _http_error(request, exc: HTTPException):
    message = {404: f"no such page or endpoint: {request.url.path}",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(
        exc.status_code, exc.detail)
    return JSONResponse({"error": message, "status": exc.status_code},
                        status_code=exc.status_code)


async def _server_error(request, exc: Exception):
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}", "status": 500},
                        status_code=500)
