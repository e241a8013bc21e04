"""A strategy's state is checked for JSON at every checkpoint: the quick check and the
one that names the place must always agree."""

from __future__ import annotations

import enum
import math
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.signal.loader import _is_json, _not_json


class Colour(enum.StrEnum):
    RED = "red"


class Count(int):
    pass


_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: JSON cannot hold them
    | st.text(max_size=5)
    | st.sampled_from([Colour.RED, Count(3), Decimal("1.5"), {1, 2}, b"x", math.inf])
)
_keys = st.text(max_size=4) | st.integers(-5, 5) | st.floats() | st.booleans()
_keys |= st.sampled_from([None, (1, 2), Colour.RED])


def _values() -> st.SearchStrategy[Any]:
    return st.recursive(
        _leaves,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.lists(inner, max_size=4).map(tuple)
            | st.dictionaries(_keys, inner, max_size=4)
        ),
        max_leaves=12,
    )


@given(_values())
def test_the_quick_check_agrees_with_the_one_that_names_the_place(value: Any) -> None:
    assert _is_json(value) == (_not_json(value, "") is None)


def test_a_plain_state_passes_and_a_nan_deep_inside_does_not() -> None:
    state = {"closes": {"ETHBTC": [0.1, 0.2]}, "n": 3, "on": True, "name": "x", "none": None}
    assert _is_json(state)
    state["closes"]["ETHBTC"].append(math.nan)
    assert not _is_json(state)
    assert _not_json(state, "") is not None
