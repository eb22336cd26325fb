"""The push2fa Approver: the push service's own phone app (a PWA), its API and delivery.

:func:`init_approver` adds it to a push service app: the pages and API under
``/_emulator/approver``, Web Push on every new request, its tables in the app's database.
"""

from __future__ import annotations

from quart import Quart

from push2fa.pushservice.service import Emulator

from .service import EXTENSION_KEY, Approver, ApproverSettings

__all__ = ["Approver", "ApproverSettings", "init_approver"]


def init_approver(app: Quart, emulator: Emulator, settings: ApproverSettings) -> Approver:
    from .views import approver as blueprint

    approver = Approver(settings, emulator)
    app.extensions[EXTENSION_KEY] = approver
    app.register_blueprint(blueprint)
    app.before_serving(approver.start)
    app.after_serving(approver.stop)
    return approver
