"""The command line: an option for each setting, which wins over the parameters cell and the
MNISTLAB_* variables, and --help that shows each setting's value now. Standard library only."""

import argparse
import os

from .checks import photo_paths, switch
from .console import PYTHON, display


class SettingsError(Exception):
    pass


class SettingsParser(argparse.ArgumentParser):
    def error(self, message):
        if "--predict" in message:
            message += (". To read photos with the network saved last, run: "
                        f"{PYTHON} predict.py PHOTO")
        elif "--photos" in message or "augment" in message:
            message += (". Other pens and your photos are lesson two's: "
                        f"{PYTHON} handwriting.py --help")
        raise SettingsError(message)


NOT_GIVEN = "(an empty value)"  # what an option given "" parses to: the value it had holds


def option_type(check):
    """`check` for argparse; an empty value counts as not given, as an empty variable does."""

    def convert(value):
        if not value.strip():
            return NOT_GIVEN
        try:
            return check(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = check.__name__
    return convert


def add_option(parser, setting, value):
    """The setting's option; only the options given end up in the parsed namespace."""
    if setting.check is switch:
        parser.add_argument(setting.flag, dest=setting.name, action=argparse.BooleanOptionalAction,
                            help=f"{setting.help} (now: {'on' if value else 'off'}; "
                            f"{setting.variable}=1)")
    elif setting.check is photo_paths:
        parser.add_argument(setting.flag, dest=setting.name, type=option_type(photo_paths),
                            nargs="+", action="extend", metavar=setting.metavar,
                            help=f"{setting.help} ({setting.variable}, paths separated by "
                            f"{os.pathsep!r})")
    else:
        parser.add_argument(setting.flag, dest=setting.name,
                            type=option_type(setting.check), metavar=setting.metavar,
                            help=f"{setting.help} (now: {display(value)}; {setting.variable})")


def settings_parser(prog, description, settings, values, epilog=None):
    """An argparse parser of these settings' options, whose help shows the values they have now.
    Options left out are left out of what it parses, so that the parse says where each came
    from."""
    parser = SettingsParser(prog=prog, description=description, epilog=epilog,
                            allow_abbrev=False, argument_default=argparse.SUPPRESS)
    parser.settings = settings
    for setting in settings:
        add_option(parser, setting, values[setting.name])
    return parser


def given_options(parsed):
    """The options given a value, an empty one counting as not given; --photos's paths (a list for
    each PATH) as one list."""
    given = {name: value for name, value in vars(parsed).items() if value is not NOT_GIVEN}
    paths = [path for paths in given.pop("photos", []) if paths is not NOT_GIVEN
             for path in (paths if isinstance(paths, list) else [paths])]
    return {**given, "photos": paths} if paths else given


def parse(parser, values, origins, arguments):
    """The namespace of values, with those given as options put in, and `.origins`."""
    given = given_options(parser.parse_args(arguments))
    for setting in parser.settings:
        if setting.name in given:
            origins[setting.name] = setting.flag
    return argparse.Namespace(**{**values, **given, "origins": origins})
