"""Passkey pages: manage the account's passkeys, answer a login with one, sign in with one.

Pages and form handling only: every rule is in push2fa.domain.passkeys. The ``options``
routes answer JSON for ``navigator.credentials``; the answer itself comes back as an
ordinary CSRF-protected form POST, so a login ends in the same redirect as a push approval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from quart import (
    Blueprint,
    Response,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.wrappers import Response as WerkzeugResponse
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from push2fa import services
from push2fa.domain import challenges, passkeys, sessions
from push2fa.domain.login_flow import SESSION_KEY, request_context, send_push
from push2fa.domain.passwords import verify_password
from push2fa.models import ChallengePurpose, ChallengeStatus, User
from push2fa.web.forms import CSRFOnlyForm, Form, no_control_characters
from push2fa.web.limits import MINUTE, rate_limit
from push2fa.web.policy import login_required, public
from push2fa.web.twofa.views import _finish as finish_login
from push2fa.web.urls import safe_next
from push2fa.webauthn import MAX_CREDENTIAL_JSON

blueprint = Blueprint("passkeys", __name__, url_prefix="/passkeys")

Page = str | tuple[str, int] | Response | WerkzeugResponse
NOT_FRESH = "Confirm it is you with your second factor first."


class AnswerForm(Form):
    """A ceremony's answer: which ceremony, and the browser's credential JSON."""

    ceremony = HiddenField(validators=[DataRequired(), Length(max=64)])
    credential = HiddenField(validators=[DataRequired(), Length(max=MAX_CREDENTIAL_JSON)])


class AddForm(AnswerForm):
    name = StringField("Name", validators=[Optional(), Length(max=80), no_control_characters])


class RenameForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=80), no_control_characters])


class StartAddForm(Form):
    password = PasswordField("Password", validators=[Optional(), Length(max=1024)])


def _refused(message: str, status: int = 400) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


async def _begin(start: Callable[[AsyncSession], Awaitable[passkeys.Started]]) -> passkeys.Started:
    """Start a ceremony to the end even if the browser leaves meanwhile (the login page
    asks for autofill options as it loads): a request cancelled inside a commit would
    leave the connection pool to roll back a half-finished transaction."""

    async def run() -> passkeys.Started:
        async with services.current().db.session() as db:
            return await start(db)

    return await asyncio.shield(run())


def _options(started: passkeys.Started) -> Response:
    response = jsonify({"ceremony": started.ceremony, "publicKey": started.options})
    response.headers["Cache-Control"] = "no-store"
    return response


async def _has_second_factor(user: User) -> bool:
    if user.push_enabled:
        return True
    async with services.current().db.session() as db:
        return await passkeys.count(db, user.id) > 0


# --- managing the account's passkeys ------------------------------------------------------


@blueprint.get("/")
@login_required
@rate_limit(60, MINUTE)
async def manage() -> Page:
    async with services.current().db.session() as db:
        keys = await passkeys.listed(db, g.user.id)
    has_factor = g.user.push_enabled or bool(keys)
    page = await render_template(
        "passkeys/manage.html",
        passkeys=keys,
        fresh=sessions.is_fresh(g.user),
        needs_password=not has_factor,
        form=await CSRFOnlyForm.from_request(),
        add_form=await AddForm.from_request(),
    )
    response = Response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post("/register/options")
@login_required
@rate_limit(10, MINUTE)
async def register_options() -> Page:
    """Start adding a passkey: a fresh second factor, or (with none yet) the password."""
    form = await StartAddForm.from_request()
    if not form.validate():
        return _refused("Bad request.")
    svc = services.current()
    if await _has_second_factor(g.user):
        if not sessions.is_fresh(g.user):
            return _refused(NOT_FRESH, 403)
    elif not await verify_password(
        form.password.data or "", g.user.password_hash, svc.settings.bcrypt_rounds
    ):
        return _refused("That password is not right.", 403)
    user = g.user
    started = await _begin(lambda db: passkeys.begin_registration(db, svc.settings, user))
    return _options(started)


@blueprint.post("/register")
@login_required
@rate_limit(10, MINUTE)
async def register() -> Page:
    form = await AddForm.from_request()
    if not form.validate():
        await flash("The passkey was not added.", "danger")
        return redirect(url_for("passkeys.manage"), 303)
    svc = services.current()
    try:
        async with svc.db.session() as db:
            passkey = await passkeys.register(
                db, svc.settings, g.user, form.ceremony.data, form.credential.data, form.name.data
            )
    except passkeys.PasskeyRefused as exc:
        await flash(str(exc), "danger")
        return redirect(url_for("passkeys.manage"), 303)
    await flash(f"Passkey “{passkey.name}” added.", "success")
    return redirect(url_for("passkeys.manage"), 303)


@blueprint.post("/<int:passkey_id>/rename")
@login_required
@rate_limit(30, MINUTE)
async def rename(passkey_id: int) -> Page:
    form = await RenameForm.from_request()
    if not form.validate():
        await flash("Enter a name (80 characters at most).", "danger")
        return redirect(url_for("passkeys.manage"), 303)
    try:
        async with services.current().db.session() as db:
            changed = await passkeys.rename(db, g.user.id, passkey_id, form.name.data)
    except passkeys.PasskeyRefused as exc:
        await flash(str(exc), "danger")
        return redirect(url_for("passkeys.manage"), 303)
    await flash("Passkey renamed." if changed else "No such passkey.", "info")
    return redirect(url_for("passkeys.manage"), 303)


@blueprint.post("/<int:passkey_id>/remove")
@login_required
@rate_limit(30, MINUTE)
async def remove(passkey_id: int) -> Page:
    if not sessions.is_fresh(g.user):
        await flash(NOT_FRESH, "warning")
        return redirect(url_for("passkeys.manage"), 303)
    svc = services.current()
    async with svc.db.session() as db:
        removed = await passkeys.remove(db, svc.settings, g.user, passkey_id)
    await flash("Passkey removed." if removed else "No such passkey.", "info")
    return redirect(url_for("passkeys.manage"), 303)


@blueprint.post("/confirm")
@login_required
@rate_limit(6, MINUTE)
async def confirm() -> Page:
    """Ask for a second factor now (the phone, or a passkey), then come back here."""
    svc = services.current()
    context = request_context(next_path=url_for("passkeys.manage"))
    async with svc.db.session() as db:
        has_passkey = await passkeys.count(db, g.user.id) > 0
        challenge = None
        if g.user.push_enabled:
            outcome = await send_push(db, g.user, context, ChallengePurpose.REAUTH)
            challenge = outcome.challenge
            if challenge is None and outcome.problem:
                await flash(outcome.problem, "warning")
        if challenge is None and has_passkey:
            challenge = await passkeys.begin_without_push(
                db, svc.settings, g.user, context, ChallengePurpose.REAUTH
            )
    if challenge is None:
        return redirect(url_for("passkeys.manage"), 303)
    session[SESSION_KEY] = challenge.public_id
    return redirect(url_for("twofa.wait"), 303)


# --- a passkey as the second factor of a login ------------------------------------------


async def _bound() -> Any:
    async with services.current().db.session() as db:
        return await challenges.by_public_id(db, session.get(SESSION_KEY))


@blueprint.post("/second-factor/options")
@public
@rate_limit(20, MINUTE)
async def second_factor_options() -> Page:
    challenge = await _bound()
    if challenge is None or not _may_answer(challenge.purpose, challenge.user_id):
        return _refused("Please log in again.", 403)
    svc = services.current()
    try:
        started = await _begin(lambda db: passkeys.begin_second_factor(db, svc.settings, challenge))
    except passkeys.PasskeyRefused as exc:
        return _refused(str(exc), 409)
    return _options(started)


def _may_answer(purpose: str, user_id: int) -> bool:
    """Confirming a change must be done by the same logged-in user who asked for it."""
    if purpose == ChallengePurpose.LOGIN:
        return True
    return g.user is not None and g.user.id == user_id


@blueprint.post("/second-factor")
@public
@rate_limit(10, MINUTE)
async def second_factor() -> Page:
    form = await AnswerForm.from_request()
    if not form.validate():
        await flash("The passkey answer is missing.", "danger")
        return redirect(url_for("twofa.wait"), 303)
    svc = services.current()
    trust = (await request.form).get("trust") in {"y", "on", "1", "true"}
    async with svc.db.session() as db:
        challenge = await challenges.by_public_id(db, session.get(SESSION_KEY))
        if challenge is None or not _may_answer(challenge.purpose, challenge.user_id):
            await flash("Please log in.", "info")
            return redirect(url_for("auth.login"), 303)
        if challenge.status != ChallengeStatus.PENDING:
            await flash("This login request is no longer waiting for an answer.", "warning")
            return redirect(url_for("twofa.wait"), 303)
        try:
            consumed = await passkeys.answer_second_factor(
                db,
                svc.settings,
                svc.realtime,
                challenge,
                form.ceremony.data,
                form.credential.data,
            )
        except passkeys.PasskeyRefused as exc:
            await flash(str(exc), "danger")
            return redirect(url_for("twofa.wait"), 303)
        return await finish_login(db, consumed, "passkey", trust)


# --- passkey sign-in: no password, no push --------------------------------------------------


@blueprint.post("/sign-in/options")
@public
@rate_limit(30, MINUTE)
async def sign_in_options() -> Page:
    svc = services.current()
    started = await _begin(lambda db: passkeys.begin_sign_in(db, svc.settings))
    return _options(started)


@blueprint.post("/sign-in")
@public
@rate_limit(10, MINUTE)
async def sign_in() -> Page:
    form = await AnswerForm.from_request()
    next_path = safe_next((await request.form).get("next"))
    if not form.validate():
        await flash("The passkey answer is missing.", "danger")
        return redirect(url_for("auth.login"), 303)
    if g.user is not None:
        return redirect(next_path, 303)
    svc = services.current()
    context = request_context(remember=False, next_path=next_path)
    async with svc.db.session() as db:
        try:
            consumed = await passkeys.sign_in(
                db, svc.settings, svc.realtime, form.ceremony.data, form.credential.data, context
            )
        except passkeys.PasskeyRefused as exc:
            await flash(str(exc), "danger")
            return redirect(url_for("auth.login", next=next_path), 303)
        return await finish_login(db, consumed, "passkey", False)


# --- what other pages show of passkeys ---------------------------------------------------

OFFERED_ON = {"twofa.wait", "account.security"}


@blueprint.app_context_processor
async def _passkey_offer() -> dict[str, object]:
    """The wait page offers a passkey to an account that has one (first, when no push
    went out); the security page links to the passkeys. Other pages pay nothing."""
    if request.endpoint not in OFFERED_ON:
        return {}
    async with services.current().db.session() as db:
        if request.endpoint == "account.security":
            return {"passkey_count": await passkeys.count(db, g.user.id)}
        challenge = await challenges.by_public_id(db, session.get(SESSION_KEY))
        if challenge is None:
            return {}
        return {
            "passkey_count": await passkeys.count(db, challenge.user_id),
            "passkey_first": challenge.provider_uuid is None,  # no push went out
        }
