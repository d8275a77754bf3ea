"""What a page of the lab is: a name in the navigation bar, its HTML and script under static/,
and the API routes that serve it. ``app.PAGES`` lists them; adding a page is one module that
defines a :class:`Page`, its two static files, and one entry in that list."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Page:
    """``slug`` names the URL (``/slug``), ``static/slug.html`` (the body) and
    ``static/slug.js`` (its ES module); ``routes`` are Starlette routes under ``/api/slug``."""

    slug: str
    title: str
    summary: str
    routes: list = field(default_factory=list)
    close: object = None  # called when the server stops (ends what the page's sessions run)
