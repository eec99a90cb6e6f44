"""The web page: ``frontend/dist`` (built by ``make frontend``) served beside the API.

One process serves both, so the page calls the API on its own origin. ``GET /`` answers
with the page only when the client prefers HTML (browsers ask for ``text/html`` first);
curl (``*/*``) and API clients (``application/json``) keep getting the API's JSON from
:func:`braintumor.api.classify_routes.index`. The page's scripts, styles and icons live under
``/assets/``; no other path is taken from the API.
"""

from __future__ import annotations

import html
from pathlib import Path

from flask import Blueprint, Response, abort, make_response, request, send_from_directory

from braintumor.api.service import service

bp = Blueprint("frontend", __name__)

#: Vite puts a content hash in every asset name: a changed file gets a new name.
ASSET_MAX_AGE = 365 * 24 * 3600

#: The page talks to its own origin (or VITE_API_BASE); images arrive as data: URLs.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self' http: https:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
])

MISSING_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Brain MRI classifier: web page not built</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;
color:#e8eef5;background:#0b1016}}code{{background:#1b2633;padding:.1em .35em;border-radius:4px}}
a{{color:#8fc7ff}}</style>
</head>
<body>
<h1>The web page is not built yet</h1>
<p>The API is running; only the page is missing from <code>{dist}</code>.</p>
<p>Build it with <code>make frontend</code> (needs Node.js 20.19 or newer and npm), or let
<code>make run</code> build it before it starts the server.</p>
<p>The API itself works without it: <a href="/api/health">/api/health</a>,
<a href="/api/classes">/api/classes</a>, <code>POST /api/classify</code>.</p>
<p><small>Research software, not a medical device.</small></p>
</body>
</html>
"""


def wants_html() -> bool:
    """The client prefers an HTML page to JSON (a browser); ties and ``*/*`` go to JSON."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def dist_dir() -> Path:
    return service().settings.FRONTEND_DIST


def index_page() -> Response:
    """The built page, or a short page saying how to build it."""
    dist = dist_dir()
    if (dist / "index.html").is_file():
        response = send_from_directory(dist, "index.html", max_age=0)
        response.headers["Cache-Control"] = "no-cache"
    else:
        response = make_response(MISSING_PAGE.format(dist=html.escape(str(dist))), 200)
        response.mimetype = "text/html"
        response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/assets/<path:filename>")
def asset(filename: str):
    assets = dist_dir() / "assets"
    if not assets.is_dir():
        abort(404)
    # send_from_directory refuses paths that leave the folder (404)
    response = send_from_directory(assets, filename, max_age=ASSET_MAX_AGE)
    response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
