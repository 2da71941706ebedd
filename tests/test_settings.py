"""Check how settings merge the config file, the environment and the flags."""

import os

import pytest

from sddtui.errors import SddtuiError
from sddtui.settings import Settings, load_settings


def test_defaults_without_any_source(tmp_path):
    settings = load_settings({}, environ={}, path=tmp_path / "missing.toml")
    assert settings == Settings()
    assert settings.base_url is None
    assert settings.n_ctx is None


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


def settings_error(tmp_path, flags=None, environ=None, config_text=None, flag_names=None) -> SddtuiError:
    """Return the SddtuiError that load_settings raises for these sources."""
    config = tmp_path / "config.toml"
    if config_text is not None:
        config.write_text(config_text, encoding="utf-8")
    with pytest.raises(SddtuiError) as raised:
        load_settings(flags or {}, environ=environ or {}, path=config, flag_names=flag_names)
    return raised.value


def test_invalid_flag_named_as_typed(tmp_path):
    error = settings_error(tmp_path, flags={"n_ctx": 5}, flag_names={"n_ctx": "--n-ctx"})
    message = error.render("en")

    assert message == "Invalid value 5 for --n-ctx. Give a whole number from 512 to 1048576."
    assert "config.toml" not in message
    assert "n_ctx:" not in message


def test_invalid_flag_in_japanese_has_no_pydantic_text(tmp_path):
    error = settings_error(tmp_path, flags={"n_ctx": 5}, flag_names={"n_ctx": "--n-ctx"})
    message = error.render("ja")

    assert "--n-ctx" in message
    assert "512 から 1048576 までの整数" in message
    assert "Input should" not in message
    assert "greater" not in message


def test_flag_without_name_gets_dashed_field(tmp_path):
    message = settings_error(tmp_path, flags={"max_answer_tokens": 10}).render("en")
    assert message == "Invalid value 10 for --max-answer-tokens. Give a whole number of at least 64."


def test_invalid_environment_variable_named(tmp_path):
    error = settings_error(tmp_path, environ={"SDDTUI_N_CTX": "lots"})
    message = error.render("en")

    assert "environment variable SDDTUI_N_CTX" in message
    assert "'lots'" in message
    assert "whole number from 512 to 1048576" in message
    assert "config.toml" not in message
    assert "SDDTUI_N_CTX" in error.render("ja")


def test_invalid_file_value_names_key_and_file(tmp_path):
    error = settings_error(tmp_path, config_text='lang = "fr"\n')
    message = error.render("en")

    assert f"'lang' in {tmp_path / 'config.toml'}" in message
    assert "'fr'" in message
    assert "one of en, ja" in message
    assert "pattern" not in message


@pytest.mark.parametrize(
    ("config_text", "allowed_en", "allowed_ja"),
    [
        ("temperature = 9\n", "a number from 0.0 to 2.0", "0.0 から 2.0 までの数値"),
        ("request_timeout = 0\n", "a number greater than 0", "0 より大きい数値"),
        ('embedded = "maybe"\n', "true or false", "true か false の値"),
        ("model = 3\n", "a text value", "文字列"),
        ("plan_attempts = 1.5\n", "a whole number from 1 to 10", "1 から 10 までの整数"),
    ],
)
def test_allowed_values_per_type(tmp_path, config_text, allowed_en, allowed_ja):
    error = settings_error(tmp_path, config_text=config_text)
    assert allowed_en in error.render("en")
    assert allowed_ja in error.render("ja")


def test_later_source_named_in_error(tmp_path):
    # The flag overrides the file, so the error names the flag and not the file.
    error = settings_error(
        tmp_path, flags={"n_ctx": 100}, config_text="n_ctx = 2048\n",
        flag_names={"n_ctx": "--n-ctx"},
    )
    assert "--n-ctx" in str(error)
    assert "config.toml" not in str(error)


def test_several_invalid_settings_listed(tmp_path):
    error = settings_error(tmp_path, config_text="temperature = 9\nplan_attempts = 0\n")
    lines = error.render("en").splitlines()

    assert lines[0] == "2 settings are invalid:"
    assert len(lines) == 3
    assert any("'temperature'" in line for line in lines)
    assert any("'plan_attempts'" in line for line in lines)


def test_unknown_key_in_file_is_rejected(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('base_ur1 = "typo"\n', encoding="utf-8")
    with pytest.raises(SddtuiError) as raised:
        load_settings({}, environ={}, path=config)
    assert "base_ur1" in raised.value.render("en")


def test_unknown_key_suggests_close_name(tmp_path):
    error = settings_error(tmp_path, config_text="temprature = 0.5\n")
    message = error.render("en")

    assert message.startswith(f"Unknown setting 'temprature' in {tmp_path / 'config.toml'}.")
    assert "Did you mean 'temperature'?" in message
    assert "Known settings: api_key, base_url," in message
    assert "Extra inputs" not in error.render("ja")


def test_unknown_key_without_close_name(tmp_path):
    message = settings_error(tmp_path, config_text="zzz = 1\n").render("en")
    assert "Did you mean" not in message
    assert "Known settings:" in message
    assert "temperature" in message


def test_config_directory_reported(tmp_path):
    (tmp_path / "config.toml").mkdir()
    error = settings_error(tmp_path)
    assert error.key == "config_is_directory"
    assert str(tmp_path / "config.toml") in error.render("ja")


def test_config_fifo_reported_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "config.toml")
    error = settings_error(tmp_path)
    assert error.key == "config_not_regular_file"


def test_broken_toml_names_the_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("base_url = \n", encoding="utf-8")
    with pytest.raises(SddtuiError) as raised:
        load_settings({}, environ={}, path=config)
    assert raised.value.key == "config_invalid"
    assert str(config) in raised.value.render("ja")
