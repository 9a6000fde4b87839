"""GitHub as a forge: its webhook intake, its payloads read into neutral events, check runs
(App mode) or commit statuses (token mode).

Pure request builders (`webhooks`, `checks`, `statuses`, `redact`, `errors`) sit in the
middle; `app_auth` and `client` do the HTTP through gidgethub over one shared aiohttp
session; `reporter` puts them together and `forge` offers it as a `forges.base.Forge`.
"""
