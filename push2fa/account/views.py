"""The user's own security pages: history, trusted browsers, recovery codes, password
change, and the e-mailed "this wasn't me" link."""

from __future__ import annotations

from quart import (
    Blueprint,
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select, update
from werkzeug.wrappers import Response as WerkzeugResponse

from push2fa import audit, protection, services
from push2fa.accounts import read_report_token, second_factor_is_fresh, start_session
from push2fa.auth.forms import ChangePasswordForm
from push2fa.forms import CSRFOnlyForm
from push2fa.limits import MINUTE, rate_limit
from push2fa.models import AuditEvent, ChallengePurpose, User, utcnow
from push2fa.passwords import hash_password, verify_password
from push2fa.policy import login_required, public
from push2fa.twofa import recovery, trusted
from push2fa.twofa.flow import SESSION_KEY, request_context, send_push
from push2fa.useragent import describe

blueprint = Blueprint("account", __name__, url_prefix="/account")

Page = str | tuple[str, int] | Response | WerkzeugResponse

HISTORY_LIMIT = 100
UNUSUAL = {
    "push.denied",
    "push.reported",
    "auth.failure",
    "twofa.locked",
    "login.password_failed",
    "twofa.disabled",
    "recovery_code.used",
    "push.refused",
}


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
                    .limit(HISTORY_LIMIT)
                )
            )
            .scalars()
            .all()
        )
        devices = await trusted.listed(db, g.user.id)
        codes_left = await recovery.remaining(db, g.user.id)
    return await render_template(
        "account/security.html",
        events=events,
        devices=devices,
        codes_left=codes_left,
        unusual=UNUSUAL,
        describe=describe,
        form=await CSRFOnlyForm.from_request(),
        low_water=recovery.LOW_WATER,
        fresh=second_factor_is_fresh(),
    )


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
        count = await trusted.revoke(db, g.user.id, device_id)
        await db.commit()
    await flash(f"{count} trusted browser{'s' if count != 1 else ''} removed.", "info")
    return redirect(url_for("account.security"), 303)


@blueprint.post("/recovery-codes")
@login_required
@rate_limit(10, MINUTE)
async def recovery_codes() -> Page:
    if not g.user.push_enabled:
        return redirect(url_for("account.security"), 303)
    if not second_factor_is_fresh():
        return await _confirm_with_phone()
    svc = services.current()
    async with svc.db.session() as db:
        codes = await recovery.regenerate(db, svc.settings, g.user.id)
    page = await render_template("account/recovery_codes.html", codes=codes)
    response = Response(page)
    response.headers["Cache-Control"] = "no-store, max-age=0"
    return response


async def _confirm_with_phone() -> Page:
    """Ask the phone (or a code) to confirm before a sensitive change."""
    async with services.current().db.session() as db:
        outcome = await send_push(
            db,
            g.user,
            request_context(next_path=url_for("account.security")),
            ChallengePurpose.REAUTH,
        )
    if outcome.challenge is None:
        await flash(outcome.problem or "", "danger")
        return redirect(url_for("account.security"), 303)
    session[SESSION_KEY] = outcome.challenge.public_id
    await flash("Approve on your phone to confirm it is you, then try again.", "info")
    return redirect(url_for("twofa.wait"), 303)


@blueprint.route("/password", methods=["GET", "POST"])
@login_required
@rate_limit(10, MINUTE)
async def change_password() -> Page:
    form = await ChangePasswordForm.from_request()
    if not await form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return await render_template("account/change_password.html", form=form), status
    svc = services.current()
    if not await verify_password(
        form.current.data, g.user.password_hash, svc.settings.bcrypt_rounds
    ):
        form.current.errors = ["That is not your current password."]
        return await render_template("account/change_password.html", form=form), 400
    new_hash = await hash_password(form.password.data, svc.settings.bcrypt_rounds)
    async with svc.db.session() as db:
        await db.execute(
            update(User)
            .where(User.id == g.user.id)
            .values(
                password_hash=new_hash,
                password_changed_at=utcnow(),
                must_change_password=False,
                session_epoch=User.session_epoch + 1,
            )
        )
        await trusted.revoke(db, g.user.id)
        audit.record(db, "password.changed", g.user.id)
        await db.commit()
        user = await db.get(User, g.user.id)
    assert user is not None
    # Every other session ended with the epoch bump; this one starts afresh.
    start_session(user, remember=False)
    await flash("Your password has been changed. Other sessions were logged out.", "success")
    return redirect(url_for("main.index"), 303)


@blueprint.route("/report/<token>", methods=["GET", "POST"])
@public
@rate_limit(10, MINUTE)
async def report(token: str) -> Page:
    """The e-mailed "this wasn't me" link: confirm, then lock the account down."""
    svc = services.current()
    user_id = read_report_token(svc.settings.secret_key, token)
    form = await CSRFOnlyForm.from_request()
    if user_id is None:
        await flash("That link is invalid or has expired.", "danger")
        return redirect(url_for("main.index"))
    if request.method == "GET":
        return await render_template("account/report.html", form=form)
    async with svc.db.session() as db:
        if await db.get(User, user_id) is None:  # the account is gone since the mail
            await flash("That link is invalid or has expired.", "danger")
            return redirect(url_for("main.index"))
        await protection.report_not_me(db, svc.settings, svc.realtime, user_id, "email")
    await flash(
        "Thank you. Every session of the account has been ended and push requests are paused. "
        "You will be asked for a new password at your next login.",
        "success",
    )
    return redirect(url_for("auth.login"), 303)
