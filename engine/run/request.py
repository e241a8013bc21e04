"""What the user asked for, as one value, checked in one place.

A `RunRequest` holds a start's words as given (the command line builds it); `prepare`
checks them together, before anything is created or any check runs, and gives a
`PreparedRun`: the settings with the overrides applied, the strategy, the data folder
and the market data, ready for a runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine.config import Settings, load_settings
from engine.errors import ConfigError
from engine.feeds.replay import PerpetualFiles, parse_speed
from engine.home.folder import resolve_data_dir
from engine.limits import check_days
from engine.run.watchdog import loading_strategy
from engine.signal.loader import StrategyChoice, parse_param

if TYPE_CHECKING:
    from engine.feeds.exchange import FeedSettings

RuntimeName = Literal["process", "services", "stack"]


@dataclass(frozen=True)
class RunRequest:
    """A run to start (or resume), in the words the user gave."""

    replay: tuple[Path, ...] = ()
    exchange: str | None = None
    market: str = "spot"
    marks: tuple[Path, ...] = ()
    funding: tuple[Path, ...] = ()
    symbols: str | None = None
    timeframe: str = "5m"
    days: float | None = None
    speed: str | None = None
    strategy: str | None = None
    params: tuple[str, ...] = ()
    capital: str | None = None
    resume: bool = False
    run_id: str | None = None
    persist: bool = True
    runtime: RuntimeName = "process"
    data_dir: Path | str | None = None
    detach: bool = False
    skip_preflight: bool = False
    ignore_checks: tuple[str, ...] = ()
    reports: bool = False  # a replay writes its daily and final reports as it goes
    # A detached run's own process: the id chosen for it, the preflight handed over.
    as_run: str | None = None
    preflight_file: Path | None = None
    detached_child: bool = False

    def child_args(self, folder: Path) -> list[str]:
        """The same run, for a detached process (files as absolute paths)."""
        args = ["papertest", "start", "--market", self.market, "--data-dir", str(folder)]
        for option, paths in (("--replay", self.replay), ("--mark", self.marks)):
            for path in paths:
                args += [option, str(Path(path).resolve())]
        for path in self.funding:
            args += ["--funding", str(Path(path).resolve())]
        if self.exchange:
            args += ["--exchange", self.exchange, "--timeframe", self.timeframe]
        if self.symbols:
            args += ["--symbols", self.symbols]
        if self.days is not None:
            args += ["--days", repr(self.days)]
        if self.speed:
            args += ["--speed", self.speed]
        if self.strategy:
            args += ["--strategy", self.strategy]
        for item in self.params:
            args += ["--param", item]
        if self.capital is not None:
            args += ["--capital", self.capital]
        if self.reports:
            args.append("--reports")
        if self.runtime == "services":
            args.append("--services")
        return args


@dataclass(frozen=True)
class PreparedRun:
    """A checked request: what a runtime needs to start the run."""

    request: RunRequest
    settings: Settings
    choice: StrategyChoice | None  # None when resuming: the run keeps its own
    folder: Path | None  # None for a run kept in memory
    perpetual: PerpetualFiles | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return list(self.request.replay)

    def feed_settings(self) -> FeedSettings:
        from engine.feeds.exchange.settings import live_feed_settings

        r = self.request
        assert r.exchange is not None
        return live_feed_settings(r.exchange, r.market, r.symbols, r.timeframe)


def parse_capital(text: str) -> Decimal:
    """`--capital` as a number, or one sentence that blames `--capital` (its range is
    checked with the settings, which name `--capital` too)."""
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ConfigError(
            f"--capital {text} is not a positive amount; give the starting equity in the quote "
            "currency, like --capital 10."
        )
    return value


def _settings(r: RunRequest) -> Settings:
    overrides: dict[str, Any] = {}
    if r.capital is not None:
        parse_capital(r.capital)  # a non-number blames --capital
        overrides["initial_capital"] = r.capital.strip()  # a range error quotes it as typed
    if r.strategy:
        overrides["strategy"] = r.strategy
    return load_settings({"strategy": "--strategy", "initial_capital": "--capital"}, **overrides)


def _check_sources(r: RunRequest) -> None:
    if r.resume and (r.replay or r.exchange):
        raise ConfigError("--resume continues a recorded run; drop --replay and --exchange.")
    if r.resume and (r.strategy or r.params):
        raise ConfigError(
            "--resume continues with the run's own strategy and parameters; drop --strategy "
            "and --param."
        )
    if r.runtime == "stack" and not r.replay and not r.exchange:
        raise ConfigError("CLAIRE_REPLAY_FILES names no file; list the market files to replay.")
    if not r.resume and not r.replay and not r.exchange:
        raise ConfigError(
            "no market data given; pass --replay FILE (one per symbol) or "
            "--exchange mexc --symbols BTCUSDT."
        )
    if r.replay and r.exchange:
        raise ConfigError("choose --replay or --exchange, not both.")
    if r.market not in ("spot", "futures"):
        raise ConfigError(f"--market {r.market!r} is not spot or futures.")
    if (r.marks or r.funding) and not (r.replay and r.market == "futures"):
        raise ConfigError("--mark and --funding go with --replay ... --market futures.")


def _check_runtime(r: RunRequest) -> None:
    if not r.persist and (r.resume or r.exchange):
        raise ConfigError("--no-persist works with --replay only.")
    if not r.persist and r.detach:
        raise ConfigError("--detach runs need a database; drop --no-persist.")


def _check_services(r: RunRequest) -> None:
    """`--services` refusals, each naming only options the user gave."""
    if r.runtime != "services":
        return
    if not r.persist:
        raise ConfigError("--services keeps its run in the database; drop --no-persist.")


def prepare(request: RunRequest) -> PreparedRun:
    """Check the request as a whole; mistakes in it are named before any check runs."""
    settings = _settings(request)
    _check_sources(request)
    perpetual = None
    if request.replay and request.market == "futures":
        perpetual = PerpetualFiles(request.marks, request.funding, settings.funding_default_rate)
    _check_runtime(request)
    if request.exchange and not request.symbols:
        raise ConfigError("a live run needs --symbols, like --symbols BTCUSDT,ETHUSDT.")
    check_days(request.days)
    parse_speed(request.speed or "max")
    choice = None
    if not request.resume:
        params = dict(parse_param(p) for p in request.params)
        name = settings.strategy.rsplit(":", 1)[-1]
        with loading_strategy(settings.strategy_timeout_seconds, name):
            choice = StrategyChoice.resolve(settings.strategy, params)
        choice.strategy_class()  # a strategy that cannot load is named before the checks
    folder = resolve_data_dir(request.data_dir, settings) if request.persist else None
    _check_services(request)
    return PreparedRun(request, settings, choice, folder, perpetual)


__all__ = ["PreparedRun", "RunRequest", "RuntimeName", "parse_capital", "prepare"]
