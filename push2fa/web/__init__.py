"""Everything HTTP: the app factory, the blueprints (pages, forms, redirects), request
policy (CSRF, rate limits, access), the webhook endpoint and the templates. Rules live in
push2fa.domain; views call them."""
