"""The commands' flags: made from Config's and Limits' fields, one meaning per name."""

import dataclasses

import pytest

from nst_tf import options
from nst_tf.config import Config, Limits

COMMANDS = {
    "nst-tf": options.NST_TF_FLAGS,
    "nst-tf-export": options.EXPORT_FLAGS,
    "nst-tf-beam": options.BEAM_FLAGS,
}


def _by_name(command_flags):
    names = [f.name for f in command_flags]
    assert len(names) == len(set(names)), "a flag is defined twice"
    return {f.name: f for f in command_flags}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_config_field_has_its_flag_in_each_command(command):
    flags = _by_name(COMMANDS[command])
    for field in dataclasses.fields(Config):
        assert field.name in flags, f"{command} has no --{field.name}"
        flag = flags[field.name]
        default = field.default
        if isinstance(default, tuple):
            default = [str(v) for v in default]
        assert flag.default == default, field.name
        assert flag.choices == field.metadata["choices"], field.name
        assert flag.help == field.metadata["help"], field.name


def test_the_export_has_a_flag_for_every_limit():
    flags = _by_name(options.EXPORT_FLAGS)
    for field in dataclasses.fields(Limits):
        assert flags[field.name].default == field.default
        assert flags[field.name].help == field.metadata["help"]


@pytest.mark.parametrize("other", ["nst-tf-export", "nst-tf-beam"])
def test_a_name_means_one_thing_in_every_command(other):
    nst_tf, theirs = _by_name(options.NST_TF_FLAGS), _by_name(COMMANDS[other])
    shared = nst_tf.keys() & theirs.keys()
    assert "max_input_pixels" in shared and "max_pixels" not in nst_tf
    for name in shared:
        assert (nst_tf[name].kind, nst_tf[name].help) == (theirs[name].kind, theirs[name].help)


@pytest.mark.parametrize(
    "message,expected",
    [
        ("lower content_weight.", "lower --content_weight."),
        ("style_weight must be a finite number", "--style_weight must be a finite number"),
        ("over the limit of 10 (max_input_pixels)", "over the limit of 10 (--max_input_pixels)"),
        ("/tmp/content_mask.png: no such file", "/tmp/content_mask.png: no such file"),
        ("content_mask.png: no such file", "content_mask.png: no such file"),
        ("size must be at least 16 pixels", "size must be at least 16 pixels"),
        ("unknown layer 'block4_conv4'", "unknown layer 'block4_conv4'"),
        ("use network=vgg16 with them", "use --network=vgg16 with them"),
        ("the network is VGG16", "the network is VGG16"),
    ],
)
def test_errors_name_flags_where_the_library_names_settings(message, expected):
    assert options.in_flag_terms(message, options.NST_TF_FLAGS) == expected
