"""The hazard tests reuse the views' fixture that imports photos through the API."""

from tests.views.conftest import make_image  # noqa: F401  (a fixture, used by name)
