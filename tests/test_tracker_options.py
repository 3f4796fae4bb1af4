"""TrackerOptions and the one table of option metadata (OPTION_INFO) that user interfaces derive from."""

from __future__ import annotations

import dataclasses

import pytest

from tracker import OPTION_INFO, OptionInfo, PoseTracker, TrackerOptions


def test_every_option_is_described_once_in_field_order():
    names = [field.name for field in dataclasses.fields(TrackerOptions)]
    assert list(OPTION_INFO) == names
    for name, info in OPTION_INFO.items():
        assert isinstance(info, OptionInfo)
        assert len(info.help) > 20 and info.help[0].isupper() and info.help.endswith("."), name


def test_text_options_list_their_choices_and_the_default_is_one_of_them():
    for field in dataclasses.fields(TrackerOptions):
        info = OPTION_INFO[field.name]
        if isinstance(field.default, str):
            assert info.choices and field.default in info.choices, field.name
        else:
            assert info.choices is None, field.name


@pytest.mark.parametrize("name", [name for name, info in OPTION_INFO.items() if info.choices])
def test_choices_are_what_the_tracker_accepts(name):
    for choice in OPTION_INFO[name].choices:
        PoseTracker(**{name: choice})
    with pytest.raises(ValueError, match=f"TrackerOptions.{name} must be one of"):
        TrackerOptions(**{name: "no such choice"})


def test_live_options_are_the_ones_worth_changing_while_watching():
    live = {name for name, info in OPTION_INFO.items() if info.live}
    assert live == {"similarity", "matching", "similarity_threshold", "max_age", "min_hits", "min_score",
                    "motion", "flow", "smoothing", "reid", "reid_threshold", "reid_memory_s"}


def test_the_command_line_flags_are_derived_from_the_table():
    import argparse

    from cli.options import add_tracker_arguments, tracker_options

    parser = argparse.ArgumentParser()
    add_tracker_arguments(parser)
    actions = {action.dest: action for action in parser._actions}
    assert actions["track_similarity"].choices == OPTION_INFO["similarity"].choices
    assert actions["track_threshold"].help.startswith(OPTION_INFO["similarity_threshold"].help)
    assert actions["track_flow"].help == OPTION_INFO["flow"].help
    args = parser.parse_args(["--track-threshold", "0.4", "--track-smoothing", "one_euro",
                              "--tracker-option", "velocity_bound_frames=0"])
    assert tracker_options(args) == {"similarity_threshold": 0.4, "smoothing": "one_euro", "velocity_bound_frames": 0}
    PoseTracker(**tracker_options(args))
