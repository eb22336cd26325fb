"""Home and profile pages."""

from __future__ import annotations

from quart import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select, update
from werkzeug.wrappers import Response as WerkzeugResponse

from push2fa import services
from push2fa.domain import recovery_codes, sessions, trusted_browsers
from push2fa.models import User
from push2fa.web.auth.forms import USERNAME_RE
from push2fa.web.avatars import identicon_svg
from push2fa.web.limits import MINUTE, posts_only, rate_exempt, rate_limit
from push2fa.web.main.forms import EditProfileForm
from push2fa.web.policy import login_required, public

blueprint = Blueprint("main", __name__)

MAX_USERNAME_IN_URL = 64


@blueprint.get("/")
@public
@rate_exempt
async def index() -> str:
    if g.user is None:
        return await render_template("index.html")
    async with services.current().db.session() as db:
        codes_left = await recovery_codes.remaining(db, g.user.id)
        trusted_count = len(await trusted_browsers.listed(db, g.user.id))
        active_sessions = len(await sessions.listed(db, services.settings(), g.user.id))
    return await render_template(
        "index.html",
        phones=1 if g.user.authy_id is not None else 0,
        codes_left=codes_left,
        low_water=recovery_codes.LOW_WATER,
        trusted_browsers=trusted_count,
        active_sessions=active_sessions,
    )


async def _user_by_name(username: str) -> User:
    # A name no account can have is not worth a query (and NUL would make PostgreSQL fail).
    if len(username) > MAX_USERNAME_IN_URL or not USERNAME_RE.match(username):
        abort(404)
    async with services.current().db.session() as db:
        user = (
            await db.execute(select(User).where(func.lower(User.username) == username.lower()))
        ).scalar_one_or_none()
    if user is None:
        abort(404)
    return user


@blueprint.get("/user/<username>")
@login_required
@rate_limit(120, MINUTE)
async def profile(username: str) -> str:
    return await render_template("profile.html", profile=await _user_by_name(username))


@blueprint.get("/user/<username>/avatar.svg")
@public
@rate_limit(240, MINUTE)
async def avatar(username: str) -> Response:
    if len(username) > MAX_USERNAME_IN_URL:
        abort(404)
    response = Response(identicon_svg(username), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@blueprint.route("/profile/edit", methods=["GET", "POST"])
@login_required
@rate_limit(limits=[posts_only(20)])
async def edit_profile() -> str | tuple[str, int] | WerkzeugResponse:
    form = await EditProfileForm.from_request(about_me=g.user.about_me)
    if await form.validate_on_submit():
        async with services.current().db.session() as db:
            await db.execute(
                update(User).where(User.id == g.user.id).values(about_me=form.about_me.data or "")
            )
            await db.commit()
        await flash("Your changes have been saved.", "success")
        return redirect(url_for("main.profile", username=g.user.username))
    status = 400 if request.method == "POST" else 200
    return await render_template("edit_profile.html", form=form), status
