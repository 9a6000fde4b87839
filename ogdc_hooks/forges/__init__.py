"""The forges recipes live on: the neutral seam (`base.py`), the configured set
(`configured.py`), and one package per forge kind (`github/`)."""
