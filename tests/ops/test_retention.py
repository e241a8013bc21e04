"""Which backups prune keeps: exactly those it promises, whatever the mix of ages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.ops.backups import BackupManifest, Verification, plan_prune

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


def manifest(name: str, age_h: float, verified: bool | None = None) -> BackupManifest:
    created = NOW - timedelta(hours=age_h)
    check = (
        Verification(created + timedelta(minutes=5), verified, "test")
        if verified is not None
        else None
    )
    return BackupManifest(
        name=name, created_at=created, reason="daily", run_id="run-1", market_time=None,
        database="postgresql://postgres:***@/claire", database_name="claire",
        server_version="18.6", schema_version=8, size=1, sha256="0" * 64, tables={},
        verification=check,
    )  # fmt: skip


def test_keeps_the_young_the_newest_and_the_newest_verified() -> None:
    backups = [
        manifest("a", 24 * 30, verified=True),  # old, verified, but not the newest verified
        manifest("b", 24 * 20, verified=True),  # old: the newest verified one
        manifest("c", 24 * 16, verified=False),  # old, failed verification
        manifest("d", 24 * 15),  # old
        manifest("e", 24 * 13),  # young
        manifest("f", 1),  # young, the newest
    ]
    decisions = {d.name: d for d in plan_prune(backups, NOW, 14)}
    assert {n for n, d in decisions.items() if d.keep} == {"b", "e", "f"}
    assert decisions["b"].why == "the newest verified backup"
    assert decisions["a"].why == "older than 14 days"


def test_the_newest_backup_survives_even_when_everything_is_old() -> None:
    backups = [manifest("old", 24 * 40), manifest("older", 24 * 50)]
    kept = [d.name for d in plan_prune(backups, NOW, 14) if d.keep]
    assert kept == ["old"]


ages = st.lists(
    st.tuples(st.floats(min_value=0, max_value=24 * 60), st.sampled_from([None, True, False])),
    max_size=12,
)


@given(ages, st.integers(min_value=1, max_value=30))
def test_prune_keeps_exactly_what_it_promises(
    items: list[tuple[float, bool | None]], days: int
) -> None:
    backups = [manifest(f"b{i:02d}", age, verified) for i, (age, verified) in enumerate(items)]
    decisions = plan_prune(backups, NOW, days)
    kept = {d.name for d in decisions if d.keep}
    by_age = sorted(backups, key=lambda m: (m.created_at, m.name))
    promised = {m.name for m in backups if NOW - m.created_at < timedelta(days=days)}
    if by_age:
        promised.add(by_age[-1].name)
    verified = [m for m in by_age if m.verified]
    if verified:
        promised.add(verified[-1].name)
    assert kept == promised
    assert len(decisions) == len(backups)
