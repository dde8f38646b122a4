"""Thin HTTP handlers: parse the request, call a use case, render the answer."""
