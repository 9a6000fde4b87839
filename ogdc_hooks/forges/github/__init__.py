"""GitHub as a forge: check runs (App mode) or commit statuses (token mode).

Pure request builders (`checks`, `statuses`, `redact`, `errors`) sit in the
middle; `app_auth` and `api` do the HTTP through gidgethub over one shared
aiohttp session; `reporter` puts them together behind the `Reporter` protocol.
"""
