"""Passwords never show: redact_url, scrub and SecretUrl."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.runtime.urls import SecretUrl, redact_url, scrub, with_database


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://claire:s3cret@db:5432/claire", "postgresql://claire:***@db:5432/claire"),
        ("postgresql://claire@db/claire", "postgresql://claire@db/claire"),
        ("postgresql://db/claire?password=s3cret&sslmode=off",
         "postgresql://db/claire?password=***&sslmode=off"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql://u:p%40ss%3Aword@h/d", "postgresql://u:***@h/d"),
        ("host=db user=claire password=s3cret dbname=claire",
         "host=db user=claire password=*** dbname=claire"),
        ("host=db password='it''s secret' dbname=claire", "host=db password=*** dbname=claire"),
        ("s3cret-without-structure", "***"),
        ("", ""),
    ],
)  # fmt: skip
def test_redact_url_masks_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


passwords = st.text(min_size=1, max_size=40).filter(lambda p: "\x00" not in p)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)


@given(user=names, password=passwords, host=names, database=names)
def test_redact_url_replaces_exactly_the_password(
    user: str, password: str, host: str, database: str
) -> None:
    url = f"postgresql://{user}:{quote(password, safe='')}@{host}:5432/{database}"

    assert redact_url(url) == f"postgresql://{user}:***@{host}:5432/{database}"


@given(password=passwords.filter(lambda p: len(p) >= 4))
def test_scrub_removes_the_password_from_any_message(password: str) -> None:
    url = f"postgresql://claire:{quote(password, safe='')}@db/claire"
    message = f"failed for {url}: password {password!s} / {quote(password, safe='')} rejected"

    cleaned = scrub(message, url)

    assert password not in cleaned and quote(password, safe="") not in cleaned


def test_secret_url_is_the_url_but_reprs_redacted() -> None:
    url = SecretUrl("postgresql://claire:s3cret@db/claire")

    assert str(url) == f"{url}" == "postgresql://claire:s3cret@db/claire"
    assert repr(url) == "'postgresql://claire:***@db/claire'"
    assert "s3cret" not in repr({"url": url})


def test_with_database_keeps_server_and_credentials() -> None:
    url = "postgresql://claire:s3cret@/claire?host=%2Ftmp%2Fx&port=5432"

    other = with_database(url, "test_1")

    assert other == "postgresql://claire:s3cret@/test_1?host=%2Ftmp%2Fx&port=5432"
    assert "s3cret" not in repr(other)
