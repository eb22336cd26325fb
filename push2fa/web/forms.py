"""WTForms with session-bound CSRF on every form.

SessionCSRF keeps the token's secret in the signed session, so a token lifted from one
browser is useless in another, and a missing or wrong token fails validation and changes
nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from quart import abort, current_app, request, session
from werkzeug.datastructures import MultiDict
from wtforms import Form as BaseForm
from wtforms.csrf.session import SessionCSRF
from wtforms.meta import DefaultMeta
from wtforms.validators import ValidationError

CSRF_TIME_LIMIT = timedelta(hours=2)
CSRF_ERROR = "This form expired or was not sent from this site. Please try again."
NOT_UTF8_ERROR = "The form was not sent as UTF-8 text."
URLENCODED = "application/x-www-form-urlencoded"

F = TypeVar("F", bound="Form")


class Form(BaseForm):
    class Meta(DefaultMeta):
        csrf = True
        csrf_class = SessionCSRF
        csrf_time_limit = CSRF_TIME_LIMIT

    @property
    def csrf_failed(self) -> bool:
        return "csrf_token" in self.errors

    @classmethod
    async def from_request(cls: type[F], **kwargs: Any) -> F:
        """Bind the form to this request's POST data (or nothing on GET) and session."""
        formdata = await form_data() if request.method == "POST" else None
        meta = {
            "csrf_secret": current_app.config["CSRF_SECRET"],
            "csrf_context": session,
        }
        return cls(formdata=formdata, meta=meta, **kwargs)

    async def validate_on_submit(self) -> bool:
        return request.method == "POST" and self.validate()


def no_control_characters(form: BaseForm, field: Any) -> None:
    """Refuse control characters other than tab and line breaks.

    They have no place in names or text, and PostgreSQL refuses NUL in text outright, so
    letting one through would turn a form error into a server error.
    """
    data = field.data
    if isinstance(data, str) and any(
        (ord(ch) < 0x20 and ch not in "\r\n\t") or ord(ch) == 0x7F for ch in data
    ):
        raise ValidationError("Contains characters that are not allowed.")


def _is_utf8_urlencoded(body: bytes) -> bool:
    """True when every name and value decodes as UTF-8 once percent-decoded."""
    for pair in body.split(b"&"):
        try:
            unquote_to_bytes(pair.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


async def form_data() -> MultiDict[str, str]:
    """The POSTed form, refused with a 400 when it is not UTF-8.

    The form parser would otherwise turn undecodable bytes into U+FFFD, and a password
    made of different invalid bytes would all hash the same.
    """
    if request.mimetype == URLENCODED:
        body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        if not _is_utf8_urlencoded(body):
            abort(400, NOT_UTF8_ERROR)
    form: MultiDict[str, str] = await request.form
    return form


class CSRFOnlyForm(Form):
    """A form with nothing but the CSRF token: for buttons like Log out and Cancel."""


def csrf_token() -> str:
    """A CSRF token for hand-written forms (the navbar's Log out button)."""
    form = CSRFOnlyForm(
        meta={"csrf_secret": current_app.config["CSRF_SECRET"], "csrf_context": session}
    )
    token: str = form.csrf_token.current_token
    return token
