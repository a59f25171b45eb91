"""The headless core: model access, data, steering, sessions. Never imports Textual."""
