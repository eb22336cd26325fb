"""Push two-factor pages: enrol, wait for the phone, complete, resend, cancel, disable.

Pages and form handling only: decisions live in challenges.py, pushes in flow.py.
"""

from __future__ import annotations

from datetime import timedelta

from markupsafe import Markup
from quart import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.wrappers import Response as WerkzeugResponse
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from push2fa import mail, services
from push2fa.domain import (
    audit,
    challenges,
    code_login,
    number_matching,
    phones,
    protection,
    push_answers,
    push_budget,
    recovery_codes,
    sessions,
    stepup,
    trusted_browsers,
)
from push2fa.domain import enrollment as enrol
from push2fa.domain.login_flow import (
    PUSH_FAILED,
    REFUSED_KEY,
    SESSION_KEY,
    refused_reason,
    send_push,
)
from push2fa.domain.useragent import describe
from push2fa.models import ChallengePurpose, ChallengeStatus, LoginChallenge, User, utcnow
from push2fa.web.forms import CSRFOnlyForm, Form
from push2fa.web.limits import MINUTE, posts_only, rate_limit
from push2fa.web.policy import login_required, public
from push2fa.web.request_user import landing_page
from push2fa.web.welcome import welcome_message

blueprint = Blueprint("twofa", __name__, url_prefix="/auth/2fa")

Page = str | tuple[str, int] | Response | WerkzeugResponse

RESEND_MIN_INTERVAL = timedelta(seconds=10)
# A wrong code re-opens the waiting card's code panel with the error beside that code.
CODE_ERROR_KEY = "twofa_code_error"
CODE_KINDS = ("totp", "recovery")
WRONG_CODE = "That code is not right."


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers["Pragma"] = "no-cache"
    return response


async def _bound_challenge(db: AsyncSession) -> LoginChallenge | None:
    """The challenge this browser's session is bound to, if any."""
    return await challenges.by_public_id(db, session.get(SESSION_KEY))


# --- enrolment -------------------------------------------------------------------------


@blueprint.route("/enable", methods=["GET", "POST"])
@login_required
@rate_limit(limits=[posts_only(10)])
async def enable() -> Page:
    if g.user.push_enabled:
        await flash("Push two-factor login is already on.", "info")
        return redirect(url_for("main.index"))
    form = await CSRFOnlyForm.from_request()
    if request.method == "POST":
        async with services.current().db.session() as db:
            await enrol.start(db, g.user, enrol.ttl(services.current().settings))
        return redirect(url_for("twofa.enroll"), 303)
    return await render_template("twofa/enable.html", form=form)


@blueprint.get("/enroll")
@login_required
@rate_limit(60, MINUTE)
async def enroll() -> Page:
    svc = services.current()
    async with svc.db.session() as db:
        enrollment = await enrol.latest(db, g.user.id)
    if enrollment is None or enrollment.status == "cancelled":
        return redirect(url_for("twofa.enable"))
    left = max(0, int((enrollment.expires_at - utcnow()).total_seconds()))
    context: dict[str, object] = {
        "enrollment": enrollment,
        "seconds_left": left,
        "ttl_minutes": svc.settings.enrolment_token_minutes,
    }
    if enrollment.status == "pending" and not g.user.push_enabled:
        token = enrol.registration_token(svc.settings, g.user.id, enrollment)
        approver_url = enrol.approver_url(svc.settings, token)
        context.update(
            token=token,
            # A phone's camera opens the Approver from its link; Authy apps scan authy://.
            qr=Markup(enrol.qr_svg(approver_url or enrol.qr_payload(token))),
            approver_url=approver_url,
            # The test double (a cookie approves): development only, and labelled so.
            dev_phone_url=(
                f"{svc.settings.push_api_url}/phone?token={token}"
                if svc.settings.uses_emulator and not svc.settings.is_production
                else None
            ),
            approver_off=svc.settings.uses_emulator and not phones.approver_possible(svc.settings),
        )
    if enrollment.status == "completed" and g.user.push_enabled:
        # Enrolment ends with the recovery codes, shown this once.
        async with svc.db.session() as db:
            if await recovery_codes.remaining(db, g.user.id) == 0 and sessions.is_fresh(g.user):
                context["codes"] = await recovery_codes.regenerate(db, svc.settings, g.user.id)
    context["form"] = await CSRFOnlyForm.from_request()
    page = await render_template("twofa/enroll.html", **context)
    return _no_store(Response(page))


# --- the push step of a login ------------------------------------------------------------


@blueprint.get("/wait")
@public
@rate_limit(120, MINUTE)
async def wait() -> Page:
    svc = services.current()
    async with svc.db.session() as db:
        challenge = await _bound_challenge(db)
        if challenge is None:
            await flash("Please log in.", "info")
            return redirect(url_for("auth.login"))
        user = await db.get(User, challenge.user_id)
    wrong_code = session.pop(CODE_ERROR_KEY, None)
    page = await render_template(
        "twofa/wait.html",
        challenge=challenge,
        account=user,
        browser=describe(challenge.user_agent),
        seconds_left=challenges.seconds_left(challenge),
        matching_enforced=number_matching.enforced(svc.settings),
        push_refused=refused_reason(challenge),
        form=await CSRFOnlyForm.from_request(),
        code_error=(wrong_code, WRONG_CODE) if wrong_code in CODE_KINDS else None,
    )
    return _no_store(Response(page))


async def _finish(
    db: AsyncSession, consumed: LoginChallenge, second_factor: str, trust: bool
) -> WerkzeugResponse:
    """Turn a consumed challenge into what it was for: a login, or turning 2FA off."""
    svc = services.current()
    user = await db.get(User, consumed.user_id)
    assert user is not None
    await protection.record_success(db, user.id)
    if consumed.purpose == ChallengePurpose.DISABLE:
        await stepup.disable_push(db, svc.settings, user, proof=second_factor)
        session.pop(SESSION_KEY, None)
        await flash("Push two-factor login is now off.", "success")
        return redirect(url_for("main.index"), 303)
    if consumed.purpose == ChallengePurpose.REAUTH:
        await db.commit()
        session.pop(SESSION_KEY, None)
        sessions.mark_fresh()
        await flash("Confirmed. You can now make the change.", "success")
        return redirect(consumed.next_path, 303)
    cookie = None
    if trust:
        cookie = await trusted_browsers.issue(
            db,
            svc.settings,
            user,
            request.remote_addr or "",
            request.headers.get("User-Agent", ""),
        )
    await sessions.log_in(
        db, svc.settings, user, remember=consumed.remember, second_factor=second_factor
    )
    await flash(await welcome_message(db, user), "success")
    response = redirect(landing_page(user, consumed.next_path), 303)
    if cookie is not None:
        trusted_browsers.set_cookie(response, svc.settings, cookie)
    return response


async def _trust_requested() -> bool:
    return (await request.form).get("trust") in {"y", "on", "1", "true"}


@blueprint.post("/complete")
@public
@rate_limit(30, MINUTE)
async def complete() -> Page:
    svc = services.current()
    async with svc.db.session() as db:
        challenge = await _bound_challenge(db)
        if challenge is None:
            await flash("Please log in.", "info")
            return redirect(url_for("auth.login"), 303)
        if not _may_complete(challenge):
            return redirect(url_for("auth.login"), 303)
        consumed = await challenges.consume(
            db, svc.realtime, challenge.public_id, challenge.user_id
        )
        if consumed is None:
            current = await challenges.by_public_id(db, challenge.public_id)
            if current is not None and current.status == ChallengeStatus.CONSUMED:
                # Completed by another request of this browser (a code, a second tab):
                # write nothing, so that request's login stands.
                return redirect(current.next_path, 303)
            await flash(_not_approved_message(current or challenge), "warning")
            return redirect(url_for("twofa.wait"), 303)
        return await _finish(db, consumed, "push", await _trust_requested())


def _may_complete(challenge: LoginChallenge) -> bool:
    """Turning 2FA off or confirming a change must be completed by the same logged-in
    user who asked for it."""
    if challenge.purpose == ChallengePurpose.LOGIN:
        return True
    return g.user is not None and g.user.id == challenge.user_id


def _not_approved_message(challenge: LoginChallenge) -> str:
    if challenge.reason == push_answers.WRONG_NUMBER:
        return "The number picked on your phone did not match. The request was denied."
    return {
        ChallengeStatus.PENDING: "Your phone has not approved this login yet.",
        ChallengeStatus.DENIED: "The request was denied on your phone.",
        ChallengeStatus.EXPIRED: "The request expired. Send a new one.",
        ChallengeStatus.CANCELLED: "The request was cancelled.",
        ChallengeStatus.CONSUMED: "This request has already been used.",
    }.get(ChallengeStatus(challenge.status), "This request cannot be used.")


class CodeForm(Form):
    code = StringField("Code", validators=[DataRequired(), Length(min=6, max=20)])


async def _with_code(kind: str) -> Page:
    """The phone-free second factors: a recovery code or a code from the Authy app.
    The rules (one decision, one completion; a code spent only with its login) live in
    domain/code_login.py."""
    form = await CodeForm.from_request()
    if not form.validate():
        await flash("Enter the code.", "danger")
        return redirect(url_for("twofa.wait"), 303)
    svc = services.current()
    async with svc.db.session() as db:
        challenge = await _bound_challenge(db)
        if challenge is None or not _may_complete(challenge):
            return redirect(url_for("auth.login"), 303)
        user = await db.get(User, challenge.user_id)
        if user is None or user.authy_id is None:
            return redirect(url_for("auth.login"), 303)
        result = await code_login.answer(db, svc, challenge, user, kind, form.code.data)
        if result.consumed is None:
            return await _code_refused(result, kind)
        left: int | None = None
        if result.second_factor == code_login.RECOVERY:
            left = await recovery_codes.remaining(db, user.id)
        page = await _finish(db, result.consumed, result.second_factor, await _trust_requested())
    # Said after _finish: a login starts a new session, which drops what was flashed before.
    if left is not None and left <= recovery_codes.LOW_WATER:
        await flash(
            f"Only {left} recovery code{'s' if left != 1 else ''} left. "
            "Make new ones on your security page.",
            "warning",
        )
    return page


async def _code_refused(result: code_login.CodeAnswer, kind: str) -> Page:
    if result.problem == code_login.WRONG:
        # Back to the waiting card with the code panel open and the error beside the code.
        session[CODE_ERROR_KEY] = kind
    elif result.problem == code_login.LOCKED:
        await flash(
            "Two-factor login for this account is locked after too many failed attempts: "
            "codes from the app are not accepted. Use a recovery code, or reset your password.",
            "danger",
        )
    elif result.problem == code_login.UNAVAILABLE:
        await flash(PUSH_FAILED.format(why=result.detail), "danger")
    elif result.current is not None and result.current.status == ChallengeStatus.CONSUMED:
        # Already used by this browser (a second submission): leave the session as the
        # winning request set it, so its login is not overwritten.
        return redirect(result.current.next_path, 303)
    elif result.current is not None:
        await flash(_not_approved_message(result.current), "warning")
    return redirect(url_for("twofa.wait"), 303)


@blueprint.post("/recovery")
@public
@rate_limit(10, MINUTE)
async def with_recovery_code() -> Page:
    return await _with_code("recovery")


@blueprint.post("/totp")
@public
@rate_limit(10, MINUTE)
async def with_app_code() -> Page:
    return await _with_code("totp")


@blueprint.post("/cancel")
@public
@rate_limit(30, MINUTE)
async def cancel() -> Page:
    svc = services.current()
    async with svc.db.session() as db:
        challenge = await _bound_challenge(db)
        if challenge is not None:
            await challenges.cancel(db, svc.realtime, challenge.id, by="browser")
    session.pop(SESSION_KEY, None)
    await flash("Login cancelled.", "info")
    if g.user is not None:
        return redirect(url_for("main.index"), 303)
    return redirect(url_for("auth.login"), 303)


@blueprint.post("/resend")
@public
@rate_limit(6, MINUTE)
async def resend() -> Page:
    svc = services.current()
    async with svc.db.session() as db:
        old = await _bound_challenge(db)
        if old is None or old.status in {ChallengeStatus.CONSUMED, ChallengeStatus.CANCELLED}:
            return redirect(url_for("auth.login"), 303)
        user = await db.get(User, old.user_id)
        if user is None or user.authy_id is None:
            return redirect(url_for("auth.login"), 303)
        if challenges.seconds_since_created(old) < RESEND_MIN_INTERVAL.total_seconds():
            await flash("Please wait a few seconds before sending another request.", "warning")
            return redirect(url_for("twofa.wait"), 303)
        context = challenges.Context(
            ip=request.remote_addr or "",
            user_agent=request.headers.get("User-Agent", ""),
            remember=old.remember,
            next_path=old.next_path,
        )
        # The new push first: a refused or failed resend leaves the live request alone.
        outcome = await send_push(db, user, context, ChallengePurpose(old.purpose))
        if outcome.challenge is not None:
            await challenges.cancel(db, svc.realtime, old.id, by="browser", reason="resent")
    if outcome.challenge is None:
        await flash(outcome.problem or "", "danger")
        return redirect(url_for("twofa.wait"), 303)
    session[SESSION_KEY] = outcome.challenge.public_id
    session.pop(REFUSED_KEY, None)
    await flash("A new request has been sent to your phone.", "info")
    return redirect(url_for("twofa.wait"), 303)


@blueprint.post("/allow-pushes")
@public
@rate_limit(3, timedelta(hours=1))
async def request_push_mail() -> Page:
    """Pushes refused because the budget is spent: mail the account a link that allows
    them again. Only a browser past the password step (bound challenge) can ask."""
    svc = services.current()
    async with svc.db.session() as db:
        challenge = await _bound_challenge(db)
        if challenge is None or challenge.status != ChallengeStatus.PENDING:
            return redirect(url_for("auth.login"), 303)
        user = await db.get(User, challenge.user_id)
        assert user is not None
        token = push_budget.confirm_token(svc.settings, user)
        link = svc.settings.public_url + url_for("twofa.allow_pushes", token=token)
        audit.record(db, "push.budget_mail_sent", user.id)
        await db.commit()
    current_app.add_background_task(
        mail.send_mail,
        svc.settings,
        user.email,
        "Allow login requests to your phone again",
        f"Hello {user.username},\n\nNo more login requests are sent to your phone: too "
        "many went unanswered. If you are trying to log in right now, open this link "
        f"within {int(push_budget.CONFIRM_MAX_AGE.total_seconds() // 60)} minutes to allow "
        f"them again:\n\n{link}\n\nIf it is not you trying to log in, do not open it: "
        "someone knows your password. Change it.\n",
    )
    await flash("We sent a link to the account's e-mail address.", "info")
    return redirect(url_for("twofa.wait"), 303)


@blueprint.route("/allow-pushes/<token>", methods=["GET", "POST"])
@public
@rate_limit(limits=[posts_only(10)])
async def allow_pushes(token: str) -> Page:
    """The link from the mail: a page with one button (a mail scanner that follows links
    must not spend it), which starts the push budget over."""
    svc = services.current()
    form = await CSRFOnlyForm.from_request()
    async with svc.db.session() as db:
        if not await push_budget.token_is_usable(db, svc.settings, token):
            await flash("That link is invalid, used or expired. Log in to ask again.", "danger")
            return redirect(url_for("auth.login"), 303)
        if request.method == "POST" and await push_budget.confirm(db, svc.settings, token):
            await flash("Login requests to your phone are allowed again. Log in.", "success")
            return redirect(url_for("auth.login"), 303)
    page = await render_template("twofa/allow_pushes.html", form=form)
    return _no_store(Response(page))


# --- turning push 2FA off ----------------------------------------------------------------


@blueprint.route("/disable", methods=["GET", "POST"])
@login_required
@rate_limit(limits=[posts_only(10)])
async def disable() -> Page:
    """Off only with a second factor: at once from a session that has just given one,
    otherwise by approving a push (or entering a code) that says what it is for."""
    if not g.user.push_enabled:
        await flash("Push two-factor login is already off.", "info")
        return redirect(url_for("main.index"))
    form = await CSRFOnlyForm.from_request()
    fresh = not stepup.needs_second_factor(g.user)
    if request.method == "GET":
        return await render_template("twofa/disable.html", form=form, fresh=fresh)
    svc = services.current()
    async with svc.db.session() as db:
        if not fresh:
            outcome = await stepup.ask_phone(db, g.user, ChallengePurpose.DISABLE, "/")
            if outcome.challenge is None:
                await flash(outcome.problem or "", "danger")
                return redirect(url_for("twofa.disable"), 303)
            return redirect(url_for("twofa.wait"), 303)
        await stepup.disable_push_now(db, svc.settings, g.user)
    await flash("Push two-factor login is now off.", "success")
    return redirect(url_for("main.index"), 303)
