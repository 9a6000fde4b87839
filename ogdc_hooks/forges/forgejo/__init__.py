"""Forgejo (and Gitea, which speaks the same API and webhooks) as a forge.

Pure parts: `webhooks` (the X-Forgejo-Signature / X-Gitea-Signature check, the headers,
which configured instance sent a delivery), `payloads` (a push payload as a neutral
`Push`, only for repositories on the instance's own origin), `statuses` (a report as a
commit-status request), `errors` (what a failed answer means for the retrying queue).
I/O: `client` (the REST API of one instance, `Authorization: token ...`) and `forge`
(`forges.base.Forge` for one instance).
"""
