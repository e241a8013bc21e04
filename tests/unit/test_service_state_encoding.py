"""A service's saved state, encoded at every step, reads back as the same JSON values."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from engine.services.worker import _encoded

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.integers(0, 99), children, max_size=5)
    ),
    max_leaves=12,
)


@given(_values)
def test_the_engines_own_state_reads_back_as_the_standard_encoder_writes_it(value: object) -> None:
    saved = {"step": 1, "groups": 7, "state": {"risk": value}}
    standard = json.loads(json.dumps(saved))  # int keys become text, floats exact
    assert json.loads(_encoded("risk", saved)) == standard


def test_the_signal_services_state_keeps_a_strategys_float_keys_and_big_integers() -> None:
    saved = {"state": {"signals": {"strategy": {1e16: "level", "big": 2**70}}}}
    assert json.loads(_encoded("signal", saved)) == json.loads(json.dumps(saved))
