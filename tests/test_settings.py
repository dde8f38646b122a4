import dataclasses
import re
from pathlib import Path

import pytest

from ecogram.settings import SETTINGS_DOC, Settings, SettingsError

SETTINGS_DOC_FILE = Path(__file__).parent.parent / "docs" / "settings.md"


def test_defaults_match_the_contract():
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path(".ecogram")
    assert settings.min_side == 500
    assert settings.max_pixels == 50_000_000
    assert settings.max_upload_mb == 25
    assert settings.registration == "open"
    assert 400 in settings.allowed_sizes


def test_settings_are_frozen():
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_values_are_parsed_from_the_environment():
    settings = Settings.from_env(
        {
            "ECOGRAM_MIN_SIDE": "100",
            "ECOGRAM_ALLOWED_SIZES": "800, 400,400",
            "ECOGRAM_IMPORT_ALLOW_PRIVATE_URLS": "yes",
            "DATABASE_URL": "postgresql://u@h/db",
        }
    )
    assert settings.min_side == 100
    assert settings.allowed_sizes == (400, 800)
    assert settings.import_allow_private_urls is True
    assert settings.database_url == "postgresql://u@h/db"
    assert Settings.from_env({"ECOGRAM_ALLOWED_SIZES": "*"}).allowed_sizes is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ECOGRAM_PORT": "eighty"}, "ECOGRAM_PORT"),
        ({"ECOGRAM_REGISTRATION": "maybe"}, "ECOGRAM_REGISTRATION"),
        ({"ECOGRAM_SECRET_KEY": "short"}, "32 bytes"),
        ({"DATABASE_URL": "mysql://x"}, "postgresql"),
        ({"ECOGRAM_FILENAME_PATTERN": "(?P<sku>.+)"}, "code"),
        ({"ECOGRAM_ALLOWED_SIZES": "0,100"}, "ECOGRAM_ALLOWED_SIZES"),
        ({"ECOGRAM_WORKERS": "0"}, "ECOGRAM_WORKERS"),
    ],
)
def test_invalid_values_are_refused_with_the_setting_named(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_every_setting_is_documented_with_its_default():
    """docs/settings.md has one table row per setting, with the default the code uses, and no
    row for a setting that does not exist."""
    rows = {}
    for line in SETTINGS_DOC_FILE.read_text(encoding="utf-8").splitlines():
        # A `|` inside a cell is written `\|` (GitHub's tables), so split on the others.
        cells = [cell.strip().replace("\\|", "|")
                 for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) >= 3 and re.fullmatch(r"`[A-Z_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1]
    documented = {env: default for env, default, _help in SETTINGS_DOC}
    assert sorted(set(documented) - set(rows)) == [], "settings missing from docs/settings.md"
    assert sorted(set(rows) - set(documented)) == [], "docs/settings.md names unknown settings"
    wrong = {env: (rows[env], default) for env, default in documented.items()
             if rows[env] != (f"`{default}`" if default else "(unset)")}
    assert wrong == {}, "docs/settings.md shows another default than the code"


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"ECOGRAM_MIN_SIDE": "abc"}, "ECOGRAM_MIN_SIDE must be a whole number (not 'abc')"),
        ({"ECOGRAM_RENDER_TIMEOUT": "soon"}, "ECOGRAM_RENDER_TIMEOUT must be a number"),
        ({"ECOGRAM_PORT": "70000"}, "ECOGRAM_PORT must be a port number from 0 to 65535"),
        ({"ECOGRAM_EAGER_WIDTHS": "400,wide"}, "ECOGRAM_EAGER_WIDTHS must be whole numbers"),
        ({"ECOGRAM_FILENAME_PATTERN": "(unclosed"}, "ECOGRAM_FILENAME_PATTERN must be a regular"),
        ({"ECOGRAM_PUBLIC_URL": "shop.example.com"}, "ECOGRAM_PUBLIC_URL must be an http://"),
        ({"ECOGRAM_HEADER_TIMEOUT": "0"}, "ECOGRAM_HEADER_TIMEOUT must be greater than zero"),
    ],
)
def test_invalid_values_are_told_in_a_sentence(env, sentence):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(sentence)
    assert "invalid literal" not in str(caught.value) and "could not convert" not in str(
        caught.value)


def test_an_unset_public_url_follows_the_address_served():
    assert Settings.from_env({}).public_url == "http://127.0.0.1:8080"
    assert Settings.from_env({"ECOGRAM_PORT": "9000"}).public_url == "http://127.0.0.1:9000"
    # The command line's --host and --port arrive as overrides.
    assert Settings.from_env({}, host="0.0.0.0", port=8123).public_url == "http://127.0.0.1:8123"
    assert Settings.from_env({"ECOGRAM_HOST": "::1"}).public_url == "http://[::1]:8080"
    # Set, it wins whatever the port.
    assert Settings.from_env({"ECOGRAM_PUBLIC_URL": "https://cdn.example.com/"},
                             port=8123).public_url == "https://cdn.example.com"
