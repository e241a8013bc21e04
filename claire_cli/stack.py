"""`claire stack build|up|down|ps|logs|restart|wait`: the engine as a Docker stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from claire_cli.errors import user_errors
from claire_cli.options import AsJson, DataDir

stack_app = typer.Typer(
    help="Run the engine as a Docker stack (compose/): build, up, ps, logs, restart, down.",
    rich_markup_mode=None,
    no_args_is_help=True,
)

ComposeDir = Annotated[
    Path | None,
    typer.Option(
        "--compose-dir",
        help="The folder of the compose file and its .env (default: the repository's compose/).",
        metavar="FOLDER",
    ),
]
Timeout = Annotated[
    float, typer.Option(help="Seconds to wait for the services to be healthy.", min=1)
]
ServiceName = Annotated[str, typer.Argument(help="A container name, like cdb_risk.")]


def _config(compose_dir: Path | None) -> Any:
    from engine.stack.config import StackConfig

    return StackConfig.load(compose_dir)


def _say(message: str) -> None:
    from claire_cli.console import err

    err().print(message, markup=False, soft_wrap=True)


@stack_app.command("build")
def build(
    base_image: Annotated[
        str,
        typer.Option(
            "--base-image",
            help="The Python 3.11 image to build on, one this Docker engine has (offline: "
            "one loaded with `docker load` or made with `docker import`).",
            metavar="IMAGE",
        ),
    ] = "python:3.11-slim",
    compose_dir: ComposeDir = None,
) -> None:
    """Build the engine image (compose/Dockerfile) with the Docker engine; offline with
    wheels in compose/wheels/ (docs: Building offline)."""
    with user_errors():
        from engine.errors import ConfigError
        from engine.stack.containers import build as build_image

        if not base_image.strip():
            raise ConfigError("--base-image is empty; name an image, like python:3.11-slim.")
        image = build_image(_config(compose_dir), progress=_say, base_image=base_image.strip())
        typer.echo(f"built {image[:19]}")


@stack_app.command("up")
def up(
    services: Annotated[
        list[str] | None,
        typer.Argument(help="Only these services (and what they need); default: all."),
    ] = None,
    no_monitoring: Annotated[
        bool, typer.Option("--no-monitoring", help="Leave out Prometheus and Grafana.")
    ] = False,
    timeout: Timeout = 180.0,
    compose_dir: ComposeDir = None,
    as_json: AsJson = False,
) -> None:
    """Start the stack, each service once what it needs is healthy; wait until all are."""
    with user_errors():
        from dataclasses import replace

        from engine.stack.checks import stack_mode
        from engine.stack.containers import up as stack_up

        config = _config(compose_dir)
        if no_monitoring:
            config = replace(config, monitoring=False)
        _say(f"the stack runs {stack_mode(config.env).describe()}; run {config.run_id}")
        rows = stack_up(config, services or None, timeout_s=timeout, progress=_say)
        _show(rows, as_json)


@stack_app.command("ps")
def ps(as_json: AsJson = False) -> None:
    """Every container of the stack: state, health, restarts, uptime, ports."""
    with user_errors():
        from engine.stack.containers import stack_rows

        _show(stack_rows(), as_json)


def _show(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from claire_cli.console import out
    from claire_cli.render import stack_table

    out().print(stack_table(rows))


@stack_app.command("logs")
def logs(
    service: Annotated[str | None, typer.Argument(help="A container, like cdb_risk.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    tail: Annotated[int, typer.Option(help="Lines from the end.", min=0)] = 100,
) -> None:
    """A service's logs (every service's last lines without SERVICE)."""
    with user_errors():
        from engine.stack.containers import follow_logs, service_logs, stack_rows
        from engine.stack.spec import BY_NAME

        if service is None:
            names = [r["service"] for r in stack_rows()]
            for name in names:
                for line in service_logs(name, tail):
                    typer.echo(f"{name}  {line}")
            return
        if service not in BY_NAME:
            service_logs(service, tail)  # raises the error naming the services
        lines = follow_logs(service, tail) if follow else iter(service_logs(service, tail))
        for line in lines:
            typer.echo(line)


@stack_app.command("restart")
def restart(service: ServiceName) -> None:
    """Restart one service's container (SIGTERM, SIGKILL after 20 s)."""
    with user_errors():
        from engine.stack.containers import restart_service

        restart_service(service)
        typer.echo(f"restarted {service}")


@stack_app.command("down")
def down(
    volumes: Annotated[
        bool,
        typer.Option(
            "--volumes",
            help="Also delete the volumes: the stack's database, Redis and metrics are lost.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before --volumes.")] = False,
) -> None:
    """Stop and remove the stack's containers; the volumes stay unless --volumes."""
    with user_errors():
        from engine.stack.containers import down as stack_down

        if volumes and not yes:
            typer.confirm(
                "delete the stack's volumes (its PostgreSQL, Redis and metrics data)?", abort=True
            )
        removed = stack_down(remove_volumes=volumes, progress=_say)
        kept = "" if volumes else "; volumes kept"
        typer.echo(f"stopped {len(removed)} containers{kept}")


@stack_app.command("wait")
def wait(
    timeout: Annotated[float, typer.Option(help="Seconds to wait.", min=1)] = 3600.0,
    compose_dir: ComposeDir = None,
    as_json: AsJson = False,
) -> None:
    """Wait until the stack's replay run is complete and record it completed; a live
    run until it publishes (it runs until stopped or its planned end)."""
    with user_errors():
        from engine.run.stack_runs import wait_for_run

        state = wait_for_run(_config(compose_dir), timeout)
        if as_json:
            typer.echo(json.dumps(state))
        elif state["live"]:
            until = (
                "it reached its planned end"
                if state["feed_done"]
                else "it runs until `claire papertest stop --stack` or its planned end"
            )
            typer.echo(
                f"live run {state['run_id']}: {state['published']} market times published, "
                f"{state['lag']} messages still to handle; {until}"
            )
        else:
            typer.echo(f"run {state['run_id']} completed ({state['published']} market times)")


@stack_app.command("compose")
def compose() -> None:
    """Print the compose file generated from the stack's description."""
    from engine.stack.spec import compose_text

    typer.echo(compose_text(), nl=False)


@stack_app.command("init-run", hidden=True)
def init_run(
    run_id: Annotated[str, typer.Option("--run", metavar="RUN_ID")],
    market_dir: Annotated[Path, typer.Option(metavar="FOLDER")],
    files: Annotated[str, typer.Option(help="Comma-separated file names.")],
    days: Annotated[float | None, typer.Option(min=0.0007, max=3650)] = None,
    speed: Annotated[str, typer.Option()] = "max",
    data_dir: DataDir = None,
) -> None:
    """Record the stack's run (inside the stack, before its services start): live on
    CLAIRE_EXCHANGE's market when it is set (CLAIRE_MARKET, CLAIRE_SYMBOLS,
    CLAIRE_LIVE_DAYS), else the replay of the files."""
    with user_errors():
        import os

        from engine.run.lifecycle import start
        from engine.run.request import RunRequest
        from engine.stack.checks import stack_mode

        mode = stack_mode(os.environ)
        if mode.live:
            request = RunRequest(
                exchange=mode.exchange, market=mode.market, symbols=",".join(mode.symbols),
                days=mode.days, run_id=run_id, runtime="stack", data_dir=data_dir,
            )  # fmt: skip
        else:
            paths = tuple(market_dir / name.strip() for name in files.split(",") if name.strip())
            request = RunRequest(
                replay=paths, days=days, speed=speed, run_id=run_id, runtime="stack",
                data_dir=data_dir,
            )  # fmt: skip
        record = start(request)
        done = "recorded" if record.created else "exists; its services resume it"
        line = f"run {record.run_id} {done}"
        if mode.live:
            line = f"live {line} ({mode.exchange} {mode.market}: {', '.join(mode.symbols)})"
        typer.echo(line)


@stack_app.command("steward", hidden=True)
def steward(
    run_id: Annotated[str, typer.Option("--run", metavar="RUN_ID")],
    poll: Annotated[float, typer.Option(help="Seconds between looks.", min=0.05)] = 0.25,
    data_dir: DataDir = None,
) -> None:
    """Attend the stack's run: operator commands, backups, daily reports (inside the stack)."""
    with user_errors():
        import signal
        import threading

        from engine.run.stack_steward import attend_stack_run

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        attend_stack_run(run_id, data_dir, stop.wait, poll, say=_say)
