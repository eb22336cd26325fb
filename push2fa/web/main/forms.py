"""Forms of the profile pages."""

from __future__ import annotations

from wtforms import TextAreaField
from wtforms.validators import Length

from push2fa.web.forms import Form, no_control_characters


class EditProfileForm(Form):
    about_me = TextAreaField("About me", validators=[Length(max=280), no_control_characters])
