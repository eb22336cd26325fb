"""The live site of tests/web/twofa (app and push service as separate Hypercorn servers, and
browsers made of an aiohttp session and a Socket.IO client), for the account pages."""

from tests.web.twofa.conftest import browsers, enrolled, site, site_options  # noqa: F401
