"""Channel profiles are data: the shipped file, an operator's file over it, and the settings that
refuse to start on a bad file or an unknown channel (ECOGRAM_CHANNELS, ECOGRAM_CHANNELS_FILE)."""

from __future__ import annotations

import tomllib

import pytest

from ecogram import channels
from ecogram.channels import DATA_FILE, RENDER_FORMATS, ChannelsError, load_profiles
from ecogram.settings import Settings, SettingsError

TEN = ["mercadolivre", "amazon_br", "magalu", "vtex", "nuvemshop", "shopee", "google", "shopify",
       "woocommerce", "magento"]


def test_the_shipped_file_is_valid_and_has_the_ten_channels_in_order():
    profiles = load_profiles()
    assert list(profiles) == TEN
    for profile in profiles.values():
        assert profile.name.strip()
        assert profile.formats and set(profile.formats) <= set(channels.FORMATS)
        assert profile.output in profile.formats and profile.output in RENDER_FORMATS
        assert profile.recommended > 0
        if profile.min_side and profile.max_side:
            assert profile.min_side <= profile.max_side, profile.id
        if profile.max_photos is not None:
            assert profile.min_photos <= profile.max_photos, profile.id


def test_every_shipped_figure_has_a_source_or_says_it_is_unconfirmed():
    for profile in load_profiles().values():
        assert profile.sources or profile.note, profile.id
        assert all(source.startswith("https://") for source in profile.sources)


def test_the_file_as_written_matches_what_the_loader_returns():
    raw = tomllib.loads(DATA_FILE.read_text(encoding="utf-8"))
    profiles = load_profiles()
    assert profiles["mercadolivre"].max_side == raw["mercadolivre"]["max_side"] == 1920
    assert profiles["amazon_br"].fill == raw["amazon_br"]["fill"]
    assert profiles["magalu"].formats == ("jpeg",)
    # A field a table leaves out takes the Profile default.
    assert profiles["shopify"].max_bytes is None and profiles["shopify"].white_main is False


def test_an_override_file_merges_one_field_and_adds_a_channel(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[shopee]\nmax_photos = 8\n\n'
        '[lojaintegrada]\nname = "Loja Integrada"\nformats = ["jpeg", "png"]\n'
        'min_side = 600\nsquare = true\n',
        encoding="utf-8")
    profiles = load_profiles(extra)
    assert profiles["shopee"].max_photos == 8
    shipped = load_profiles()["shopee"]
    # Every other field of the shipped profile stays.
    assert profiles["shopee"].max_bytes == shipped.max_bytes == 2_000_000
    assert profiles["shopee"].name == "Shopee" and profiles["shopee"].white_main
    assert list(profiles)[-1] == "lojaintegrada"
    added = profiles["lojaintegrada"]
    assert (added.name, added.formats, added.output, added.min_side, added.square) == (
        "Loja Integrada", ("jpeg", "png"), "jpeg", 600, True)
    # The settings read the same file.
    settings = Settings.from_env({"ECOGRAM_CHANNELS_FILE": str(extra),
                                  "ECOGRAM_CHANNELS": "shopee,lojaintegrada"})
    assert settings.channels == ("shopee", "lojaintegrada")
    assert settings.channel_profiles["shopee"].max_photos == 8


def test_an_edited_file_is_read_at_the_next_start_only(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text("[shopee]\nmax_photos = 8\n", encoding="utf-8")
    settings = Settings.from_env({"ECOGRAM_CHANNELS_FILE": str(extra)})
    assert settings.channel_profiles["shopee"].max_photos == 8
    # Broken while the service runs: the running settings keep what they read, no request fails.
    extra.write_text("[shopee]\nmax_photos = -7\n\n", encoding="utf-8")
    assert settings.channel_profiles["shopee"].max_photos == 8
    extra.write_text("[shopee]\nmax_photos = 7\n", encoding="utf-8")
    assert load_profiles(extra)["shopee"].max_photos == 7  # the loader sees the edit
    assert Settings.from_env({"ECOGRAM_CHANNELS_FILE": str(extra)}).channel_profiles[
        "shopee"].max_photos == 7


@pytest.mark.parametrize(("text", "named"), [
    ('[shopee]\nmax_photos = "nine"\n', "[shopee] max_photos"),
    ("[shopee]\nmax_photos = -1\n", "[shopee] max_photos"),
    ('[shopee]\nformats = ["jpeg", "bmp"]\n', "[shopee] formats"),
    ('[shopee]\noutput = "png"\nformats = ["jpeg"]\n', "[shopee] output"),
    ('[shopee]\nwhite_main = "yes"\n', "[shopee] white_main"),
    ("[shopee]\nfill = 1.5\n", "[shopee] fill"),
    ("[shopee]\ncolour = 1\n", "[shopee] colour: unknown field"),
    ('[newshop]\nformats = ["jpeg"]\n', "[newshop] name"),
    ('[New-Shop]\nname = "x"\n', "[New-Shop]"),
    ('shopee = 3\n', "shopee must be a table"),
    ("[shopee\n", "not valid TOML"),
])
def test_a_bad_file_is_refused_with_a_sentence_naming_file_channel_and_field(tmp_path, text,
                                                                             named):
    extra = tmp_path / "bad.toml"
    extra.write_text(text, encoding="utf-8")
    with pytest.raises(ChannelsError) as caught:
        load_profiles(extra)
    assert str(extra) in str(caught.value) and named in str(caught.value)
    # The service refuses to start, with the setting, the file and the field named.
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"ECOGRAM_CHANNELS_FILE": str(extra)})
    message = str(refused.value)
    assert message.startswith("ECOGRAM_CHANNELS_FILE: ") and str(extra) in message
    assert named in message and "\n" not in message


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(SettingsError, match=r"ECOGRAM_CHANNELS_FILE: .*missing\.toml: cannot "
                       r"be read"):
        Settings.from_env({"ECOGRAM_CHANNELS_FILE": str(tmp_path / "missing.toml")})


def test_an_unknown_channel_in_ecogram_channels_is_refused():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"ECOGRAM_CHANNELS": "mercadolivre, ebay"})
    assert str(refused.value).startswith("ECOGRAM_CHANNELS names 'ebay', which is not a channel")
    assert "mercadolivre" in str(refused.value)  # the known ids are listed


def test_the_default_channels_are_known_and_lowercase_ids_are_accepted():
    settings = Settings.from_env({})
    assert settings.channels == ("mercadolivre", "amazon_br", "magalu", "shopee", "google")
    assert Settings.from_env({"ECOGRAM_CHANNELS": " VTEX ,google"}).channels == ("vtex", "google")
    assert Settings.from_env({"ECOGRAM_CHANNELS": ""}).channels == ()


def _range(low, high, unit: str = "") -> str:
    if low and high:
        return f"{low:,}–{high:,}{unit}"
    if low:
        return f"≥ {low:,}{unit}"
    return f"≤ {high:,}{unit}" if high else "any"


def _largest(p) -> str:
    parts = [f"{p.max_bytes / 1_000_000:g} MB"] if p.max_bytes else []
    if p.max_pixels:
        parts.append(f"{p.max_pixels / 1_000_000:g} MP")
    return ", ".join(parts) or "—"


def profiles_table() -> str:
    """The table of docs/channels.md, as the shipped file says it should read."""
    lines = ["| id | name | formats (rendition) | sides px (rendition) | largest "
             "| square, white main, fill | photos | sources |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in load_profiles().values():
        rules = ", ".join([("square" if p.square else "any shape"),
                           ("white main" if p.white_main else "any background"),
                           (f"fill {p.fill:.0%}" if p.fill else "no fill rule")])
        photos = _range(p.min_photos, p.max_photos)
        sources = " ".join(f"[{n}]({url})" for n, url in enumerate(p.sources, 1)) or \
            "unconfirmed"
        lines.append(
            f"| `{p.id}` | {p.name} | {', '.join(p.formats)} ({p.output}) | "
            f"{_range(p.min_side, p.max_side)} ({p.recommended:,}) | "
            f"{_largest(p)} | {rules} | {photos} | {sources} |")
    return "\n".join(lines) + "\n"


def test_docs_channels_md_shows_the_shipped_profiles():
    """docs/channels.md's table is the shipped file's: change one, change the other (the test
    prints the table to paste)."""
    docs = (DATA_FILE.parent.parent.parent / "docs" / "channels.md").read_text(encoding="utf-8")
    table = profiles_table()
    assert table in docs, "docs/channels.md's profile table is stale; it should read:\n" + table


def test_the_command_refuses_to_start_with_one_sentence(tmp_path, monkeypatch, capsys):
    from ecogram.cli import main

    extra = tmp_path / "bad.toml"
    extra.write_text('[shopee]\nmax_photos = "nine"\n', encoding="utf-8")
    monkeypatch.setenv("ECOGRAM_CHANNELS_FILE", str(extra))
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err == (f"ecogram: ECOGRAM_CHANNELS_FILE: {extra}: [shopee] max_photos: expected a "
                   "whole number, zero or more\n")
    monkeypatch.delenv("ECOGRAM_CHANNELS_FILE")
    monkeypatch.setenv("ECOGRAM_CHANNELS", "mercadolivre,ebay")
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err.startswith("ecogram: ECOGRAM_CHANNELS names 'ebay', which is "
                                              "not a channel; the channels are mercadolivre, ")
