"""The few pages a browser lands on before the dashboard exists.

Stripe Checkout and the Customer Portal send the buyer back here. Plain HTML,
no external assets.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response

bp = Blueprint("pages", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – Tonehub</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
padding: 0 1rem; color: #1a1a1a">
<h1>{title}</h1><p>{text}</p></body></html>"""


def _page(title: str, text: str) -> Response:
    html = _PAGE.format(title=escape(title), text=escape(text))
    return Response(html, mimetype="text/html")


@bp.get("/billing/complete")
def billing_complete() -> Response:
    """Where Stripe Checkout and the Customer Portal return to."""
    return _page(
        "Thank you",
        "Your subscription is being set up. The new plan applies as soon as Stripe "
        "confirms it, usually within seconds: GET /v1/billing shows it.",
    )


@bp.get("/billing/cancelled")
def billing_cancelled() -> Response:
    """Where Stripe Checkout returns to when the buyer gives up."""
    return _page(
        "Checkout cancelled", "Nothing was charged. Your plan has not changed."
    )
