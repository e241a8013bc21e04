"""Per-symbol books and round trips from fills: the maths, checked over many fill sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.events import Side
from engine.maths.accounting import Position, apply_fill
from engine.maths.round_trips import Fill, SymbolBook, net_round_trips, replay_fills

D = Decimal
T0 = datetime(2018, 1, 1, tzinfo=UTC)

quantities = st.integers(min_value=1, max_value=10**6).map(lambda n: D(n) / 1000)
prices = st.integers(min_value=1, max_value=10**6).map(lambda n: D(n) / 10000)
fees = st.integers(min_value=0, max_value=1000).map(lambda n: D(n) / 10**6)


@st.composite
def long_only_fills(draw: st.DrawFn, symbol: str = "ETHBTC") -> list[Fill]:
    """Buys and sells of a long-only (spot) trader, never selling more than held."""
    held = D(0)
    out: list[Fill] = []
    for n in range(draw(st.integers(min_value=1, max_value=30))):
        ts = T0 + timedelta(minutes=5 * n)
        if held > 0 and draw(st.booleans()):
            qty = held if draw(st.booleans()) else min(held, draw(quantities))
            out.append(Fill(symbol, Side.SELL, qty, draw(prices), draw(fees), ts))
            held -= qty
        else:
            qty = draw(quantities)
            out.append(Fill(symbol, Side.BUY, qty, draw(prices), draw(fees), ts))
            held += qty
    return out


@given(long_only_fills())
def test_closed_round_trips_net_exactly_the_cash_they_moved(fills: list[Fill]) -> None:
    book, trips = SymbolBook(), []
    for f in fills:
        done = book.add(f)
        if done is not None:
            trips.append((done, book.fills))
    start = 0
    for trip, end in trips:
        chunk = fills[start:end]
        cash = sum((f.qty * f.price * (1 if f.side is Side.SELL else -1) for f in chunk), D(0))
        assert trip.net_pnl == cash - sum((f.fee for f in chunk), D(0))
        assert trip.fills == len(chunk) and trip.entry_at == chunk[0].ts
        assert trip.exit_at == chunk[-1].ts and trip.duration_s == (end - start - 1) * 300
        bought = [f for f in chunk if f.side is Side.BUY]
        assert trip.qty == sum((f.qty for f in bought), D(0))
        start = end
    assert book.round_trips == len(trips)
    assert book.wins == sum(1 for t, _ in trips if t.net_pnl > 0)


@given(long_only_fills())
def test_the_book_realizes_what_the_portfolio_accounting_does(fills: list[Fill]) -> None:
    book = SymbolBook()
    position, realized = Position(), D(0)
    for f in fills:
        effect = apply_fill(position, f.side, f.qty, f.price)
        position, realized = effect.position, realized + effect.realized
        book.add(f)
    assert book.realized == realized and book.position == position
    assert book.fees == sum((f.fee for f in fills), D(0)) and book.fills == len(fills)
    mark = D("0.5")
    figures = book.pnl(mark)
    assert figures["net_pnl"] == realized + position.unrealized(mark) - book.fees


@given(long_only_fills(), st.integers(min_value=0, max_value=30))
def test_a_book_survives_its_checkpoint_form_mid_trip(fills: list[Fill], cut: int) -> None:
    whole = SymbolBook()
    for f in fills:
        whole.add(f)
    first = SymbolBook()
    for f in fills[:cut]:
        first.add(f)
    resumed = SymbolBook.from_json(first.to_json())
    for f in fills[cut:]:
        resumed.add(f)
    assert resumed.to_json() == whole.to_json()


def test_books_are_kept_per_symbol_and_trips_in_closing_order() -> None:
    fills = [
        Fill("ETHBTC", Side.BUY, D(1), D("0.1"), D("0.001"), T0),
        Fill("LTCBTC", Side.BUY, D(2), D("0.02"), D(0), T0),
        Fill("LTCBTC", Side.SELL, D(2), D("0.03"), D(0), T0 + timedelta(hours=1)),
        Fill("ETHBTC", Side.SELL, D(1), D("0.09"), D("0.001"), T0 + timedelta(hours=2)),
    ]
    books, trips = replay_fills(fills)
    assert [t.symbol for t in trips] == ["LTCBTC", "ETHBTC"]
    assert [t.net_pnl for t in trips] == [D("0.02"), D("-0.012")]
    assert net_round_trips(fills) == [D("0.02"), D("-0.012")]
    assert trips[1].entry_price == D("0.1") and trips[1].exit_price == D("0.09")
    assert trips[1].duration_s == 7200 and trips[1].direction == "long"
    assert books["LTCBTC"].wins == 1 and books["ETHBTC"].wins == 0
