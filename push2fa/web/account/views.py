"""The user's own security pages: active sessions, history, trusted browsers, recovery
codes, password change, and the e-mailed "this wasn't me" link. Rules live in
`push2fa.domain`; these views are forms, pages and redirects."""

from __future__ import annotations

from quart import (
    Blueprint,
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response as WerkzeugResponse

from push2fa import services
from push2fa.domain import (
    phones,
    protection,
    reports,
    sessions,
    stepup,
    trusted_browsers,
)
from push2fa.domain import (
    recovery_codes as recovery,
)
from push2fa.domain.useragent import describe
from push2fa.models import AuditEvent, ChallengePurpose, User
from push2fa.web.account import history
from push2fa.web.auth.forms import ChangePasswordForm
from push2fa.web.forms import CSRFOnlyForm
from push2fa.web.limits import MINUTE, rate_limit
from push2fa.web.policy import login_required, public

blueprint = Blueprint("account", __name__, url_prefix="/account")

Page = str | tuple[str, int] | Response | WerkzeugResponse

# Where a confirmation with the phone may return to: the pages that ask for one.
CONFIRM_RETURNS = {"security": "account.security", "password": "account.change_password"}
# The newest rows the history groups and pages through (about 50 pages of attempts).
HISTORY_WINDOW = 1000
# Phones are the push service's 64-bit random ids, not this database's row ids.
PHONE_ID_MAX = 2**63 - 1


@blueprint.get("/security")
@login_required
@rate_limit(60, MINUTE)
async def security() -> Page:
    async with services.current().db.session() as db:
        events = (
            (
                await db.execute(
                    select(AuditEvent)
                    .where(AuditEvent.user_id == g.user.id)
                    .order_by(AuditEvent.id.desc())
                    .limit(HISTORY_WINDOW)
                )
            )
            .scalars()
            .all()
        )
        devices = await trusted_browsers.listed(db, g.user.id)
        codes_left = await recovery.remaining(db, g.user.id)
        logins = await sessions.listed(db, services.settings(), g.user.id)
    svc = services.current()
    phone_list = None
    if g.user.push_enabled:
        phone_list = await phones.listed(svc.settings, svc.push_client(), g.user)
    requested = request.args.get("page", default=1, type=int)
    return await render_template(
        "account/security.html",
        history=history.page(history.group(events), requested),
        devices=devices,
        phones=phone_list,
        logins=logins,
        this_login=sessions.current(),
        codes_left=codes_left,
        describe=describe,
        form=await CSRFOnlyForm.from_request(),
        low_water=recovery.LOW_WATER,
        fresh=not stepup.needs_second_factor(g.user),
    )


@blueprint.post("/sessions/<int:session_id>/end")
@login_required
@rate_limit(30, MINUTE)
async def end_session(session_id: int) -> Page:
    """Log out one of the user's own sessions (another account's id matches nothing)."""
    return await _end_sessions(session_id)


@blueprint.post("/sessions/end-others")
@login_required
@rate_limit(30, MINUTE)
async def end_other_sessions() -> Page:
    """Log out everywhere else: every session of the user but this browser's."""
    return await _end_sessions(None)


async def _end_sessions(session_id: int | None) -> Page:
    here = sessions.current()
    assert here is not None  # login_required: a live session
    async with services.current().db.session() as db:
        if session_id == here.id:
            await sessions.log_out(db)
            await flash("You have been logged out.", "info")
            return redirect(url_for("main.index"), 303)
        if session_id is None:
            count = await sessions.end(db, g.user.id, except_id=here.id, reason="ended_by_user")
        else:
            count = await sessions.end(db, g.user.id, session_id=session_id, reason="ended_by_user")
        await db.commit()
    if session_id is not None and count == 0:
        await flash("That session is not one of yours, or has already ended.", "warning")
        return redirect(url_for("account.security"), 303)
    await flash(f"{count} session{'s' if count != 1 else ''} logged out.", "info")
    return redirect(url_for("account.security"), 303)


@blueprint.post(f"/phones/<int(max={PHONE_ID_MAX}):device_id>/remove")
@login_required
@rate_limit(30, MINUTE)
async def remove_phone(device_id: int) -> Page:
    """Remove one of the user's phones at once (another account's phone is refused). Like
    turning 2FA off, it needs a fresh second factor: a stolen session must not be able to
    take the owner's phone away."""
    if stepup.needs_second_factor(g.user):
        return await _confirm_with_phone("security")
    async with services.current().db.session() as db:
        problem = await phones.remove(db, services.current().push_client(), g.user, device_id)
    if problem is None:
        await flash("Phone removed: it can no longer approve your logins.", "info")
    else:
        await flash(problem, "warning")
    return redirect(url_for("account.security", _anchor="phones"), 303)


@blueprint.post(f"/phones/<int(max={PHONE_ID_MAX}):device_id>/test-push")
@login_required
@rate_limit(10, MINUTE)
async def test_phone_push(device_id: int) -> Page:
    category, message = await phones.test_push(services.current().push_client(), g.user, device_id)
    await flash(message, category)
    return redirect(url_for("account.security", _anchor="phones"), 303)


@blueprint.post("/trusted/<int:device_id>/revoke")
@login_required
@rate_limit(30, MINUTE)
async def revoke_trusted(device_id: int) -> Page:
    return await _revoke(device_id)


@blueprint.post("/trusted/revoke-all")
@login_required
@rate_limit(30, MINUTE)
async def revoke_all_trusted() -> Page:
    return await _revoke(None)


async def _revoke(device_id: int | None) -> Page:
    async with services.current().db.session() as db:
        count = await trusted_browsers.revoke(db, g.user.id, device_id)
        await db.commit()
    await flash(f"{count} trusted browser{'s' if count != 1 else ''} removed.", "info")
    return redirect(url_for("account.security"), 303)


@blueprint.post("/recovery-codes")
@login_required
@rate_limit(10, MINUTE)
async def recovery_codes() -> Page:
    if not g.user.push_enabled:
        return redirect(url_for("account.security"), 303)
    if stepup.needs_second_factor(g.user):
        return await _confirm_with_phone("security")
    svc = services.current()
    async with svc.db.session() as db:
        codes = await stepup.regenerate_codes(db, svc.settings, g.user)
    page = await render_template("account/recovery_codes.html", codes=codes)
    response = Response(page)
    response.headers["Cache-Control"] = "no-store, max-age=0"
    return response


@blueprint.post("/confirm")
@login_required
@rate_limit(10, MINUTE)
async def confirm() -> Page:
    """Confirm it is you with the second factor before a sensitive change."""
    back = (await request.form).get("back", "security")
    if back not in CONFIRM_RETURNS or not g.user.push_enabled:
        await flash("Nothing to confirm.", "danger")
        return redirect(url_for("account.security"), 303)
    return await _confirm_with_phone(back)


async def _confirm_with_phone(back: str) -> Page:
    """Ask the phone (or a code) to confirm before a sensitive change."""
    page = url_for(CONFIRM_RETURNS[back])
    async with services.current().db.session() as db:
        outcome = await stepup.ask_phone(db, g.user, ChallengePurpose.REAUTH, page)
    if outcome.challenge is None:
        await flash(outcome.problem or "", "danger")
        return redirect(page, 303)
    await flash("Approve on your phone to confirm it is you, then try again.", "info")
    return redirect(url_for("twofa.wait"), 303)


@blueprint.route("/password", methods=["GET", "POST"])
@login_required
@rate_limit(10, MINUTE)
async def change_password() -> Page:
    form = await ChangePasswordForm.from_request()
    step_up = stepup.needs_second_factor(g.user)
    if step_up or not await form.validate_on_submit():
        if step_up and request.method == "POST":
            await flash("Confirm it is you with your phone or a code first.", "warning")
        status = 400 if request.method == "POST" else 200
        page = await render_template("account/change_password.html", form=form, step_up=step_up)
        return page, status
    svc = services.current()
    async with svc.db.session() as db:
        problem = await stepup.change_password(
            db, svc.settings, g.user, form.current.data, form.password.data
        )
    if problem is not None:
        form[problem.field].errors = [problem.message]
        page = await render_template("account/change_password.html", form=form, step_up=False)
        return page, 400
    await flash("Your password has been changed. Other sessions were logged out.", "success")
    return redirect(url_for("main.index"), 303)


@blueprint.route("/report/<token>", methods=["GET", "POST"])
@public
@rate_limit(10, MINUTE)
async def report(token: str) -> Page:
    """The e-mailed "this wasn't me" link: confirm, then lock the account down. Once."""
    svc = services.current()
    link = reports.read_token(svc.settings.secret_key, token)
    form = await CSRFOnlyForm.from_request()
    if link is None:
        await flash("That link is invalid or has expired.", "danger")
        return redirect(url_for("main.index"))
    async with svc.db.session() as db:
        if await reports.is_spent(db, link):
            return await _report_already_used()
        if request.method == "GET":
            return await render_template("account/report.html", form=form)
        if await db.get(User, link.user_id) is None:  # the account is gone since the mail
            await flash("That link is invalid or has expired.", "danger")
            return redirect(url_for("main.index"))
        if not await reports.spend(db, link):
            return await _report_already_used()
        await protection.report_not_me(db, svc.settings, svc.realtime, link.user_id, "email")
    await flash(
        "Thank you. Every session of the account has been ended and push requests are paused. "
        "You will be asked for a new password at your next login.",
        "success",
    )
    return redirect(url_for("auth.login"), 303)


async def _report_already_used() -> Page:
    await flash(
        "This link has already been used: the account was secured then, and nothing more "
        "was changed. If something still looks wrong, reset your password.",
        "warning",
    )
    return redirect(url_for("auth.login"), 303)
