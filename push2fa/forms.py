"""WTForms with session-bound CSRF on every form.

SessionCSRF keeps the token's secret in the signed session, so a token lifted from one
browser is useless in another, and a missing or wrong token fails validation and changes
nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from quart import current_app, request, session
from wtforms import Form as BaseForm
from wtforms.csrf.session import SessionCSRF
from wtforms.meta import DefaultMeta

CSRF_TIME_LIMIT = timedelta(hours=2)
CSRF_ERROR = "This form expired or was not sent from this site. Please try again."

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
        formdata = await request.form if request.method == "POST" else None
        meta = {
            "csrf_secret": current_app.config["CSRF_SECRET"],
            "csrf_context": session,
        }
        return cls(formdata=formdata, meta=meta, **kwargs)

    async def validate_on_submit(self) -> bool:
        return request.method == "POST" and self.validate()


class CSRFOnlyForm(Form):
    """A form with nothing but the CSRF token: for buttons like Log out and Cancel."""


def csrf_token() -> str:
    """A CSRF token for hand-written forms (the navbar's Log out button)."""
    form = CSRFOnlyForm(
        meta={"csrf_secret": current_app.config["CSRF_SECRET"], "csrf_context": session}
    )
    token: str = form.csrf_token.current_token
    return token
