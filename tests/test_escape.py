"""Names and messages a model controls, through every medium the harness writes (escape.py):
the terminal, report.md and the step summary, junit.xml, report.html, GitHub workflow commands,
and the shell lines of generated CI files. A file name and an exception type here carry rich
markup, ESC sequences, newlines that would start workflow commands, raw HTML and XML's
forbidden characters; none of it may act as anything but text.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml
from fakes import fails
from test_pipeline import MODELS, TABLE, fake  # noqa: F401 - the fake backend's fixture

from harness import cli, escape

# A file name can hold anything but "/" and NUL: this one tries the terminal, Markdown, HTML and workflow commands.
HOSTILE_NAME = "m[bold red]x[link=http:127.0.0.1]\x1b[2J\x1b[32mall 12 cells loaded\x07\n::error::pwned ##[error]v1 <img src=x onerror=alert(1)> |x| `t`.h5"
HOSTILE_TYPE = "T[/]\x1b]8;;http://127.0.0.1:9\x1b\\\x1b[8mhidden\n::add-mask::x\ud800"
HOSTILE_MESSAGE = "<script>alert(1)</script>\n##[set-output name=x;]y ]]> \x0c\x1b[31m red | `code` [link](http://127.0.0.1:9)"


def test_escape_functions_one_per_medium():
    assert escape.visible("a\x1b[2Jb\nc\u202ed") == "a\\e[2Jb\\nc\\u202ed"
    assert escape.terminal("T[/]") == "T\\[/]"
    assert escape.controls_shown("line\n\x1b[1mx\ttab") == "line\n\\e[1mx\ttab"
    assert escape.markdown("<img src=x> | [a](b) `c` &amp;") == "\\<img src=x> \\| \\[a\\](b) \\`c\\` \\&amp;"
    assert escape.markdown_code("a ``b`` c|d") == "```a ``b`` c\\|d```"
    assert escape.markdown_code("`x") == "`` `x ``"
    assert escape.xml("a\x1b\x07\ud800b\tc") == "a\\e\\x07\\ud800b\tc"
    assert escape.workflow_data("50%\nx") == "50%25\\nx"
    assert escape.workflow_property("a:b,c") == "a%3Ab%2Cc"
    assert escape.shell_word("$(touch x)") == "'$(touch x)'"
    assert escape.clean("a\ud800b") == "a\ufffdb"


def runner_commands(output: str) -> list[str]:
    """The workflow commands GitHub's runner would act on in `output` (actions/runner's
    ActionCommandManager: `::cmd::` at a line's start after spaces, `##[cmd]` anywhere in a line,
    nothing but the token while stopped by `::stop-commands::TOKEN`)."""
    acted, token = [], None
    for line in output.splitlines():
        v2 = re.match(r"\s*::([^: ]+)[^:]*::", line)
        v1 = re.search(r"##\[([^\] ;]+)", line)
        name = v2.group(1) if v2 else v1.group(1) if v1 else None
        if name is None:
            continue
        if token is not None:
            if name == token:
                token = None
            continue
        if name == "stop-commands":
            token = line.split("::")[2] if v2 else line.split("]", 1)[1]
            continue
        acted.append(line)
    return acted


@pytest.fixture
def hostile_run(fake, tmp_path, monkeypatch, capsys):  # noqa: F811 - the fixture imported above
    """`harness run` inside (simulated) GitHub Actions on a file with a hostile name whose loads raise
    hostile exceptions: (exit code, stdout, stderr, output folder, step summary)."""
    model = tmp_path / HOSTILE_NAME
    shutil.copyfile(MODELS / "dense.h5", model)
    fake.table = {**TABLE, **{(HOSTILE_NAME, v): fails(HOSTILE_TYPE, HOSTILE_MESSAGE) for v in ("2.15.1", "2.16.2", "2.21.0")}}
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "baseline.json").write_text(
        json.dumps({"schema": "harness-baseline", "accepted": {HOSTILE_NAME: {"py3.11-tensorflow2.15.1": {"status": "loaded"}}}})
    )
    from harness.report import github

    monkeypatch.setattr(github, "_stopped", [])
    code = cli.main(["run", "m.yaml", str(model), "-o", "out", "--backend", "fake", "--baseline", "baseline.json", "-v"])
    out, err = capsys.readouterr()
    return code, out, err, tmp_path / "out", summary


def test_the_terminal_shows_a_models_text_and_runs_none_of_it(hostile_run):
    code, out, err, _, _ = hostile_run
    assert code == 1, err  # load failures: the verdict, not an internal error (70)
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\e[2J" in out  # shown as an escape
    assert not any(line.lstrip().startswith("::error::pwned") for line in out.splitlines())


def test_inside_github_actions_only_the_harnesss_own_workflow_commands_are_read(hostile_run):
    _, out, _, _, _ = hostile_run
    assert out.splitlines()[0].startswith("::stop-commands::")
    acted = runner_commands(out)
    assert acted and all(line.startswith("::error title=harness%3A ") for line in acted)  # the regressions, ours
    assert all("\n" not in line and "::add-mask::x" not in line.split("::", 2)[1] for line in acted)


def test_report_md_and_the_step_summary_hold_no_markup_of_the_model(hostile_run):
    """Rendered as GitHub renders Markdown (CommonMark, raw HTML on, tables): no element, link or
    image of the model's, and no table row broken by its pipes."""
    from markdown_it import MarkdownIt

    _, _, _, folder, summary = hostile_run
    render = MarkdownIt("commonmark", {"html": True}).enable("table").render
    for text in ((folder / "report.md").read_text(), summary.read_text()):
        html = render(text)
        assert "<img" not in html and "<script" not in html and "<a " not in html and "\x1b" not in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;" in html  # shown, as text
        overview, _, sections = text.partition("\n## `")  # the overview's grid (one column per cell), then each model's table
        rows = [line for line in sections.splitlines() if line.startswith("| `") or line.startswith("| ``")]
        assert rows and all(len(re.findall(r"(?<!\\)\|", row)) == 6 for row in rows)  # five cells a row: no pipe broke out
        grid = [line for line in overview.splitlines() if line.startswith("| `") or line.startswith("| ``")]
        assert len(grid) == 1 and len(re.findall(r"(?<!\\)\|", grid[0])) == 3 + 2  # the model's name and its three cells


def test_junit_xml_parses_with_every_reader(hostile_run):
    import junitparser

    _, _, _, folder, _ = hostile_run
    text = (folder / "junit.xml").read_text()
    root = ET.fromstring(text)
    failures = root.findall(".//failure")
    assert failures and all("\x1b" not in (f.text or "") + f.get("message", "") for f in failures)
    assert "\\e[2J" in text
    suites = list(junitparser.JUnitXml.fromfile(str(folder / "junit.xml")))
    assert sum(len(list(s)) for s in suites) == 3  # one model, three cells


def test_report_html_shows_the_text_as_text(hostile_run):
    _, _, _, folder, _ = hostile_run
    html = (folder / "report.html").read_text()
    assert "<img src=x onerror" not in html and "<script>alert(1)" not in html
    data = re.search(r'<script type="application/json" id="harness-data">(.*?)</script>', html, re.S)
    assert data and "</script" not in data.group(1) and json.loads(data.group(1))


def test_results_json_keeps_the_text_as_data(hostile_run):
    _, _, _, folder, _ = hostile_run
    doc = json.loads((folder / "results.json").read_text())
    assert any(m["name"] == HOSTILE_NAME for m in doc["models"])
    assert any((r.get("exception") or {}).get("type") == HOSTILE_TYPE.replace("\ud800", "\ufffd") for r in doc["results"])
    assert cli.main(["report", str(folder / "results.json"), "-o", str(folder / "again")]) == 0  # a document it wrote reads back


# --------------------------------------------------------------------------- generated CI files


def _commands(text: str, fmt: str) -> list[str]:
    data = yaml.safe_load(text)
    if fmt == "github":
        return [step["run"] for job in data["jobs"].values() for step in job["steps"] if "run" in step]
    return [line for job in data.values() if isinstance(job, dict) for line in (job.get("before_script") or []) + (job.get("script") or [])]


@pytest.mark.parametrize("fmt", ["github", "gitlab"])
def test_a_generated_ci_file_runs_no_word_of_a_file_name(fmt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    name = "m${IFS}$(touch${IFS}PWNED)`touch PWNED2`;touch PWNED3 'q\".h5"
    shutil.copyfile(MODELS / "dense.h5", tmp_path / "models" / name)
    (tmp_path / "m.yaml").write_text('matrix:\n  tensorflow: ["2.15"]\n')
    out = tmp_path / "ci.yml"
    code = cli.main(["schedule", "m.yaml", f"models/{name}", "--format", fmt, "--install", "harness @ git+https://h/x", "-o", str(out)])
    assert code == 0
    text = out.read_text()
    yaml.safe_load(text)  # still one YAML document
    stubs = 'harness() { printf "%s\\n" "$@" >> args.txt; }; python() { :; }; cat() { :; }\nexport GITHUB_STEP_SUMMARY=/dev/null CI_NODE_INDEX=1 CI_NODE_TOTAL=1\n'
    for command in _commands(text, fmt):
        command = command.replace("${{ matrix.shard }}", "1")
        done = subprocess.run(["bash", "-c", stubs + command], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (command, done.stderr)
    assert not any((tmp_path / p).exists() for p in ("PWNED", "PWNED2", "PWNED3"))
    assert f"models/{name}" in (tmp_path / "args.txt").read_text().splitlines()  # one word, as written


@pytest.mark.parametrize("name", ["m${{ secrets.TOKEN }}.h5", "m\nname: x.h5"])
def test_what_no_quoting_stops_is_refused(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    shutil.copyfile(MODELS / "dense.h5", tmp_path / "models" / name)
    (tmp_path / "m.yaml").write_text('matrix:\n  tensorflow: ["2.15"]\n')
    code = cli.main(["schedule", "m.yaml", f"models/{name}", "--install", "harness @ git+https://h/x", "-o", str(tmp_path / "ci.yml")])
    assert code == 2 and "cannot stand in a CI file" in capsys.readouterr().err
    assert not (tmp_path / "ci.yml").exists()
