"""Accounts: passwords, tokens, roles and the guard that enforces them."""
