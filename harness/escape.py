"""One escape function per medium that text leaves the harness through.

Names and messages come from model files (a class name, an exception a Lambda raised),
from documents someone else wrote (a results.json from another CI) and from file names:
they are an attacker's text. Every place that writes such text into a medium passes it
through that medium's function here, and nowhere else:

- `terminal`: control characters (ESC, newline, bidi overrides...) shown as visible
  escapes and rich markup escaped, so a type name cannot clear the screen, colour a fake
  verdict, hide text or break the console's markup;
- `markdown` / `markdown_code`: report.md and GitHub step summaries (HTML and Markdown
  syntax escaped; a code span that no backtick run can close);
- `xml`: JUnit XML (characters XML 1.0 forbids shown as escapes; ElementTree does the rest);
- `workflow_data` / `workflow_property`: GitHub workflow commands, as the runner unescapes them;
- `shell_word`: a word of a generated shell line (workflows, GitLab files, READMEs);
- HTML: Jinja2's autoescape and `tojson` (report.html), nothing here.

`clean` is for the way in: text decoded from JSON may hold lone surrogates, which no
UTF-8 writer accepts; they become U+FFFD where text enters (documents, model files, cells).
"""

from __future__ import annotations

import re

from rich.markup import escape as _rich_escape

# C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or hide
# text (bidi embeddings, overrides and isolates; zero-width and invisible separators, BOM).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# What XML 1.0 forbids (its Char production): controls but tab, newline and return; lone surrogates; U+FFFE/FFFF.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Markdown and HTML syntax that text could use to open raw HTML, links, images, code or table
# cells. Emphasis marks (* _ ~) and ">" are left: they can only restyle the text they stand in
# (a ">" opens nothing without a "<", and a quote only at a line's start, where no value stands).
_MARKDOWN_SPECIAL = re.compile(r"([\\`\[\]<|&])")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def clean(text: str) -> str:
    """`text` with lone surrogates (from JSON's \\ud800 escapes) made U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def visible(text: object) -> str:
    """`text` with every control and format character shown as an escape (`\\e`, `\\n`, `\\u202e`)."""
    value = clean(str(text))
    if not _CONTROL.search(value):
        return value
    return _CONTROL.sub(_shown, value)


def _shown(found: re.Match[str]) -> str:
    char = found.group()
    named = _NAMED.get(char)
    if named:
        return named
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def controls_shown(text: str) -> str:
    """`text` with every control and format character but newline and tab shown as an escape: for
    whole outputs (a table, a rendered file) where the harness's own newlines must stay."""
    value = clean(text)
    return _CONTROL_BUT_LINES.sub(_shown, value) if _CONTROL_BUT_LINES.search(value) else value


def terminal(text: object) -> str:
    """For rich's console with markup on: controls visible, markup escaped."""
    return _rich_escape(visible(text))


def markdown(text: object) -> str:
    """Plain Markdown text (a table cell, a list item, a quote): one line, no markup of its own."""
    value = visible(text).replace("\\n", " ")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", value)


def markdown_code(text: object) -> str:
    """A Markdown code span holding `text` literally, in a table cell too: fenced by a longer
    backtick run than any inside it, the table's pipe escaped (GFM reads `\\|` as a pipe there)."""
    value = visible(text).replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value.strip() else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def xml(text: object) -> str:
    """Text for an XML 1.0 document (ElementTree escapes <, >, & and quotes itself)."""
    value = str(text)
    if not _XML_FORBIDDEN.search(value):
        return value
    return _XML_FORBIDDEN.sub(_shown, value)


def workflow_data(text: object) -> str:
    """The message of a GitHub workflow command (`::error::MESSAGE`), as the runner unescapes it."""
    return visible(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: object) -> str:
    """A property of a workflow command (`title=...`)."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


def shell_word(text: object) -> str:
    """One word of a POSIX shell line, quoted so that the shell runs nothing in it."""
    import shlex

    return shlex.quote(str(text))
