"""The push2fa Approver: the push service's own phone app (a PWA), its API and delivery."""
