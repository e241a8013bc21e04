"""Loading a user's strategy: where it is found, what is checked, how parameters convert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import StrategyError, StrategyLoadError
from engine.events import Candle, Side
from engine.signal.base import Intent, Strategy
from engine.signal.loader import StrategyChoice, convert_params, parse_param
from engine.signal.service import SignalService

T0 = datetime(2018, 1, 1, tzinfo=UTC)


class Typed(Strategy):
    def __init__(
        self, bars: int = 12, ratio: float = 0.5, size: Decimal = Decimal("1"), on: bool = False
    ) -> None:
        self.bars, self.ratio, self.size, self.on = bars, ratio, size, on

    def on_candle(self, candle: Candle, context: object) -> list[Intent]:
        return []


class Untyped(Strategy):
    def __init__(self, window=5, label="x"):  # type: ignore[no-untyped-def]
        self.window, self.label = window, label


class Needs(Strategy):
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold


class TakesAnything(Strategy):
    def __init__(self, **options: str) -> None:
        self.options = options


def test_text_parameters_become_the_annotated_types() -> None:
    values = convert_params(Typed, {"bars": "24", "ratio": "0.01", "size": "2.50", "on": "yes"})
    assert values == {"bars": 24, "ratio": 0.01, "size": Decimal("2.50"), "on": True}
    assert type(values["size"]) is Decimal


def test_without_annotations_the_default_decides_the_type() -> None:
    assert convert_params(Untyped, {"window": "7", "label": "7"}) == {"window": 7, "label": "7"}


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_any_integer_text_round_trips(n: int) -> None:
    assert convert_params(Typed, {"bars": str(n)}) == {"bars": n}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"bars": "2.5"}, "--param bars=2.5 is not a valid int for Typed"),
        ({"ratio": "fast"}, "--param ratio=fast is not a valid float for Typed"),
        ({"speed": "1"}, "--param speed: Typed has no parameter 'speed'; it takes bars, ratio"),
    ],
)
def test_bad_parameters_name_the_parameter(given: dict[str, str], message: str) -> None:
    with pytest.raises(StrategyLoadError, match="^" + message.replace(".", r"\.")):
        convert_params(Typed, given)


def test_a_required_parameter_that_is_missing_says_how_to_give_it() -> None:
    with pytest.raises(StrategyLoadError, match="Needs needs --param threshold=VALUE"):
        convert_params(Needs, {})
    assert convert_params(Needs, {"threshold": "1.5"}) == {"threshold": 1.5}


def test_a_constructor_with_keyword_arguments_takes_any_name() -> None:
    assert convert_params(TakesAnything, {"colour": "blue"}) == {"colour": "blue"}


@pytest.mark.parametrize("text", ["nothing", "=1", "two words=1"])
def test_param_text_must_be_name_equals_value(text: str) -> None:
    with pytest.raises(StrategyLoadError, match="is not like name=value"):
        parse_param(text)


def test_param_values_may_hold_equals_signs() -> None:
    assert parse_param("label=a=b") == ("label", "a=b")


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(body)
    return path


GOOD = """
from engine.signal.base import Strategy

class Good(Strategy):
    def __init__(self, n: int = 1) -> None:
        self.n = n

    def on_candle(self, candle, context):
        return []
"""


def test_a_module_in_the_working_folder_is_stored_by_its_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "mine.py", GOOD)
    choice = StrategyChoice.resolve("mine:Good", {"n": "3"})
    assert choice.spec == f"{path}:Good"
    assert choice.build().n == 3  # type: ignore[attr-defined]
    assert choice.as_config()["params"] == [["n", 3]]
    # Stored and read back, from another folder, it is the same strategy.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = StrategyChoice.from_config({"strategy": choice.as_config()}, "unused:X")
    assert again.spec == choice.spec and again.build().n == 3  # type: ignore[attr-defined]


def test_a_package_in_the_working_folder_imports_without_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mypkg_for_claire").mkdir()
    write(tmp_path / "mypkg_for_claire", "__init__.py", "")
    write(tmp_path / "mypkg_for_claire", "strats.py", GOOD)
    choice = StrategyChoice.resolve("mypkg_for_claire.strats:Good")
    assert choice.folder == str(tmp_path)
    assert isinstance(choice.build(), Strategy)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "from engine.signal.base import Strategy\n"
            "class S(Strategy):\n    def on_candle(self, candle):\n        return []\n",
            "S.on_candle(self, candle) has the wrong signature; expected "
            "def on_candle(self, candle, context) returning a list of Intent",
        ),
        (
            "from engine.signal.base import Strategy\n"
            "class S(Strategy):\n    def on_trade(self, trade, context, extra):\n        pass\n",
            "S.on_trade(self, trade, context, extra) has the wrong signature; expected "
            "def on_trade(self, trade, context)",
        ),
        (
            "from engine.signal.base import Strategy\n"
            "class S(Strategy):\n    async def on_candle(self, candle, context):\n        pass\n",
            "S.on_candle is async",
        ),
        ("class S:\n    pass\n", "is not a Strategy subclass"),
        ("import no_such_dependency_anywhere\n", "it needs 'no_such_dependency_anywhere'"),
        ("raise RuntimeError('bad')\n", "failed while loading at"),
    ],
)
def test_what_a_first_strategy_gets_wrong_is_one_clear_sentence(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write(tmp_path, "s.py", body)
    with pytest.raises(StrategyLoadError) as caught:
        StrategyChoice.resolve(f"{path}:S")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StrategyLoadError, match=r"strategy file .*nope\.py does not exist"):
        StrategyChoice.resolve(f"{tmp_path}/nope.py:S")


# --- the strategy at run time ----------------------------------------------------------


def candle(n: int) -> Candle:
    c = Decimal(1)
    open_time = T0 + timedelta(minutes=5 * n)
    return Candle(f"c{n}", open_time + timedelta(minutes=5), None, "ETHBTC", open_time, 300, c,
                  c, c, c, Decimal(1))  # fmt: skip


class Raises(Strategy):
    def on_candle(self, candle: Candle, context: object) -> list[Intent]:
        if candle.event_id == "c1":
            return {}["missing"]  # type: ignore[no-any-return]
        return [Intent("ETHBTC", Side.BUY, Decimal(1), "x")]


class Generates(Strategy):
    def on_candle(self, candle: Candle, context: object):  # type: ignore[no-untyped-def]
        yield Intent("ETHBTC", Side.BUY, Decimal(1), "first")
        raise ValueError("second failed")


class Lenient(Strategy):
    def __init__(self, answer: object) -> None:
        self.answer = answer

    def on_candle(self, candle: Candle, context: object) -> object:
        return self.answer


def test_a_raising_strategy_names_itself_the_exception_and_where(tmp_path: Path) -> None:
    published: list[object] = []
    service = SignalService(Raises(), published.append)
    zero = Candle("z", T0 + timedelta(minutes=5), None, "ETHBTC", T0, 300, Decimal("0.1"),
                  Decimal("0.1"), Decimal("0.1"), Decimal("0.1"), Decimal(1))  # fmt: skip
    service.on_market(zero)
    assert len(published) == 1
    with pytest.raises(StrategyError) as caught:
        service.on_market(candle(1))
    text = str(caught.value)
    assert text.startswith("strategy Raises raised KeyError: 'missing' at ")
    assert (
        f"{Path(__file__)}:" in text and "in on_candle for ETHBTC at 2018-01-01 00:10 UTC" in text
    )
    assert isinstance(caught.value.__cause__, KeyError)


def test_a_generator_strategy_fails_as_itself() -> None:
    with pytest.raises(StrategyError, match="strategy Generates raised ValueError: second failed"):
        SignalService(Generates(), [].append).on_market(candle(1))


def test_none_and_a_single_intent_are_accepted() -> None:
    published: list[object] = []
    SignalService(Lenient(None), published.append).on_market(candle(1))
    assert published == []
    SignalService(
        Lenient(Intent("ETHBTC", Side.BUY, Decimal(1), "one")), published.append
    ).on_market(candle(1))
    assert len(published) == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("buy", "returned str, not a list of Intent"),
        ([("ETHBTC", "buy")], "returned tuple ('ETHBTC', 'buy') where an Intent was expected"),
    ],
)
def test_returning_something_else_is_a_strategy_error(answer: object, message: str) -> None:
    with pytest.raises(StrategyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SignalService(Lenient(answer), [].append).on_market(candle(1))
