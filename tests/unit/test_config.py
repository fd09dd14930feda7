"""Configuration: typed values, env overrides, and one clear line for every mistake."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "carebot.toml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
[database]
path = "x.db"
[shop]
name = "Shop"
timezone = "Europe/London"
"""


def test_example_config_loads_and_documents_every_key() -> None:
    config = load_config(EXAMPLE, env={})
    assert config.telegram.mode == "polling"
    assert config.shop.support_hours.summary()[0] == ("mon", "09:00-18:00")
    raw = tomllib.loads(EXAMPLE.read_text())
    import dataclasses

    from bot.config import _SECTIONS

    for section, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f.name in raw[section], f"config.example.toml lacks [{section}] {f.name}"


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), env={})
    assert config.telegram.token == ""
    assert config.uses_sandbox
    assert config.staff.admins == ()


def test_environment_overrides_secrets(tmp_path: Path) -> None:
    env = {
        "CAREBOT_TELEGRAM_TOKEN": "123:abc",
        "CAREBOT_STAFF_ADMINS": "1,2",
        "CAREBOT_WEB_PORT": "81",
    }
    config = load_config(write(tmp_path, MINIMAL), env=env)
    assert config.telegram.token == "123:abc"
    assert config.staff.admins == (1, 2)
    assert config.web.port == 81
    assert not config.uses_sandbox


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[telegram]\nmode = "poll"', '[telegram] mode must be "polling" or "webhook"'),
        ("[telegram]\ntokn = 'x'", "unknown key [telegram] tokn"),
        ("[web]\nport = 'eighty'", "[web] port must be a whole number"),
        ("[staff]\nadmins = ['bob']", "[staff] admins must be a list of whole numbers"),
        ("[shop.support_hours]\nmon = '9-5'", "[shop] support_hours: mon = '9-5'"),
        ("[shop.support_hours]\nfunday = '09:00-10:00'", "unknown day 'funday'"),
        ("[telegram]\nmode = 'webhook'", "[telegram] webhook_url must be"),
        (
            "[telegram]\nmode = 'webhook'\nwebhook_url = 'https://x/y'\nwebhook_secret = 'a b'",
            "[telegram] webhook_secret must be",
        ),
        ("[nonsense]\nx = 1", "unknown section [nonsense]"),
        ("[telegram]\nmax_retries = -1", "[telegram] max_retries must be between 0 and 10"),
        ("[telegram]\nread_timeout = 0", "[telegram] read_timeout must be between 0.1 and 300"),
        ("[telegram]\nread_timeout = 'soon'", "[telegram] read_timeout must be a number"),
        ("[telegram]\nmode = 'webhook'\nwebhook_url = 'http://shop.example/hook'", "https://"),
        (
            "[telegram]\nmode = 'webhook'\nwebhook_url = 'https://x/y'\nwebhook_secret = 'short'",
            "webhook_secret must be 32-256 characters",
        ),
    ],
)
def test_mistakes_name_the_key_and_file(tmp_path: Path, extra: str, message: str) -> None:
    text = (
        MINIMAL.replace("[shop]", extra + "\n[shop]")
        if "support_hours" not in extra
        else MINIMAL + extra
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    line = str(err.value)
    assert message in line
    assert str(path) in line
    assert "\n" not in line


def test_environment_mistakes_name_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"CAREBOT_WEB_PORT \(for \[web\] port\) must be a whole"):
        load_config(path, env={"CAREBOT_WEB_PORT": "abc"})
    with pytest.raises(ConfigError, match=r"CAREBOT_WEB_ENABLED .* must be true or false"):
        load_config(path, env={"CAREBOT_WEB_ENABLED": "ture"})
    with pytest.raises(ConfigError, match="unknown environment variable CAREBOT_TELEGRAM_TOKN"):
        load_config(path, env={"CAREBOT_TELEGRAM_TOKN": "x"})
    assert load_config(path, env={"CAREBOT_WEB_ENABLED": "off", "CAREBOT_CONFIG": "x"}).web


def test_non_place_timezones_are_refused(tmp_path: Path) -> None:
    for zone in ("localtime", "Factory"):
        with pytest.raises(ConfigError, match="IANA zone"):
            load_config(write(tmp_path, MINIMAL.replace("Europe/London", zone)), env={})


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[database]\npath = 'x.db'\n[shop]\nname = 'S'\n")
    with pytest.raises(ConfigError, match=r"missing key \[shop\] timezone"):
        load_config(path, env={})


def test_bad_timezone_and_language(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[shop\] timezone must be an IANA zone"):
        load_config(write(tmp_path, MINIMAL.replace("Europe/London", "Mars/Base")), env={})
    text = MINIMAL + 'default_language = "fr"\n'
    with pytest.raises(ConfigError, match=r"\[shop\] default_language must be one of en, zh"):
        load_config(write(tmp_path, text), env={})


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[shop\n"), env={})


def test_secrets_are_redacted_from_log_lines(tmp_path: Path) -> None:
    import logging

    from carebot.cli import RedactSecrets

    record = logging.LogRecord(
        "telegram.Bot",
        logging.DEBUG,
        __file__,
        1,
        "Set Bot API URL: %s",
        ("https://x/bot123:ABC",),
        None,
    )
    assert RedactSecrets(["123:ABC", ""]).filter(record)
    assert record.getMessage() == "Set Bot API URL: https://x/bot[redacted]"


def test_api_secret_is_required_when_the_api_is_on(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[api]\nenabled = true\n")
    with pytest.raises(ConfigError, match=r"\[api\] secret must be at least 32 characters"):
        load_config(path, env={})
    config = load_config(path, env={"CAREBOT_API_SECRET": "x" * 32})
    assert config.web_server_needed


def test_category_rules_come_in_order_with_a_default(tmp_path: Path) -> None:
    text = MINIMAL + '[catalog]\ndefault_category = "misc"\n[catalog.categories]\n'
    text += 'seasonal = ["CHRISTMAS"]\nkitchen = ["MUG"]\n'
    rules = load_config(write(tmp_path, text), env={}).catalog.rules
    assert rules.categorise("CHRISTMAS MUG") == "seasonal"
    assert rules.categorise("retro spot mug") == "kitchen"
    assert rules.categorise("PICTURE DOMINOES") == "misc"
    defaults = load_config(write(tmp_path, MINIMAL), env={}).catalog.rules
    assert defaults.categorise("PICTURE DOMINOES") == "toys-and-games"
    bad = MINIMAL + "[catalog.categories]\nkitchen = 'MUG'\n"
    with pytest.raises(ConfigError, match=r"\[catalog\] categories: kitchen must be a list"):
        load_config(write(tmp_path, bad), env={})
