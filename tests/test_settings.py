import dataclasses
from pathlib import Path

import pytest

from ecogram.settings import SETTINGS_DOC, Settings, SettingsError

README = Path(__file__).parent.parent / "README.md"


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


def test_every_setting_is_documented_in_the_readme():
    readme = README.read_text(encoding="utf-8")
    missing = [env for env, _default, _help in SETTINGS_DOC if f"`{env}`" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"
