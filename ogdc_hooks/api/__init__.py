"""The HTTP API: one aiohttp application, one module per group of routes."""
