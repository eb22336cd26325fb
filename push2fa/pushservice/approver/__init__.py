"""The push2fa Approver: the push service's own phone app (a PWA), its API and delivery.

:func:`.mount.init_approver` adds it to a push service app: the pages and API under
``/_emulator/approver``, Web Push on every new request, its tables in the app's database.
"""
