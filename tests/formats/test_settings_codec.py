"""The settings codec: what it writes equals what the components stored before it, and every way a stored
setting can be wrong is refused with the setting named."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import pytest

from formats.settings_codec import decode_settings, encode_settings, settings_from_value


@dataclass(frozen=True)
class Inner:
    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class Outer:
    epochs: int = 3
    rate: float = 0.5
    enabled: bool = True
    label: str = "x"
    limit: int | None = None
    grid: tuple[float, ...] = (0.1, 1.0)
    pair: tuple[int, str] = (1, "a")
    inner: Inner = field(default_factory=lambda: Inner("i"))
    maybe_inner: Inner | None = None
    names: list[str] = field(default_factory=list)


def test_encoding_is_asdict_with_sorted_keys_byte_for_byte():
    settings = Outer(limit=4, maybe_inner=Inner("m", 2.5), names=["p", "q"])
    assert encode_settings(settings) == json.dumps(dataclasses.asdict(settings), sort_keys=True)


def test_a_round_trip_gives_equal_settings_with_tuples_and_nested_classes_rebuilt():
    settings = Outer(
        epochs=7, limit=4, grid=(0.0, 2.0), pair=(3, "b"), maybe_inner=Inner("m", 2), names=["p"]
    )
    decoded = decode_settings(Outer, encode_settings(settings), "config")
    assert decoded == settings
    assert isinstance(decoded.grid, tuple) and isinstance(decoded.pair, tuple)
    assert isinstance(decoded.maybe_inner, Inner)


@pytest.mark.parametrize("text", ["", None, "{}"])
def test_nothing_stored_is_every_default(text):
    assert decode_settings(Outer, text, "config") == Outer()


def test_missing_keys_take_their_defaults():
    assert decode_settings(Outer, '{"epochs": 9}', "config") == Outer(epochs=9)


def test_an_int_is_a_float_json_does_not_tell_them_apart():
    assert decode_settings(Outer, '{"rate": 1}', "config").rate == 1


def test_an_unknown_key_is_named_with_its_class_and_the_known_ones_listed():
    with pytest.raises(ValueError) as error:
        decode_settings(Outer, '{"epochz": 3}', "trainer config")
    assert str(error.value).startswith(
        "trainer config: unknown setting Outer.epochz (known: enabled, epochs,"
    )


def test_an_unknown_key_inside_a_nested_class_names_that_class():
    with pytest.raises(ValueError, match=r"config: unknown setting Inner\.nam \(known: name, weight\)"):
        decode_settings(Outer, '{"inner": {"nam": "x"}}', "config")


def test_a_missing_required_key_is_named():
    with pytest.raises(ValueError, match=r"config: missing setting Inner\.name"):
        decode_settings(Outer, '{"inner": {"weight": 2}}', "config")


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"epochs": "abc"}, 'setting Outer.epochs must be int, got "abc"'),
        ({"epochs": 2.5}, "setting Outer.epochs must be int, got 2.5"),
        ({"epochs": True}, "setting Outer.epochs must be int, got true"),
        ({"rate": "fast"}, 'setting Outer.rate must be float, got "fast"'),
        ({"enabled": 1}, "setting Outer.enabled must be bool, got 1"),
        ({"label": 3}, "setting Outer.label must be str, got 3"),
        ({"limit": "4"}, 'setting Outer.limit must be int, got "4"'),
        ({"grid": 0.5}, "setting Outer.grid must be tuple[float, ...], got 0.5"),
        ({"grid": [0.5, "x"]}, 'setting Outer.grid[1] must be float, got "x"'),
        ({"pair": [1]}, "setting Outer.pair must be tuple[int, str], got [1]"),
        ({"inner": "i"}, 'setting Outer.inner must be Inner, got "i"'),
        ({"inner": {"name": "n", "weight": "heavy"}}, 'setting Inner.weight must be float, got "heavy"'),
        ({"names": ["a", 2]}, "setting Outer.names[1] must be str, got 2"),
        ({"enabled": None}, "setting Outer.enabled must be bool, got null"),
    ],
)
def test_a_wrong_type_is_refused_naming_the_setting_and_the_value(stored, message):
    with pytest.raises(ValueError) as error:
        decode_settings(Outer, json.dumps(stored), "config")
    assert str(error.value) == f"config: {message}"


@pytest.mark.parametrize("text", ["epochs=3", "[1, 2]", '"x"'])
def test_text_that_is_not_a_json_object_is_refused(text):
    with pytest.raises(ValueError, match=r"^config: (not valid JSON|expected a JSON object)"):
        decode_settings(Outer, text, "config")


def test_a_settings_classs_own_checks_still_run():
    @dataclass(frozen=True)
    class Positive:
        n: int = 1

        def __post_init__(self):
            if self.n < 1:
                raise ValueError(f"Positive.n must be >= 1, got {self.n}")

    with pytest.raises(ValueError, match=r"Positive\.n must be >= 1, got 0"):
        settings_from_value(Positive, {"n": 0}, "config")
