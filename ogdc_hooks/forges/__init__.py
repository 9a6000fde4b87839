"""Telling the forge (GitHub today) what happened to each recipe of a commit."""
