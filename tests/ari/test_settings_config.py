"""Settings come from IVR_* environment variables or the IVR_CONFIG TOML/YAML file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr.ari.client import AriClient
from ivr.ari.events import EventStream
from ivr.config import ConfigError, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from an environment without IVR_* settings."""
    for name in list(os.environ):
        if name.startswith("IVR_") and name != "IVR_SHARED_DIR":
            monkeypatch.delenv(name)


def test_defaults_have_no_secret() -> None:
    settings = Settings()
    assert settings.ari_url == "http://127.0.0.1:8088"
    assert settings.ari_app == "ivr"
    assert settings.ari_password is None
    assert settings.redis_url is None
    assert settings.flows_dir == Path("flows") and settings.prompts_dir == Path("prompts")
    assert settings.transfer_context == "ivr-transfer"
    assert settings.log_level == "INFO"
    with pytest.raises(ConfigError, match="IVR_ARI_PASSWORD"):
        _ = settings.ari_password_value


def test_every_field_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 20, name


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_ARI_URL", "http://10.0.0.5:8088/ari/")
    monkeypatch.setenv("IVR_ARI_USER", "ctl")
    monkeypatch.setenv("IVR_ARI_PASSWORD", "from-env")
    monkeypatch.setenv("IVR_REDIS_URL", "redis://127.0.0.1:6379/2")
    monkeypatch.setenv("IVR_MEDIA_BASE_URL", "http://127.0.0.1:8090/media/ivr-prompts/")
    monkeypatch.setenv("IVR_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.ari_url == "http://10.0.0.5:8088"
    assert settings.ari_user == "ctl"
    assert settings.ari_password_value == "from-env"
    assert "from-env" not in repr(settings) and "from-env" not in str(settings.model_dump())
    assert settings.redis_url == "redis://127.0.0.1:6379/2"
    assert settings.media_base_url == "http://127.0.0.1:8090/media/ivr-prompts"
    assert settings.log_level == "DEBUG"


def test_toml_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ivr.toml"
    config.write_text(
        'ari_url = "http://pbx.internal:8088"\n'
        'ari_password = "from-file"\n'
        'ari_app = "ivr-prod"\n'
        'flows_dir = "/srv/ivr/flows"\n'
        'transfer_context = "ivr-transfer-prod"\n'
    )
    monkeypatch.setenv("IVR_CONFIG", str(config))
    monkeypatch.setenv("IVR_ARI_APP", "ivr-env")
    settings = Settings()
    assert settings.ari_url == "http://pbx.internal:8088"
    assert settings.ari_password_value == "from-file"
    assert settings.ari_app == "ivr-env"  # environment beats the file
    assert settings.flows_dir == Path("/srv/ivr/flows")
    assert settings.transfer_context == "ivr-transfer-prod"
    assert Settings(ari_app="explicit").ari_app == "explicit"  # arguments beat both


def test_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text("ari_user: ctl\nari_password: y-secret\nredis_url: redis://r:6379/0\nlog_level: warning\n")
    monkeypatch.setenv("IVR_CONFIG", str(config))
    settings = Settings()
    assert (settings.ari_user, settings.ari_password_value) == ("ctl", "y-secret")
    assert settings.redis_url == "redis://r:6379/0" and settings.log_level == "WARNING"


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("typo.toml", 'ari_pasword = "x"\n', "unknown setting"),
        ("bad.toml", "ari_url = \n", "bad.toml"),
        ("list.yaml", "- a\n- b\n", "mapping"),
        ("ivr.ini", "ari_url=x\n", ".toml, .yaml"),
    ],
)
def test_bad_config_files_fail_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      name: str, text: str, match: str) -> None:
    config = tmp_path / name
    config.write_text(text)
    monkeypatch.setenv("IVR_CONFIG", str(config))
    with pytest.raises(ConfigError, match=match):
        Settings()


def test_missing_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IVR_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="cannot read"):
        Settings()


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_ARI_URL", "127.0.0.1:8088")
    with pytest.raises(ValueError, match="http"):
        Settings()
    monkeypatch.setenv("IVR_ARI_URL", "http://127.0.0.1:8088")
    monkeypatch.setenv("IVR_LOG_LEVEL", "chatty")
    with pytest.raises(ValueError):
        Settings()


async def test_clients_build_from_settings() -> None:
    settings = Settings(ari_password="not-a-real-secret", ari_subscribe_all=True)

    async def on_event(event: object) -> None:
        return None

    stream = EventStream.from_settings(settings, on_event=on_event)
    assert stream.url == "ws://127.0.0.1:8088/ari/events"
    async with AriClient.from_settings(settings) as ari:
        assert ari._api == "http://127.0.0.1:8088/ari"
