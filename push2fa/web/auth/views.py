"""Account pages: register, log in, log out, password reset. Pages and forms only."""

from __future__ import annotations

from quart import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.wrappers import Response as WerkzeugResponse

from push2fa import mail, services
from push2fa.domain import audit, passkeys, protection, sessions, stepup, trusted_browsers
from push2fa.domain.login_flow import begin_push_login
from push2fa.domain.passwords import hash_password, verify_password
from push2fa.domain.reset_request import send_reset_link
from push2fa.domain.reset_tokens import read_reset_token, spend_token
from push2fa.domain.users import find_by_login
from push2fa.models import User
from push2fa.web.auth.forms import LoginForm, RegisterForm, ResetPasswordForm, ResetRequestForm
from push2fa.web.forms import Form
from push2fa.web.limits import MINUTE, per_ip_and_account, posts_only, rate_limit
from push2fa.web.policy import login_required, public
from push2fa.web.request_user import landing_page
from push2fa.web.urls import safe_next
from push2fa.web.welcome import welcome_message

blueprint = Blueprint("auth", __name__, url_prefix="/auth")

Page = str | tuple[str, int] | WerkzeugResponse


async def _render(template: str, form: Form, **context: object) -> Page:
    """Render a form page: 400 after a refused submission (CSRF is checked before views)."""
    status = 400 if request.method == "POST" else 200
    return await render_template(template, form=form, **context), status


async def _taken(db: AsyncSession, username: str, email: str) -> tuple[bool, User | None]:
    """Whether the username is taken, and the account that has the address, if any."""
    rows = (
        await db.execute(
            select(User).where(
                # lower() on both sides, as the unique indexes do: SQLite's lower() folds
                # ASCII only, so comparing with Python's str.lower() would miss "Élise@…".
                or_(
                    func.lower(User.username) == func.lower(username),
                    func.lower(User.email) == func.lower(email),
                )
            )
        )
    ).scalars()
    username_taken, owner = False, None
    for row in rows:
        username_taken = username_taken or row.username.lower() == username.lower()
        if row.email.lower() == email.lower():
            owner = row
    return username_taken, owner


@blueprint.route("/register", methods=["GET", "POST"])
@public
@rate_limit(limits=[posts_only(10)])
async def register() -> Page:
    if g.user is not None:
        return redirect(url_for("main.index"))
    form = await RegisterForm.from_request()
    if not await form.validate_on_submit():
        return await _render("auth/register.html", form)
    svc = services.current()
    username, email = form.username.data.strip(), form.email.data.strip()
    password_hash = await hash_password(form.password.data, svc.settings.bcrypt_rounds)
    async with svc.db.session() as db:
        username_taken, owner = await _taken(db, username, email)
        if not username_taken and owner is None:
            user = User(username=username, email=email, password_hash=password_hash)
            db.add(user)
            try:
                await db.flush()
            except IntegrityError:  # registered by a concurrent request since the check
                await db.rollback()
                username_taken, owner = await _taken(db, username, email)
                if not username_taken and owner is None:
                    raise
        if username_taken:
            form.username.errors = [*form.username.errors, "Please use a different username."]
            return await _render("auth/register.html", form)
        if owner is not None:
            # The address has an account: answer as on success (no account enumeration),
            # with the same database write, and tell the owner at their stored address.
            current_app.add_background_task(
                mail.send_mail,
                svc.settings,
                owner.email,
                "Someone tried to register with your address",
                "Somebody tried to create a push2fa account with this e-mail address, which "
                "already has one. If it was you, log in or reset your password.\n",
            )
            audit.record(db, "account.register_with_taken_email", owner.id)
            await db.commit()
            await flash("Your account is ready. Please log in.", "success")
            return redirect(url_for("auth.login"))
        audit.record(db, "account.registered", user.id)
        await db.commit()
    await flash("Your account is ready. Please log in.", "success")
    return redirect(url_for("auth.login"))


@blueprint.route("/login", methods=["GET", "POST"])
@public
@rate_limit(limits=per_ip_and_account(ip_count=30, account_count=10))
async def login() -> Page:
    next_path = safe_next(request.args.get("next") or (await request.form).get("next"))
    if g.user is not None:
        return redirect(next_path)
    form = await LoginForm.from_request(next=next_path)
    if not await form.validate_on_submit():
        return await _render("auth/login.html", form)
    svc = services.current()
    async with svc.db.session() as db:
        user = await find_by_login(db, form.login.data)
        # Hand the connection back before bcrypt: a login waiting for a bcrypt thread must
        # not hold one of the pool's connections while webhooks wait for them.
        await db.commit()
        ok = await verify_password(
            form.password.data, user.password_hash if user else None, svc.settings.bcrypt_rounds
        )
        if user is None or not ok:
            # Not a second-factor failure: anyone who knows the username can send wrong
            # passwords, so they never count toward the lock (the rate limits slow them).
            audit.record(db, "login.password_failed", user.id if user else None)
            await db.commit()
            form.password.errors = ["Invalid username or password."]
            return await _render("auth/login.html", form)
        second_factor = "none"
        has_passkey = await passkeys.count(db, user.id) > 0
        if user.push_enabled or has_passkey:
            device = await trusted_browsers.check(
                db, svc.settings, user, request.cookies.get(trusted_browsers.COOKIE)
            )
            if device is None or user.second_factor_locked_at is not None:
                return await begin_push_login(
                    db,
                    user,
                    remember=form.remember.data,
                    next_path=next_path,
                    trusted_browser=device is not None,
                    has_passkey=has_passkey,
                )
            second_factor = "trusted_browser"
        await protection.record_success(db, user.id)
        await sessions.log_in(
            db, svc.settings, user, remember=bool(form.remember.data), second_factor=second_factor
        )
        greeting = await welcome_message(db, user)
    await flash(greeting, "success")
    return redirect(landing_page(user, next_path))


@blueprint.post("/logout")
@login_required
@rate_limit(30, MINUTE)
async def logout() -> Page:
    async with services.current().db.session() as db:
        await sessions.log_out(db)
    await flash("You have been logged out.", "info")
    return redirect(url_for("main.index"))


@blueprint.route("/reset", methods=["GET", "POST"])
@public
@rate_limit(limits=per_ip_and_account(ip_count=10, account_count=3))
async def reset_request() -> Page:
    form = await ResetRequestForm.from_request()
    if not await form.validate_on_submit():
        return await _render("auth/reset_request.html", form)
    # The same work for every address: the lookup and the mail happen after the answer.
    token_slot = "-"
    current_app.add_background_task(
        send_reset_link,
        services.current(),
        form.email.data,
        audit.request_context(),
        url_for("auth.reset_password", token=token_slot).removesuffix(token_slot),
    )
    await flash(
        "If that address belongs to an account, a reset link is on its way. "
        "It works once, for 30 minutes.",
        "info",
    )
    return redirect(url_for("auth.login"))


@blueprint.route("/reset/<token>", methods=["GET", "POST"])
@public
@rate_limit(limits=[posts_only(10)])
async def reset_password(token: str) -> Page:
    svc = services.current()
    async with svc.db.session() as db:
        found = await read_reset_token(db, svc.settings.secret_key, token)
        if found is None:
            await flash("That reset link is invalid or has expired. Ask for a new one.", "danger")
            return redirect(url_for("auth.reset_request"))
        user, token_id = found
        form = await ResetPasswordForm.from_request()
        if not await form.validate_on_submit():
            return await _render("auth/reset_password.html", form)
        if not await spend_token(db, token_id):
            await flash("That reset link has already been used.", "danger")
            return redirect(url_for("auth.reset_request"))
        await stepup.reset_password(db, svc.settings, user, form.password.data)
    sessions.forget_browser()
    await flash("Your password has been changed. Please log in.", "success")
    return redirect(url_for("auth.login"))
