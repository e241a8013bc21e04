"""One hub builds the view once per change and sends every page the same text; an
update carries only the equity points that are new."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engine.web.app import Hub, _merged


def point(minute: int, equity: float) -> dict[str, Any]:
    return {"time": f"2018-01-10T00:{minute:02d}:00Z", "equity": equity}


class GrowingRun:
    """A run that writes one more snapshot whenever `write` is called."""

    def __init__(self) -> None:
        self.curve = [point(0, 10.0), point(1, 10.1)]
        self.since: list[datetime | None] = []

    def write(self) -> None:
        self.curve.append(point(len(self.curve), 10.0 + len(self.curve) / 10))

    def fingerprint(self) -> tuple[Any, ...]:
        return ("run-1", len(self.curve))

    def view(self, since: datetime | None = None) -> dict[str, Any]:
        self.since.append(since)
        shown = [
            p for p in self.curve if since is None or datetime.fromisoformat(p["time"]) >= since
        ]
        return {
            "status": {"run_id": "run-1", "equity": str(self.curve[-1]["equity"])},
            "snapshot_id": f"snap-{len(self.curve)}",
            "panels": {"equity_curve": shown},
        }


async def test_pages_get_the_whole_view_then_only_new_points() -> None:
    run = GrowingRun()
    hub = Hub(run)  # type: ignore[arg-type]
    await hub.first()
    pages = [hub.join() for _ in range(3)]
    assert json.loads(hub.full_text())["panels"]["equity_curve"] == run.curve
    await hub.step()  # nothing new: nothing built, nothing sent
    assert all(p.empty() for p in pages) and len(run.since) == 1

    run.write()
    await hub.step()
    texts = [p.get_nowait() for p in pages]
    assert len(set(texts)) == 1  # built once, the same text for every page
    update = json.loads(texts[0])
    assert update["kind"] == "update" and update["snapshot_id"] == "snap-3"
    # From the last time held on: that point again, and the new one.
    assert update["panels"]["equity_curve"] == run.curve[1:]
    assert run.since[-1] == datetime.fromisoformat(run.curve[1]["time"])
    # The hub's own view (for pages that open now) holds the whole curve.
    assert json.loads(hub.full_text())["panels"]["equity_curve"] == run.curve
    hub.leave(pages[0])
    assert hub.pages == 2


def test_new_points_replace_those_from_their_first_time_on() -> None:
    curve = [point(0, 1), point(1, 2), point(2, 3)]
    assert _merged(curve, []) == curve
    assert _merged(curve, [point(2, 4), point(3, 5)]) == [*curve[:2], point(2, 4), point(3, 5)]
    assert _merged(curve, [point(5, 6)]) == [*curve, point(5, 6)]
