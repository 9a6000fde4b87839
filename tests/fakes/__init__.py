"""Fakes of outside services (GitHub, Argo Server, DataONE), each a real HTTP server."""
