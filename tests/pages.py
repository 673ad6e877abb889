"""The learner's pages as the tests read them: README.md with the pages of docs/, and the
README's commands, by their first words."""

import re

from lesson_runs import REPO

# The learner's pages, as one text: README.md and the pages it links in docs/.
DOCS = "\n".join(page.read_text(encoding="utf-8")
                 for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])


def readme_lines(start):
    """The pages' command lines that start with `start`, in a code block or in backticks."""
    lines = re.findall(rf"^\s*`?({re.escape(start)}[^`\n]*)`?[,.;]?$", DOCS, re.M)
    assert lines, f"the README and docs/ have no command starting {start!r}"
    return lines


def readme_line(start):
    """The one command line of the pages that starts with `start`."""
    (line,) = set(readme_lines(start))
    return line


def readme_block(first_line):
    """The pages' code block that begins with `first_line`."""
    match = re.search(rf"^```[a-z]*\n({re.escape(first_line)}\n.*?)^```", DOCS, re.M | re.S)
    assert match, f"the README and docs/ have no code block starting {first_line!r}"
    return match.group(1)
