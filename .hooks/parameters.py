"""The forms of the settings written from SETTINGS, where each is declared: each lesson's
parameters cell, its values and comments, and the table of docs/settings.md. Run it after
changing a setting: `.venv/bin/python .hooks/parameters.py`; tests/test_package.py checks that
the lessons and the page are up to date. Not imported by the package: the lessons never need it.
"""

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the package, run as a script
from mnistlab_tools.files import HERE  # noqa: E402
from mnistlab_tools.settings import LESSONS, SETTINGS, photo_paths, settings_of, switch  # noqa: E402

LESSON_WORDS = {"mnistlab": "one", "handwriting": "two", "ddp": "three"}  # as pages name them
CELL_START = '# %% tags=["parameters"]\n'
TABLE_HEAD = ("| in the parameters cell | lessons | option | environment variable "
              "| what it does |\n| --- | --- | --- | --- | --- |\n")


def literal(value):
    """A value as the parameters cell writes it: text in double quotes, as the lessons do."""
    if isinstance(value, (str, list)):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def parameters_cell(lesson):
    """The lesson's parameters cell: `name = value` and its comment, a line each."""
    lines = [f"{f'{s.name} = {literal(s.default)}':24}  # {s.comment or s.help}"
             for s in settings_of(LESSONS[lesson])]
    return CELL_START + "\n".join(lines) + "\n"


def option_of(setting):
    if setting.check is switch:
        return f"{setting.flag}, --no-{setting.flag[2:]}" if setting.default else setting.flag
    if setting.check is photo_paths:
        return f"{setting.flag} {setting.metavar} …"
    return f"{setting.flag} {setting.metavar}"


def variable_of(setting):
    if setting.check is switch:
        return f"{setting.variable}={0 if setting.default else 1}"
    return setting.variable


def table_row(setting):
    having = [lesson for lesson in LESSONS if setting.name in LESSONS[lesson].settings]
    what = setting.docs or setting.comment or setting.help
    for lesson in having:
        own = LESSONS[lesson].own.get(setting.name, {})
        if "default" in own:
            what += f"; lesson {LESSON_WORDS[lesson]}'s cell has `{setting.name} = " \
                    f"{literal(own['default'])}`"
    words = [LESSON_WORDS[lesson] for lesson in having]
    lessons = " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 2 else words)
    return (f"| `{setting.name} = {literal(setting.default)}` | {lessons} | "
            f"`{option_of(setting)}` | `{variable_of(setting)}` | {what} |\n")


def settings_table():
    return TABLE_HEAD + "".join(table_row(setting) for setting in SETTINGS)


def with_cell(script, lesson):
    """The script's text with its parameters cell written anew."""
    cell = parameters_cell(lesson)
    return re.sub(re.escape(CELL_START) + r"(?:.+\n)*", lambda _: cell, script, count=1)


def with_table(page):
    """docs/settings.md's text with its table of settings written anew."""
    table = settings_table()
    return re.sub(re.escape(TABLE_HEAD) + r"(?:\|.*\n)*", lambda _: table, page, count=1)


def written():
    """{path: text} of every file that holds a form of the settings, as it should be."""
    texts = {}
    for lesson in LESSONS:
        script = HERE / LESSONS[lesson].script
        texts[script] = with_cell(script.read_text(encoding="utf-8"), lesson)
    page = HERE / "docs" / "settings.md"
    texts[page] = with_table(page.read_text(encoding="utf-8"))
    return texts


if __name__ == "__main__":
    for path, text in written().items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"Wrote the settings into {path.relative_to(HERE)}.")
