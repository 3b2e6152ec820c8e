"""Dashboard views: thin; each calls core (or a connector) and renders a page.

Every page is scoped to the signed-in user's current workspace, checked
against their membership on every request; owner-only pages refuse members.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from apiflask import APIBlueprint
from flask import (
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from connectors.salesforce import connect as sf_connect
from connectors.slack.oauth import start_linked_install
from core import accounts, users
from core.billing.state import plan_in_force
from core.errors import TonehubError, TooManySentences
from core.metering import record_usage_durably
from core.metering.report import usage_report
from core.persistence.models import (
    ApiKey,
    SlackChannel,
    SlackInstallation,
    User,
    Workspace,
)
from core.scoring.engine import check_text
from webapp.dashboard.charts import label_bars, latency_lines, stacked_days
from webapp.extensions import get_db, tonehub
from webapp.metering import LATENCY_KEY

# An APIBlueprint kept out of the OpenAPI document: HTML pages, not the API
# (a plain Blueprint with request hooks trips APIFlask's spec generation).
bp = APIBlueprint("dashboard", __name__, url_prefix="/dashboard", enable_openapi=False)

F = TypeVar("F", bound=Callable[..., Any])

LOGIN_FAILURES = 5
"""Failed sign-ins per email in 15 minutes before sign-in is refused."""

LOGO_MAX_BYTES = 100_000
_SAFE_NEXT = re.compile(r"^/dashboard(/[A-Za-z0-9_\-]+)*/?$")
"""Where sign-in may send back to: a dashboard path, nothing else."""
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


SESSION_KEY = "th:session:{sid}"
USER_SESSIONS = "th:user-sessions:{user}"
SESSION_SECONDS = 7 * 86_400


def _live_user_id() -> str | None:
    """The signed-in user, if the session is still live on the server.

    The cookie only carries a random session id; signing out or changing
    the password deletes it server-side, so a copied cookie stops working.
    """
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    raw = tonehub().redis.get(SESSION_KEY.format(sid=sid))
    return raw.decode() if isinstance(raw, bytes) else None


def login_required(view: F) -> F:
    """Load ``g.user``, ``g.workspace`` and ``g.role`` or send to sign-in."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        db = get_db()
        user_id = _live_user_id()
        user = db.get(User, user_id) if user_id else None
        if user is None:
            return redirect(url_for("dashboard.login", next=request.path))
        ws_id = session.get("workspace_id") or ""
        role = users.role_in(db, user.id, ws_id)
        if role is None:  # no longer a member: fall back to their first workspace
            first = users.memberships(db, user.id)
            if not first:
                session.clear()
                return redirect(url_for("dashboard.login"))
            ws_id, role = first[0].workspace_id, first[0].role
            session["workspace_id"] = ws_id
        g.user, g.role = user, role
        g.workspace = db.get(Workspace, ws_id)
        g.plan = plan_in_force(
            g.workspace, now=datetime.now(UTC), grace=tonehub().billing_grace
        )
        return view(*args, **kwargs)

    return cast(F, wrapped)


def owner_required(view: F) -> F:
    """Owner-only pages: members get 403."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.role != "owner":
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapped)


@bp.before_request
def _refuse_control_characters() -> None:
    """NUL and other control characters in a form field are a 400, not a 500.

    PostgreSQL refuses NUL in text, and no field here needs control characters
    (the playground text may hold newlines and tabs).
    """
    for name, value in request.form.items(multi=True):
        allowed = "\n\r\t" if name == "text" else ""
        if any(ord(c) < 32 and c not in allowed for c in value):
            abort(400, description=f"The field {name!r} holds a control character.")


@bp.after_request
def _security_headers(response: Response) -> Response:
    """No sniffing, no framing, only this app's scripts and images."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'",
    )
    return response


DASHBOARD_MESSAGES = {
    "subscription_exists": "This workspace already has a subscription: use "
    "Manage subscription to change or cancel it.",
    "no_billing_account": "There is no subscription to manage yet: upgrade first.",
}
"""Billing errors reworded for people in the dashboard (the API's name routes)."""


def people_message(exc: TonehubError) -> str:
    """An error as the dashboard says it to people (the API's wording else)."""
    if exc.code == "quota_exceeded":
        return (
            "This month's quota is used up. Upgrade on the Billing page to keep "
            "scoring, or wait for the reset."
        )
    return DASHBOARD_MESSAGES.get(exc.code, exc.message)


@bp.context_processor
def _branding() -> dict[str, Any]:
    ws = g.get("workspace")
    return {
        "brand_name": (ws.display_name if ws is not None else None) or "Tonehub",
        "accent": (ws.accent_color if ws is not None else None) or "#1d4ed8",
        "has_logo": bool(ws is not None and ws.logo_png),
        "tonehub_billing_banner": _banner,
    }


def _banner() -> dict[str, str] | None:
    """A failed payment, or the quota at 80% / 100%."""
    ws = g.get("workspace")
    if ws is None:
        return None
    if ws.payment_failed_at is not None:
        return {
            "kind": "bad",
            "text": "A payment failed. Update the card in the customer portal, or "
            "the workspace returns to Basic after the grace period.",
        }
    quota = g.plan.monthly_quota
    if quota:
        used = tonehub().meter.used(ws.id)
        if used >= quota:
            return {
                "kind": "bad",
                "text": "This month's quota is used up: scoring "
                "is refused until it resets. Upgrade to continue.",
            }
        if used * 100 >= quota * 80:
            return {
                "kind": "",
                "text": f"{used / quota:.0%} of this month's quota is used.",
            }
    return None


# --- sign-up, sign-in -------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Any:
    """Create an account and its workspace."""
    if request.method == "POST":
        try:
            user, workspace = users.sign_up(
                get_db(),
                request.form.get("email", ""),
                request.form.get("password", ""),
            )
        except TonehubError as exc:
            return render_template("dashboard/signup.html", error=exc.message), 400
        _start_session(user.id, workspace.id)
        target = request.args.get("next", "")
        return redirect(
            target if _SAFE_NEXT.match(target) else url_for("dashboard.overview")
        )
    return render_template("dashboard/signup.html")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in (rate limited per email)."""
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        redis = tonehub().redis
        key = "th:login:" + hashlib.sha256(email.encode()).hexdigest()
        # Counted before the check, atomically: parallel guesses cannot get
        # more than LOGIN_FAILURES checks in.
        attempts = int(redis.incr(key))
        if attempts == 1:
            redis.expire(key, 900)
        if attempts > LOGIN_FAILURES:
            return render_template(
                "dashboard/login.html",
                error="Too many failed attempts; try again in 15 minutes.",
            ), 429
        try:
            user = users.sign_in(get_db(), email, request.form.get("password", ""))
        except TonehubError as exc:
            return render_template("dashboard/login.html", error=exc.message), 401
        redis.delete(key)
        first = users.memberships(get_db(), user.id)
        _start_session(user.id, first[0].workspace_id if first else "")
        target = request.args.get("next", "")
        if not _SAFE_NEXT.match(target):
            target = url_for("dashboard.overview")
        return redirect(target)
    return render_template("dashboard/login.html")


def _start_session(user_id: str, workspace_id: str) -> None:
    session.clear()  # a new session id: no fixation
    session.permanent = True
    sid = secrets.token_urlsafe(24)
    redis = tonehub().redis
    with redis.pipeline() as pipe:
        pipe.set(SESSION_KEY.format(sid=sid), user_id, ex=SESSION_SECONDS)
        pipe.sadd(USER_SESSIONS.format(user=user_id), sid)
        pipe.expire(USER_SESSIONS.format(user=user_id), SESSION_SECONDS)
        pipe.execute()
    session["sid"], session["workspace_id"] = sid, workspace_id


def _end_sessions(user_id: str) -> None:
    """Sign the user out everywhere (after a password change)."""
    redis = tonehub().redis
    key = USER_SESSIONS.format(user=user_id)
    for sid in cast("set[bytes]", redis.smembers(key)):
        redis.delete(SESSION_KEY.format(sid=sid.decode()))
    redis.delete(key)


@bp.post("/logout")
def logout() -> Any:
    """Sign out (the session id is deleted server-side)."""
    sid = session.get("sid")
    if isinstance(sid, str):
        tonehub().redis.delete(SESSION_KEY.format(sid=sid))
    session.clear()
    return redirect(url_for("dashboard.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    """Change the password."""
    if request.method == "POST":
        try:
            users.change_password(
                get_db(),
                g.user,
                request.form.get("current", ""),
                request.form.get("new", ""),
            )
        except TonehubError as exc:
            return render_template("dashboard/password.html", error=exc.message), 400
        _end_sessions(g.user.id)  # every other session of this user ends
        _start_session(g.user.id, g.workspace.id)
        flash("Password changed.")
        return redirect(url_for("dashboard.overview"))
    return render_template("dashboard/password.html")


@bp.post("/switch")
@login_required
def switch() -> Any:
    """Switch to another workspace the user belongs to."""
    target = request.form.get("workspace_id", "")
    if users.role_in(get_db(), g.user.id, target) is None:
        abort(404)
    session["workspace_id"] = target
    return redirect(url_for("dashboard.overview"))


# --- overview ---------------------------------------------------------------


@bp.get("/")
@login_required
def overview() -> str:
    """Plan, this month's usage, the last 30 days by source and label."""
    ext = tonehub()
    now = datetime.now(UTC)
    report = usage_report(
        get_db(),
        ext.redis,
        ext.meter,
        workspace_id=g.workspace.id,
        plan=g.plan,
        first=(now - timedelta(days=29)).date(),
        last=now.date(),
        now=now,
    )
    labels: Counter[str] = Counter()
    for day in report["daily"]:
        labels.update(day["by_label"])
    period = report["period"]
    share = (period["used"] / period["limit"] * 100) if period["limit"] else 0
    latency = _latency(g.workspace.id, [d["date"] for d in report["daily"]])
    return render_template(
        "dashboard/overview.html",
        latency=latency,
        report=report,
        period=period,
        share=min(share, 100),
        sources_svg=stacked_days(
            report["daily"], ("api", "slack", "salesforce"), "Scored texts per day"
        ),
        labels_svg=label_bars(dict(labels), "Labels, last 30 days"),
        latency_svg=latency_lines(
            [d["date"] for d in report["daily"]],
            latency,
            "API latency of scoring calls per day, p50 and p95 (ms)",
        ),
        labels=labels,
        memberships=_memberships(),
    )


def _latency(workspace_id: str, days: list[str]) -> dict[str, tuple[float, float]]:
    """API latency p50 and p95 (ms) per day, from the samples the API keeps."""
    with tonehub().redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.lrange(LATENCY_KEY.format(workspace=workspace_id, day=day), 0, -1)
        samples = pipe.execute()
    out = {}
    for day, raw in zip(days, samples, strict=True):
        values = sorted(float(v) for v in raw)
        if values:
            p50 = values[len(values) // 2]
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            out[day] = (p50, p95)
    return out


def _memberships() -> list[tuple[str, str]]:
    db = get_db()
    out = []
    for m in users.memberships(db, g.user.id):
        ws = db.get(Workspace, m.workspace_id)
        if ws is not None:
            out.append((ws.id, ws.display_name or ws.name))
    return out


# --- keys -------------------------------------------------------------------


@bp.get("/keys")
@owner_required
def keys() -> str:
    """The workspace's API keys (and a new key's secret, once)."""
    return render_template(
        "dashboard/keys.html",
        keys=accounts.list_api_keys(get_db(), g.workspace.id),
        new_secret=session.pop("new_secret", None),
    )


@bp.post("/keys")
@owner_required
def create_key() -> Any:
    """Create a key; its secret is shown by the next page, once."""
    name = request.form.get("name", "").strip()[:200] or "key"
    issued = accounts.create_api_key(get_db(), g.workspace.id, name=name)
    session["new_secret"] = issued.secret
    return redirect(url_for("dashboard.keys"), code=303)


@bp.route("/keys/<key_id>/revoke", methods=["GET", "POST"])
@owner_required
def revoke_key(key_id: str) -> Any:
    """Confirm, then revoke (only keys of this workspace)."""
    db = get_db()
    key = db.get(ApiKey, key_id)
    if key is None or key.workspace_id != g.workspace.id:
        abort(404)
    if request.method == "GET":
        return render_template("dashboard/revoke.html", key=key)
    accounts.revoke_api_key(db, g.workspace.id, key_id)
    tonehub().auth.forget_key(key.key_hash)
    flash(f"Key {key.prefix}… revoked.")
    return redirect(url_for("dashboard.keys"))


# --- billing ----------------------------------------------------------------


@bp.get("/billing")
@login_required
def billing() -> str:
    """Plan, subscription status, upgrade and manage buttons."""
    status = tonehub().billing.status(get_db(), g.workspace.id, now=datetime.now(UTC))
    used = tonehub().meter.used(g.workspace.id)
    quota = g.plan.monthly_quota
    share = used / quota * 100 if quota else 0
    return render_template("dashboard/billing.html", status=status, share=share)


@bp.post("/billing/checkout")
@owner_required
def checkout() -> Any:
    """Start Stripe Checkout for plus or pro."""
    try:
        result = tonehub().billing.checkout(
            get_db(), g.workspace.id, request.form.get("plan", "")
        )
    except TonehubError as exc:
        flash(people_message(exc))
        return redirect(url_for("dashboard.billing"))
    return redirect(result["url"], code=303)


@bp.post("/billing/portal")
@owner_required
def portal() -> Any:
    """Open the Stripe Customer Portal."""
    try:
        result = tonehub().billing.portal(get_db(), g.workspace.id)
    except TonehubError as exc:
        flash(people_message(exc))
        return redirect(url_for("dashboard.billing"))
    return redirect(result["url"], code=303)


# --- playground -------------------------------------------------------------


@bp.route("/playground", methods=["GET", "POST"])
@login_required
def playground() -> Any:
    """Score a text; it counts against the quota like an API call."""
    result, error, status, text = None, None, 200, request.form.get("text", "")
    if request.method == "POST":
        ext = tonehub()
        try:
            check_text(text)  # a bad text is told so without using the quota
            admission = ext.meter.admit(g.workspace.id, g.plan, 1)
            admission.raise_if_refused()
            try:
                result = _score_for_people(text)
            except TonehubError:
                ext.meter.refund(g.workspace.id, admission.period, 1)
                raise
            record_usage_durably(
                ext.redis,
                ext.sessions,
                g.workspace.id,
                source="api",
                labels=[result["label"]],
                day=admission.now.date(),
            )
        except TonehubError as exc:
            error, status = people_message(exc), exc.http_status
    return render_template(
        "dashboard/playground.html", result=result, error=error, text=text
    ), status


def _score_for_people(text: str) -> dict[str, Any]:
    """With sentences when the text has few enough, else the whole text."""
    scoring = tonehub().scoring
    try:
        return scoring.score([text], sentences=True)[0]
    except TooManySentences:
        return scoring.score([text])[0]


# --- connectors -------------------------------------------------------------


@bp.get("/connectors")
@login_required
def connectors() -> str:
    """Slack teams and channels; the Salesforce org."""
    db = get_db()
    teams = db.scalars(
        select(SlackInstallation).where(
            SlackInstallation.workspace_id == g.workspace.id
        )
    ).all()
    channels = db.scalars(
        select(SlackChannel).where(SlackChannel.workspace_id == g.workspace.id)
    ).all()
    try:
        salesforce = sf_connect.status(db, g.workspace.id)
    except TonehubError:
        salesforce = None
    ext = tonehub()
    return render_template(
        "dashboard/connectors.html",
        teams=teams,
        channels=channels,
        salesforce=salesforce,
        slack_ready=ext.slack_app is not None,
        salesforce_ready=bool(
            ext.settings.salesforce_client_id and ext.settings.secret_key
        ),
    )


@bp.post("/connectors/slack")
@owner_required
def add_to_slack() -> Any:
    """Start the Slack install linked to this workspace."""
    ext = tonehub()
    if ext.slack_app is None:
        abort(404)
    return redirect(
        start_linked_install(ext.slack_states, g.workspace.id, public_url=""), code=303
    )


@bp.post("/connectors/slack/channels/<team_id>/<channel_id>")
@owner_required
def slack_channel(team_id: str, channel_id: str) -> Any:
    """Change a channel's mode (only this workspace's channels)."""
    db = get_db()
    row = db.get(SlackChannel, (team_id, channel_id))
    if row is None or row.workspace_id != g.workspace.id:
        abort(404)
    mode = request.form.get("mode", "")
    if mode not in ("reactions", "negative", "off"):
        abort(400)
    row.mode, row.enabled = mode, mode != "off"
    db.commit()
    return redirect(url_for("dashboard.connectors"))


@bp.post("/connectors/salesforce")
@owner_required
def salesforce_connect() -> Any:
    """Start connecting a Salesforce org."""
    ext = tonehub()
    if not (ext.settings.salesforce_client_id and ext.settings.secret_key):
        abort(404)
    url = sf_connect.start_connect(ext.settings, ext.redis, g.workspace.id)
    return redirect(url, code=303)


@bp.post("/connectors/salesforce/disconnect")
@owner_required
def salesforce_disconnect() -> Any:
    """Disconnect the org."""
    try:
        sf_connect.disconnect(get_db(), g.workspace.id)
    except TonehubError as exc:
        flash(exc.message)
    return redirect(url_for("dashboard.connectors"))


# --- members and settings ---------------------------------------------------


@bp.get("/members")
@login_required
def members() -> str:
    """Who is in the workspace."""
    return render_template(
        "dashboard/members.html", members=users.members(get_db(), g.workspace.id)
    )


@bp.post("/members/invite")
@owner_required
def invite() -> Any:
    """An invite link (shown; an email backend can send it)."""
    try:
        token = users.invite(
            get_db(),
            g.workspace.id,
            request.form.get("email", ""),
            now=datetime.now(UTC),
        )
    except TonehubError as exc:
        flash(exc.message)
        return redirect(url_for("dashboard.members"))
    public = tonehub().settings.public_url.rstrip("/")
    link = public + url_for("dashboard.accept", token=token)
    mailer = tonehub().mailer
    if mailer is not None:
        email = request.form.get("email", "").strip().lower()
        try:
            mailer.send(
                email,
                f"You are invited to {g.workspace.display_name or g.workspace.name} "
                "on Tonehub",
                f"{g.user.email} invited you to their Tonehub workspace.\n\n"
                f"Join it (the link works once, for 7 days, signed in as {email}):"
                f"\n{link}\n",
            )
        except TonehubError as exc:
            flash(f"{exc.message} Send the link below yourself.")
        else:
            flash(f"An invite was emailed to {email}.")
            return redirect(url_for("dashboard.members"), code=303)
    return render_template(
        "dashboard/members.html",
        members=users.members(get_db(), g.workspace.id),
        link=link,
    )


@bp.post("/members/<user_id>/remove")
@owner_required
def remove(user_id: str) -> Any:
    """Remove a member (not the last owner)."""
    try:
        users.remove_member(get_db(), g.workspace.id, user_id)
    except TonehubError as exc:
        flash(exc.message)
    return redirect(url_for("dashboard.members"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
@login_required
def accept(token: str) -> Any:
    """Show the invite, and join its workspace on a POST (with the CSRF token)."""
    now = datetime.now(UTC)
    try:
        invite = users.find_invite(get_db(), token, g.user, now=now)
        if request.method == "GET":
            ws = get_db().get(Workspace, invite.workspace_id)
            return render_template("dashboard/invite.html", workspace=ws)
        target = users.accept_invite(get_db(), token, g.user, now=now)
    except TonehubError as exc:
        flash(exc.message)
        return redirect(url_for("dashboard.overview"))
    session["workspace_id"] = target
    return redirect(url_for("dashboard.overview"))


@bp.route("/settings", methods=["GET", "POST"])
@owner_required
def settings() -> Any:
    """White-label: display name, accent colour, logo."""
    if request.method == "POST":
        db = get_db()
        ws = db.get(Workspace, g.workspace.id)
        assert ws is not None
        name = request.form.get("display_name", ws.display_name or "").strip()[:100]
        colour = request.form.get("accent_color", ws.accent_color or "").strip()
        if colour and not _COLOUR.match(colour):
            return render_template(
                "dashboard/settings.html", error="Use a colour like #1d4ed8."
            ), 400
        logo = request.files.get("logo")
        if logo is not None and logo.filename:
            data = logo.read(LOGO_MAX_BYTES + 1)
            if len(data) > LOGO_MAX_BYTES or not data.startswith(b"\x89PNG\r\n\x1a\n"):
                return render_template(
                    "dashboard/settings.html",
                    error="The logo must be a PNG under 100 KB.",
                ), 400
            ws.logo_png = data
        ws.display_name, ws.accent_color = name or None, colour or None
        db.commit()
        flash("Saved.")
        return redirect(url_for("dashboard.settings"))
    return render_template("dashboard/settings.html")


@bp.get("/logo.png")
@login_required
def logo() -> Any:
    """The workspace's logo."""
    if not g.workspace.logo_png:
        abort(404)
    return Response(g.workspace.logo_png, mimetype="image/png")
