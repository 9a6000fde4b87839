"""Who may use the API: passwords, tokens, login throttling and the user store."""
