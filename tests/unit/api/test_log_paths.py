"""Tile paths: the pattern the OpenAPI document states and the parser agree, both ways."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.log_routes import TILE_PATH_PATTERN, parse_tile_path
from replay.tiles import tile_path


@given(st.from_regex(TILE_PATH_PATTERN, fullmatch=True))
def test_every_path_the_pattern_admits_parses(path: str) -> None:
    level, index, width = parse_tile_path(path)
    assert index >= 0 and (width is None or 1 <= width <= 255)
    assert level is None or 0 <= level <= 63


@given(st.integers(0, 63), st.integers(0, 10**15), st.one_of(st.none(), st.integers(1, 255)))
def test_a_canonical_tile_path_round_trips(level: int, index: int, width: int | None) -> None:
    path = tile_path(level, index, width).removeprefix("tile/")
    assert re.fullmatch(TILE_PATH_PATTERN, path)
    assert parse_tile_path(path) == (level, index, width)
    bundle = tile_path("entries", index, width).removeprefix("tile/")
    assert parse_tile_path(bundle) == (None, index, width)


@given(st.text(alphabet="0123456789x./pentris", max_size=20))
def test_the_parser_accepts_nothing_the_pattern_refuses(path: str) -> None:
    try:
        parse_tile_path(path)
    except ValueError:
        return
    assert re.fullmatch(TILE_PATH_PATTERN, path), path


def test_the_spec_example_index() -> None:
    assert parse_tile_path("0/x001/x234/067") == (0, 1234067, None)
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    with pytest.raises(ValueError):
        parse_tile_path("0/x000/067")
