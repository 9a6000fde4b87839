"""The runs dashboard: server-rendered pages under `API_ROOT_PATH` at `/ui/` (`app.install`)."""
