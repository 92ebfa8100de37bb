"""The one settings object, read from the environment (prefix CHUNFENG_) or a .env file."""

import hashlib
import ipaddress
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "chunfeng-local-development-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHUNFENG_", env_file=".env", extra="ignore")

    environment: str = Field("local", description="local, staging or production; only local accepts the development secret")
    database_url: str = Field("sqlite:///var/chunfeng.db", description="SQLAlchemy URL; postgresql://user:pass@host/db for PostgreSQL")
    secret_key: str = Field(DEV_SECRET, description="key for CSRF tokens; set a long random value outside local use")
    data_key: str = Field("", description="32 hex digits: the SM4 key for personal data at rest (phone, e-mail, names "
                                          "of submitters); required outside local use")
    session_idle_minutes: int = Field(30, ge=1, description="a session ends after this long without a request")
    session_max_hours: int = Field(12, ge=1, description="a session ends this long after login, used or not")
    password_min_length: int = Field(10, ge=8, description="shortest password accepted; it must also mix three of: "
                                                               "upper case, lower case, digits, symbols")
    password_history: int = Field(5, ge=0, description="a new password may not repeat any of the last N")
    password_max_age_days: int = Field(90, ge=0, description="a password older than this must be changed at login; 0: never")
    totp_required_roles: list[str] = Field(default_factory=lambda: ["admin", "security_admin", "audit_admin"],
                                           description="roles that must log in with a TOTP second factor")
    login_max_failures: int = Field(5, ge=1, description="consecutive wrong passwords for a user name from one address that lock that address out of it")
    login_lockout_minutes: int = Field(15, ge=1, description="how long a locked address is refused that user name")
    rate_limits: dict[str, int] = Field(
        default_factory=lambda: {"login": 10, "consult": 60, "appeals": 20, "survey": 30},
        description="requests a minute one client address may make: login (POST /login), consult (the public ask "
                    "page and API), appeals (the public form and intake API), survey (answers sent to /s/…: a "
                    "service hall's respondents may share one address); {} turns limiting off")
    rate_ceilings: dict[str, int] = Field(
        default_factory=lambda: {"consult": 500, "appeals": 100, "inbox": 300, "survey": 100},
        description="requests a second all server processes together take on a public endpoint before answering "
                    "429 with a time to come back: consult (the ask page and API), appeals (the public form and "
                    "intake API), inbox (the taxpayer's message centre), survey (answers sent to /s/…); set from "
                    "what the fleet sustains; {} turns the ceilings off")
    rate_limit_wait_ms: int = Field(250, ge=10, description="longest wait for the shared rate-limit counters in the "
                                                             "database; past it a process counts on its own")
    cookie_secure: bool = Field(False, description="send cookies only over HTTPS (turn on behind TLS)")
    data_dir: str = Field("var/files", description="where uploaded files (report evidence) are stored, by content hash")
    audit_head_file: str = Field("", description="the signed head of the audit chain (sequence, digest, time, MAC per "
                                                 "line), kept outside the database so that a rewritten or truncated "
                                                 "log shows; empty: audit-head.log beside data_dir")
    evidence_max_mb: int = Field(20, ge=1, description="largest evidence file accepted")
    warn_due_soon_days: int = Field(7, ge=0, description="yellow when the deadline is this many days away or less and the task is not done")
    warn_report_grace_days: int = Field(10, ge=0, description="a missing report for the last finished period is yellow, and red this many days after that period ended")
    warn_behind_points: float = Field(20, ge=0, description="yellow when progress trails the straight line from start to deadline by more than this many points")
    notice_escalation_days: int = Field(5, ge=1, description="an escalated supervision notice gets this many more days to be answered")
    scan_interval_minutes: int = Field(60, ge=0, description="the periodic jobs (warnings, escalations, appeal limits "
                                                              "and retention, campaign stages) run this often, "
                                                              "deliveries every 5 minutes or this often if shorter; "
                                                              "0 turns the schedule off")
    run_jobs_in_web: bool = Field(False, description="web processes run the periodic jobs too (the demo does); "
                                                     "off: only `chunfeng worker` runs them")
    consult_embedding_model: str = Field("", description="a sentence-transformers model directory for the optional dense stage of 12366 retrieval; empty turns it off")
    index_stale_seconds: float = Field(60, ge=0, description="after the knowledge base or the notice changes, how long "
                                       "the public pages of a web process may still be answered from its previous "
                                       "retrieval and classification indexes while it builds the new ones in the "
                                       "background; 0: they wait for the new ones")
    push_store: str = Field("var/taxpayers.duckdb", description="the DuckDB file holding the imported taxpayer extract")
    credit_risk_engine: str = Field("duckdb", pattern="^(duckdb|spark)$", description="where the risk tiers (measure "
                                    "95) are decided: duckdb (in the process, over push_store) or spark (local Spark, "
                                    "the registry and returns handed over as Parquet); the tiers written are the same")
    push_cap_per_week: int = Field(3, ge=1, description="at most this many policy pushes reach one taxpayer in any 7 days")
    push_approval_margin: float = Field(
        0.10, ge=0, le=1, description="a stage approved for scheduled sending is sent on its day only if the taxpayers it "
        "reaches then differ from the figure approved by at most this fraction (0.10: 10 %); beyond it the stage is "
        "held and the approver's unit told")
    push_max_attempts: int = Field(5, ge=1, description="a delivery a channel refuses (push messages, unit inbox channels) is tried this many times in all, with back-off")
    push_send_batch: int = Field(50, ge=1, le=1000, description="push messages (campaigns, survey invitations) claimed from the outbox at a time: two transactions per batch instead of per message; a sender killed mid-batch leaves that many uncertain (never resent by themselves)")
    push_send_concurrency: int = Field(8, ge=1, le=64, description="push messages of a claimed batch sent at once (each its own request to its gateway); a failed one is retried alone")
    push_retry_minutes: int = Field(5, ge=1, description="the first retry waits this long; each later one twice as long")
    push_channels: dict[str, str] = Field(default_factory=dict, description='Apprise URL per channel with {address} for the contact, e.g. {"sms": "json://gateway.local/sms?to={address}", "email": "mailtos://user:pass@smtp.example.com?to={address}"}; inapp needs none')
    channel_schemes: list[str] = Field(
        default_factory=lambda: ["mailto", "mailtos", "dingtalk", "wecombot", "feishu", "json", "jsons"],
        description="Apprise URL schemes a notification channel (unit inbox channels, push_channels) may use")
    channel_hosts_allowed: list[str] = Field(
        default_factory=list, description='hosts, addresses or networks a channel may reach although they are '
                                          'loopback, link-local or private, e.g. ["gateway.local", "10.1.2.0/24"]; '
                                          'every other host must resolve only to public addresses')
    holidays_file: str = Field("", description="a holidays JSON (see src/chunfeng/data/holidays.json) replacing the shipped "
                                                "default; years imported with `chunfeng calendar import` replace its years")
    appeal_limits: dict[str, list[int]] = Field(
        default_factory=lambda: {"demand": [1, 5, 10], "complaint": [1, 5, 10], "suggestion": [2, 10, 15],
                                 "opinion": [1, 2, 5]},
        description="per type, working days from receipt to accept, to reply and to close; a bureau sets its own")
    appeal_topic_routes: dict[str, str] = Field(
        default_factory=dict, description='topic → unit code for topics one unit handles wherever the submitter is, '
                                          'e.g. {"出口退税": "000006"}; other items go to the bureau of their region')
    appeal_retention_days: int = Field(1095, ge=30, description="a closed item's submitter name and contact details "
                                                                 "are erased this many days after it closed")
    appeal_max_files: int = Field(3, ge=0, description="attachments one item may carry")
    appeal_file_max_mb: int = Field(5, ge=1, description="largest attachment accepted")
    trusted_proxies: str = Field("", description="addresses or networks (comma-separated, e.g. 10.0.0.5 or "
                                                 "10.0.0.0/24) of the reverse proxies whose X-Forwarded-For and "
                                                 "X-Forwarded-Proto are believed; empty: none, the connecting address "
                                                 "is the client's")
    import_max_rows: int = Field(50000, ge=1, description="data rows one imported CSV/xlsx may hold (hotline, units, "
                                                            "knowledge base, bulk reports); a larger file is refused")
    import_max_file_mb: int = Field(20, ge=1, description="largest CSV/xlsx file an import reads")
    import_max_unpacked_mb: int = Field(200, ge=1, description="largest total uncompressed size of an xlsx's members")
    import_max_ratio: int = Field(100, ge=2, description="an xlsx member (over 1 MB unpacked) compressed more than "
                                                         "this many times is refused as a zip bomb")
    import_max_problems: int = Field(100, ge=1, description="problems listed when an import is refused; the rest "
                                                            "are counted")
    host: str = "127.0.0.1"
    port: int = 8000

    @model_validator(mode="after")
    def refuse_default_secret(self) -> "Settings":
        # Empty too: deploy/chunfeng.env.example leaves the line blank, and a blank left in place must not start.
        if not self.is_local and (self.secret_key == DEV_SECRET or not self.secret_key.strip()):
            raise ValueError("CHUNFENG_SECRET_KEY must be set to a private value when CHUNFENG_ENVIRONMENT is not 'local'")
        if self.data_key and (len(self.data_key) != 32 or any(c not in "0123456789abcdefABCDEF" for c in self.data_key)):
            raise ValueError("CHUNFENG_DATA_KEY must be 32 hex digits (a 128-bit SM4 key)")
        for proxy in filter(None, (p.strip() for p in self.trusted_proxies.split(","))):
            try:
                ipaddress.ip_network(proxy, strict=False)  # '*' or a host name would let anyone name their address
            except ValueError:
                raise ValueError(f"CHUNFENG_TRUSTED_PROXIES: {proxy!r} is not an IP address or network") from None
        if not self.is_local and not self.data_key:
            raise ValueError("CHUNFENG_DATA_KEY must be set when CHUNFENG_ENVIRONMENT is not 'local': personal data "
                             "is encrypted under it")
        return self

    @property
    def is_local(self) -> bool:
        """A developer's machine; anything else ('Production', 'staging', 'test') gets the checks of a real one."""
        return self.environment.strip().lower() == "local"

    @property
    def effective_data_key(self) -> str:
        """The data key, or for local use one derived from the secret key (never outside local: see the check)."""
        if self.data_key:
            return self.data_key
        return hashlib.sha256(("chunfeng data key|" + self.secret_key).encode()).hexdigest()[:32]

    @property
    def audit_head_path(self) -> Path:
        """The signed audit head's file: `audit_head_file`, else audit-head.log beside the data directory."""
        return Path(self.audit_head_file) if self.audit_head_file else Path(self.data_dir).parent / "audit-head.log"

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the driver this project installs (psycopg 3) filled in for PostgreSQL."""
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    def ensure_sqlite_dir(self) -> None:
        url = self.sqlalchemy_url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


# Every setting at its default, read from nowhere (not the environment): what a service parameter defaults to when a
# test or a script calls it without a value. The entry points always pass the configured one.
DEFAULTS = Settings.model_construct()


@lru_cache
def get_settings() -> Settings:
    return Settings()
