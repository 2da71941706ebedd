"""Check how settings merge the config file, the environment and the flags."""

import pytest

from sddtui.errors import SddtuiError
from sddtui.settings import Settings, load_settings


def test_defaults_without_any_source(tmp_path):
    settings = load_settings({}, environ={}, path=tmp_path / "missing.toml")
    assert settings == Settings()
    assert settings.base_url is None
    assert settings.embedded_n_ctx == 4096


def test_flags_override_environment_and_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('base_url = "http://127.0.0.1:1234/v1"\nmodel = "from-file"\nlang = "ja"\n', encoding="utf-8")
    environ = {"OPENAI_BASE_URL": "http://127.0.0.1:8080", "SDDTUI_MODEL": "from-env"}

    settings = load_settings({"model": "from-flag", "lang": None}, environ=environ, path=config)

    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.model == "from-flag"
    assert settings.lang == "ja"


def test_sddtui_variable_wins_over_openai(tmp_path):
    environ = {"OPENAI_BASE_URL": "http://a:1/v1", "SDDTUI_BASE_URL": "http://b:2/v1"}
    assert load_settings({}, environ=environ, path=tmp_path / "none.toml").base_url == "http://b:2/v1"


def test_invalid_value_names_setting_and_value(tmp_path):
    with pytest.raises(SddtuiError) as raised:
        load_settings({"embedded_n_ctx": 12}, environ={}, path=tmp_path / "none.toml")
    message = raised.value.render("en")
    assert "embedded_n_ctx" in message
    assert "12" in message


def test_unknown_key_in_file_is_rejected(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('base_ur1 = "typo"\n', encoding="utf-8")
    with pytest.raises(SddtuiError) as raised:
        load_settings({}, environ={}, path=config)
    assert "base_ur1" in raised.value.render("en")


def test_broken_toml_names_the_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("base_url = \n", encoding="utf-8")
    with pytest.raises(SddtuiError) as raised:
        load_settings({}, environ={}, path=config)
    assert raised.value.key == "config_invalid"
    assert str(config) in raised.value.render("ja")
