"""Marker secrets in every secret setting appear in no report, log line, notification,
incident bundle or incident report."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg import sql

from engine.config import Settings
from engine.runtime import EmbeddedPostgres, with_database
from engine.store import Database
from tests.alerts.receiver import closed_port, receiver
from tests.alerts.test_alerts_in_a_run import TIGHT
from tests.cli.support import invoke, ok
from tests.store.conftest import pg_admin, pg_server  # noqa: F401  (fixtures)
from tests.web.support import web_texts

pytestmark = pytest.mark.integration

ROLE = "claire_marker"
MARKERS = {
    "CLAIRE_POSTGRES_URL": "PgPassMARKER7731",
    "CLAIRE_REDIS_URL": "RedisPassMARKER8842",
    "MEXC_API_KEY": "MexcKeyMARKER9953",
    "MEXC_API_SECRET": "MexcSecretMARKER1064",
    "CLAIRE_NOTIFY_URLS": "NotifyTokenMARKER2175",
}


def test_every_secret_setting_is_covered() -> None:
    secret = {
        n.upper() for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)
    }
    assert secret == set(MARKERS)


def test_markers_reach_no_report_log_or_notification(
    pg_server: EmbeddedPostgres,  # noqa: F811
    pg_admin: Database,  # noqa: F811
    four_symbols: list[Path],
    claire_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = MARKERS["CLAIRE_POSTGRES_URL"]
    create = sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}")
    pg_admin.execute(create.format(sql.Identifier(ROLE), sql.Literal(password)))  # type: ignore[arg-type]
    pg_admin.create_database("claire_markers")
    url = with_database(pg_server.url, "claire_markers")
    scheme, _, rest = url.partition("://")
    url = f"{scheme}://{ROLE}:{quote(password)}@{rest.partition('@')[2]}"
    try:
        for name, value in TIGHT.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CLAIRE_POSTGRES_URL", url)
        monkeypatch.setenv("CLAIRE_LOG_LEVEL", "debug")  # every library's chatter in the file
        monkeypatch.setenv(
            "CLAIRE_REDIS_URL", f"redis://:{MARKERS['CLAIRE_REDIS_URL']}@127.0.0.1:1/0"
        )
        monkeypatch.setenv("MEXC_API_KEY", MARKERS["MEXC_API_KEY"])
        monkeypatch.setenv("MEXC_API_SECRET", MARKERS["MEXC_API_SECRET"])
        token = MARKERS["CLAIRE_NOTIFY_URLS"]
        with receiver() as hook:
            urls = [
                hook.url(f"hook/{token}", f"token={token}"),
                f"json://user:{token}@127.0.0.1:{closed_port()}/down/{token}",
            ]
            monkeypatch.setenv("CLAIRE_NOTIFY_URLS", ",".join(urls))
            # Alerts open incidents too: their bundles are written inside the run.
            monkeypatch.setenv("INCIDENT_ON_ALERT", "daily_drawdown_high=risk-limit")
            # The Redis URL only carries a marker: no Redis answers there, which preflight
            # would rightly call no-go.
            args = [
                "--debug",
                "papertest",
                "start",
                "--days",
                "2",
                "--capital",
                "10",
                "--json",
                "--reports",
            ]
            args += ["--ignore-check", "redis"]
            for path in four_symbols[:2]:
                args += ["--replay", str(path)]
            run = json.loads(ok(*args).stdout)
            tested = invoke("notify", "test")
            assert tested.exit_code == 1 and "#2 json" in tested.output  # the closed port
            posts = hook.wait_for(3)
            texts = [tested.output, *(json.dumps(p) for p in posts)]
            for fmt in ("md", "json", "html"):
                texts.append(ok("report", "--format", fmt).stdout)
            texts.append(ok("report", "--day", "1").stdout)
            texts.append(ok("logs").stdout)
            # Incidents opened by hand, each with its bundle and report; one names a URL
            # with a password in its note.
            note = f"saw postgresql://x:{password}@db in a log"
            for kind in ("database-outage", "resource-shortage", "service-crash"):
                texts.append(ok("incident", "open", kind, "--note", note, "--json").stdout)
            listed = json.loads(ok("incident", "list", "--json").stdout)
            texts.append(ok("incident", "show", listed[0]["incident_id"]).stdout)
            texts.append(ok("incident", "close", listed[0]["incident_id"], "--note", "ok").stdout)
            texts += web_texts()  # the web view's page and its JSON
    finally:
        pg_admin.drop_database("claire_markers")
        pg_admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(ROLE)))  # type: ignore[arg-type]

    files = [p for p in claire_home.rglob("*") if p.is_file()]
    bundles = [p for p in files if p.name.endswith(".tar.gz")]
    assert len(bundles) == len(listed) >= 4  # by hand and by the alert
    assert any(i["detail"]["opened_by"] == "alert" for i in listed)
    for bundle in bundles:
        with tarfile.open(bundle, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            assert {"manifest.json", "config.json", "logs/claire.jsonl"} <= {
                m.name for m in members
            }
            for member in members:
                extracted = tar.extractfile(member)
                assert extracted is not None
                texts.append(extracted.read().decode("utf-8", errors="replace"))
    incident_reports = [p for p in files if p.parent.name == "incidents" and p.suffix == ".md"]
    assert len(incident_reports) == len(bundles)
    reports = [p for p in files if "reports" in p.parts]
    logs = [p for p in files if "logs" in p.parts]
    assert len(reports) == 3 * 3  # two days and the final report, each in three formats
    assert logs and sum(p.stat().st_size for p in logs) > 1000
    assert len(posts) >= 3 and run["alerts"] > 0
    texts += [p.read_text(errors="replace") for p in files]
    for setting, marker in MARKERS.items():
        for text in texts:
            assert marker not in text, f"{setting}'s value leaked"
