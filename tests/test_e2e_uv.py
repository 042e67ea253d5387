"""End to end on the uv backend: real environments, real TensorFlow releases, real models.

The models are saved during the run by TF 2.15.1 (Keras 2, HDF5) and TF 2.21.0 (Keras 3,
`.keras`); the matrix spans Keras 2 to 3: TF 2.14.0 (numpy 2 breaks its import), 2.15.1
with and without tensorflow-addons, 2.16.2 plain and in tf-keras legacy mode, and 2.21.0.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.backends.uv import UvBackend
from harness.cell import run_cell
from harness.inspection import inspect_model
from harness.matrix import parse_matrix
from harness.plan import EnvSpec
from harness.resolve import Lock, Resolver
from harness.store import Store

pytestmark = pytest.mark.e2e

MATRIX = """
name: e2e
matrix:
  python: ["{python}"]
  tensorflow: ["2.15.1", "2.16.2", "2.21.0"]
  tensorflow-addons: [null]
  include:
    - {{tensorflow: "2.14.0"}}
    - {{tensorflow: "2.15.1", tensorflow-addons: "0.23"}}
    - {{tensorflow: "2.16", tf-keras: "2.16", env: {{TF_USE_LEGACY_KERAS: "1"}}}}
packages: {{tensorflow: tensorflow-cpu}}
load: {{timeout: 240}}
"""
MODELS = ["residual_block.h5", "custom_loss.h5", "addons_groupnorm.h5", "dense.h5", "dense_keras3.keras", "truncated.h5"]
TF214 = "py3.11-tensorflow2.14.0"
TF215 = "py3.11-tensorflow2.15.1"
TF215_ADDONS = "py3.11-tensorflow2.15.1-tensorflow-addons0.23.0"
TF216 = "py3.11-tensorflow2.16.2"
TF216_LEGACY = "py3.11-tensorflow2.16.2-tf-keras2.16.0-legacy"
TF221 = "py3.11-tensorflow2.21.0"


def run_harness(monkeypatch: pytest.MonkeyPatch, cache: Path, *args: str) -> int:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    return cli.main(["run", *args])


@pytest.fixture(scope="module")
def e2e_run(tmp_path_factory: pytest.TempPathFactory, saved_models: dict[str, Path], harness_cache: Path) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("e2e")
    matrix = work / "matrix.yaml"
    matrix.write_text(MATRIX.format(python="3.11"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_STORE", str(work / "store.sqlite"))
        code = run_harness(mp, harness_cache, str(matrix), *(str(saved_models[m]) for m in MODELS), "-o", str(work / "out"), "-j", "2")
    doc = json.loads((work / "out" / "results.json").read_text())
    return {"code": code, "doc": doc, "out": work / "out"}


def result(doc: dict[str, Any], model: str, cell: str) -> dict[str, Any]:
    found = [r for r in doc["results"] if r["model"] == model and r["cell"] == cell]
    assert len(found) == 1, f"{model} @ {cell}: {len(found)} results"
    return found[0]


def test_every_cell_of_every_model_has_one_result(e2e_run):
    doc = e2e_run["doc"]
    assert [c["id"] for c in doc["cells"]] == [TF215, TF216, TF221, TF214, TF215_ADDONS, TF216_LEGACY]
    assert len(doc["results"]) == len(MODELS) * 6
    assert doc["run"]["complete"] is True
    assert e2e_run["code"] == 1  # some cells fail to load


def test_custom_layer_not_registered(e2e_run):
    for cell in (TF215, TF216, TF221, TF216_LEGACY):
        r = result(e2e_run["doc"], "residual_block.h5", cell)
        assert (r["status"], r["cause"], r["missing_name"]) == ("load-error", "custom-object", "ResidualBlock"), cell
        assert r["exception"]["type"] == "ValueError"
        assert "Unknown layer: 'ResidualBlock'" in r["exception"]["message"]
        assert "custom_objects={'ResidualBlock': ResidualBlock}" in r["fix"]


def test_custom_loss_not_registered(e2e_run):
    r = result(e2e_run["doc"], "custom_loss.h5", TF215)
    assert (r["cause"], r["missing_name"], r["exception"]["type"]) == ("custom-object", "my_custom_loss", "ValueError")
    assert "Unknown loss function: 'my_custom_loss'" in r["exception"]["message"]
    # the harness tried loading without the training config, and that worked
    assert (r["status"], r["fix_worked"]) == ("loaded-after-fix", "compile=False")
    # Keras 3 reads the Keras 2 training config differently, and compile=False is the way out
    r3 = result(e2e_run["doc"], "custom_loss.h5", TF221)
    assert r3["status"] == "loaded-after-fix" and r3["fix_worked"] == "compile=False"
    assert r3["exception"]["type"] == "TypeError"
    # the TypeError names nothing, but the file's training config names the loss: a custom object
    assert (r3["cause"], r3["missing_name"]) == ("custom-object", "my_custom_loss")


def test_addons_layer_needs_tensorflow_addons(e2e_run):
    r = result(e2e_run["doc"], "addons_groupnorm.h5", TF215)
    # Addons is missing; the config with Keras's own GroupNormalization (repair.py) loads in the cell itself
    assert (r["status"], r["cause"], r["missing_name"], r["fix_worked"]) == (
        "loaded-after-fix",
        "missing-dependency",
        "Addons>GroupNormalization",
        "repaired config",
    )
    assert "install tensorflow-addons==0.23.* (built for tensorflow 2.15)" in r["fix"] and "renamed to their Keras equivalents" in r["fix"]
    # the original loads as it is with Addons in this run, and no outputs were compared: the repair is not called proven
    assert r["recipe"]["proven"] is False and "outputs were not compared" in r["recipe"]["why"] and "not proven" in r["fix"]
    assert any("Addons>GroupNormalization -> GroupNormalization" in x for x in r["recipe"]["load"]["repairs"])
    ok = result(e2e_run["doc"], "addons_groupnorm.h5", TF215_ADDONS)
    assert ok["status"] == "loaded" and ok["recipe"] is None
    assert ok["plugins"] == [{"name": "tensorflow_addons", "installed": True, "ok": True}]
    k3 = result(e2e_run["doc"], "addons_groupnorm.h5", TF221)
    assert (k3["status"], k3["cause"], k3["fix_worked"]) == ("loaded-after-fix", "missing-dependency", "repaired config")
    assert "no Keras 3 support" in k3["fix"]


def test_every_failure_has_a_known_cause(e2e_run):
    failing = [r for r in e2e_run["doc"]["results"] if r["status"] not in ("loaded", "skipped")]
    assert failing and all(r["cause"] not in (None, "unknown") for r in failing), [
        (r["model"], r["cell"]) for r in failing if r["cause"] in (None, "unknown")
    ]


def test_environments_share_the_bytecode_of_the_sources_they_share(e2e_run, harness_cache):
    """TF 2.15.1 with and without Addons: one compile of TensorFlow's modules, linked into both
    (bytecode.py); what differs (Addons) is compiled for its own environment only."""
    keys = {cell["id"]: cell["env_key"] for cell in e2e_run["doc"]["cells"]}
    plain, addons = (harness_cache / "envs" / keys[cell] / "lib" / "python3.11" / "site-packages" for cell in (TF215, TF215_ADDONS))
    for rel in ("tensorflow/__pycache__/__init__.cpython-311.pyc", "keras/src/engine/__pycache__/training.cpython-311.pyc"):
        one, other = plain / rel, addons / rel
        assert one.stat().st_ino == other.stat().st_ino, rel
        assert one.read_bytes()[4:8] == b"\x01\x00\x00\x00"  # hash-based: valid wherever these bytes lie
    assert next((addons / "tensorflow_addons" / "__pycache__").glob("__init__.*.pyc"))
    assert not (plain / "tensorflow_addons").exists()
    # Every load in these environments ran from that bytecode: the cells' results are the run's.
    assert result(e2e_run["doc"], "dense.h5", TF215)["status"] == result(e2e_run["doc"], "dense.h5", TF215_ADDONS)["status"] == "loaded"


def test_addons_release_outside_its_tensorflow_range(tmp_path, monkeypatch, saved_models, harness_cache):
    # tensorflow-addons 0.20 was built for TF 2.10-2.12; under TF 2.15 its import fails
    # (ImportError: cannot import name 'tf_utils' from 'keras.utils'), so its layers stay unknown.
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.15.1"]\n  tensorflow-addons: ["0.20"]\npackages: {tensorflow: tensorflow-cpu}\n')
    code = run_harness(monkeypatch, harness_cache, str(matrix), str(saved_models["addons_groupnorm.h5"]), "-o", str(tmp_path / "out"))
    [r] = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert code == 0  # it loads, with the config repaired to Keras's own GroupNormalization
    assert (r["status"], r["cause"], r["exception"]["type"], r["fix_worked"]) == (
        "loaded-after-fix",
        "version-mismatch",
        "ValueError",
        "repaired config",
    )
    [plugin] = r["plugins"]
    assert (plugin["installed"], plugin["ok"], plugin["error"]["type"]) == (True, False, "ImportError")
    assert "use tensorflow-addons==0.23.*" in r["fix"] and "renamed to their Keras equivalents" in r["fix"]
    # nothing in this run loads the original, so there are no outputs to compare with: the load proves it
    assert r["recipe"]["proven"] is True and r["recipe"]["where"] == r["cell"]


def test_keras3_file_in_keras2_and_keras2_file_in_keras3(e2e_run):
    doc = e2e_run["doc"]
    old = result(doc, "dense_keras3.keras", TF215)
    assert (old["status"], old["cause"], old["exception"]["type"]) == ("load-error", "version-mismatch", "TypeError")
    assert "tensorflow>=2.16" in old["fix"]
    legacy = result(doc, "dense_keras3.keras", TF216_LEGACY)
    assert (legacy["status"], legacy["cause"]) == ("load-error", "version-mismatch")
    for cell in (TF216, TF221):
        assert result(doc, "dense_keras3.keras", cell)["status"] == "loaded"
        assert result(doc, "dense.h5", cell)["status"] == "loaded"  # Keras 3 still reads legacy H5
    assert result(doc, "dense.h5", TF216_LEGACY)["versions"]["tf-keras"] == "2.16.0"


def test_numpy2_breaks_the_tensorflow_import_with_attribute_error(e2e_run):
    for model in ("dense.h5", "residual_block.h5"):
        r = result(e2e_run["doc"], model, TF214)
        assert (r["status"], r["cause"]) == ("import-error", "environment")
        assert r["attribute_error"] is True
        assert r["attribute"] == "_ARRAY_API"
        assert r["versions"]["numpy"].startswith("2.")
        assert "pin numpy<2" in r["fix"]
        assert "AttributeError: _ARRAY_API not found" in r["stderr_tail"]


def test_truncated_file_is_corrupt_everywhere(e2e_run):
    for cell in (TF214, TF215, TF221):
        r = result(e2e_run["doc"], "truncated.h5", cell)
        assert (r["status"], r["cause"]) == ("load-error", "corrupt-file")
        assert "truncated HDF5 file" in r["detail"]


def test_reports_show_the_boundary_and_attribute_errors(e2e_run):
    out = e2e_run["out"]
    md = (out / "report.md").read_text()
    assert "fails up to tensorflow 2.15.1; loads from 2.16.2 on" in md  # dense_keras3.keras
    assert "**AttributeError** in" in md and "_ARRAY_API" in md
    html = (out / "report.html").read_text()
    assert html.count('class="cell s-') == len(MODELS) * 6
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html.split("<main>")[0]
    junit = ET.parse(out / "junit.xml").getroot()
    suites = junit.findall("testsuite")
    assert [s.get("name") for s in suites] == MODELS
    assert all(len(s.findall("testcase")) == 6 for s in suites)
    assert (out / "logs" / f"{TF214}.log").read_text().count("_ARRAY_API") >= 1


def test_custom_objects_file_proves_the_fix(tmp_path, monkeypatch, capsys, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    objects = Path(__file__).resolve().parent.parent / "examples" / "custom_objects.py"
    matrix.write_text(
        f'matrix:\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {{tensorflow: tensorflow-cpu}}\nload: {{custom_objects: "{objects}"}}\n'
    )
    code = run_harness(
        monkeypatch,
        harness_cache,
        str(matrix),
        str(saved_models["residual_block.h5"]),
        str(saved_models["custom_loss.h5"]),
        "-o",
        str(tmp_path / "out"),
        "-v",
    )
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 0
    for r in doc["results"]:
        assert r["status"] == "loaded-after-fix", r
        assert r["fix_worked"].startswith("custom_objects") or r["fix_worked"] == "compile=False"
        assert r["cause"] == "custom-object" or r["fix_worked"] == "compile=False"
    assert result(doc, "residual_block.h5", "py3.11-tensorflow2.15.1")["fix_worked"] == "custom_objects"
    # not a terminal, -v: one line per stage of each running cell, read from the probe's channel as it came
    shown = capsys.readouterr().out
    for cell in ("py3.11-tensorflow2.15.1", "py3.11-tensorflow2.21.0"):
        stages = [line.split(": ", 1)[1] for line in shown.splitlines() if line.startswith(f"  {cell}: ")]
        assert stages[-3:] == ["importing TensorFlow", "loading model 1/2", "loading model 2/2"], shown


def test_timeout_kills_a_hanging_load(tmp_path, monkeypatch, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        'matrix:\n  tensorflow: ["2.15.1"]\n  env: [{HARNESS_TEST_SLEEP: "600"}]\npackages: {tensorflow: tensorflow-cpu}\nload: {timeout: 40}\n'
    )
    code = run_harness(monkeypatch, harness_cache, str(matrix), str(saved_models["slow_lambda.h5"]), "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 1
    [r] = doc["results"]
    assert r["status"] == "timeout"
    assert r["cell"] == "py3.11-tensorflow2.15.1-HARNESS_TEST_SLEEP=600"


def test_corrupt_model_builds_no_environment(tmp_path, monkeypatch, saved_models):
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {tensorflow: tensorflow-cpu}\n')
    cache = tmp_path / "fresh-cache"
    code = run_harness(monkeypatch, cache, str(matrix), str(saved_models["truncated.h5"]), "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 1
    assert {(r["status"], r["cause"]) for r in doc["results"]} == {("load-error", "corrupt-file")}
    assert not (cache / "envs").exists() or not any((cache / "envs").iterdir())


def test_shared_import_gives_the_same_outcomes_as_fresh_processes(saved_models, harness_cache, monkeypatch):
    """Several models in one process (fork after import) vs one process per model."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    matrix = parse_matrix('matrix:\n  tensorflow: ["2.15.1"]\npackages: {tensorflow: tensorflow-cpu}\n', "m.yaml")
    from harness.matrix import Cell

    cell = Cell(python="3.11", pins=(("tensorflow", "2.15.1"),))
    lock = Resolver(matrix.packages).resolve(cell)
    assert isinstance(lock, Lock)
    env = EnvSpec(cell.python, lock.text)
    backend = UvBackend()
    infos = [
        inspect_model(saved_models[m])
        for m in ("residual_block.h5", "custom_loss.h5", "addons_groupnorm.h5", "dense.h5", "dense_keras3.keras", "lambda_layer.h5")
    ]
    shared = run_cell(cell, env, backend, infos, matrix.load)
    alone = [r for info in infos for r in run_cell(cell, env, backend, [info], matrix.load)]

    def essence(r):
        return (
            r.model,
            r.status,
            r.cause,
            (r.exception or {}).get("type"),
            (r.exception or {}).get("message"),
            r.missing_name,
            r.fix_worked,
        )

    assert [essence(r) for r in shared] == [essence(r) for r in alone]
    assert {r.status for r in shared} == {"loaded", "load-error", "loaded-after-fix"}
    # one import served every model without code; the Lambda file (code) had a sandbox of its own
    by_code = {info.name: info.carries_code for info in infos}
    assert len({r.import_seconds for r in shared if not by_code[r.model]}) == 1
    assert [r.model for r in shared if by_code[r.model]] == ["lambda_layer.h5"]


def test_bad_inputs_exit_2_with_one_line(tmp_path, monkeypatch, capsys, saved_models, harness_cache):
    good = tmp_path / "m.yaml"
    good.write_text('matrix:\n  tensorflow: ["2.15.1"]\npackages: {tensorflow: tensorflow-cpu}\n')
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 8)
    nowhere = text_file  # a file where a folder should be: unwritable even for root
    unknown = tmp_path / "bad.yaml"
    unknown.write_text(
        textwrap.dedent("""\
        matrix:
          tensorflow: ["2.15.1", "2.99"]
        packages: {tensorflow: tensorflow-cpu}
        """)
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text('matrix:\n  tensorflow: ["2.15.1"]\n  exclude:\n    - {tensorflow: "2.15.1"}\n')
    broken = tmp_path / "broken.yaml"
    broken.write_text('matrix:\n  tensorflow: ["2.15.1"\n')
    api = tmp_path / "api.yaml"
    api.write_text('matrix:\n  tensorflow: ["2.15.1"]\n  api: [pytorch]\n')
    dense = str(saved_models["dense.h5"])
    cases = [
        ([str(broken), dense], "broken.yaml:3: not valid YAML"),
        ([str(api), dense], "api.yaml:3: 'api': unknown loading API 'pytorch' (use one of: tf.keras, keras, tf_keras)"),
        ([str(good), str(tmp_path / "missing.h5")], "no such model file"),
        ([str(good), str(tmp_path)], "is a folder but no model (no saved_model.pb"),
        ([str(good), str(text_file)], "not a model file (text"),
        ([str(good), str(noise)], "not a model file (unrecognised bytes"),
        ([str(tmp_path / "nope.yaml"), dense], "no such matrix file"),
        ([str(unknown), dense], "bad.yaml:2: 'tensorflow': '2.99' matches no release of tensorflow-cpu for Python 3.11 (newest is"),
        ([str(empty), dense], "every combination is excluded"),
        ([str(good), dense, "-o", str(nowhere / "sub")], "cannot write the report there"),
    ]
    for args, message in cases:
        code = run_harness(monkeypatch, harness_cache, *args, *(["-o", str(tmp_path / "o")] if "-o" not in args else []))
        err = capsys.readouterr().err.strip()
        assert code == 2, (args, err)
        assert message in err, (args, err)
        assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_python_not_on_the_host_is_skipped_with_a_hint(tmp_path, monkeypatch, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  python: ["3.99"]\n  tensorflow-addons: [null]\n')
    code = run_harness(monkeypatch, harness_cache, str(matrix), str(saved_models["dense.h5"]), "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 5  # nothing could be tested: never a pass
    assert doc["gate"]["untested"] and "no cell was tested (1 skipped)" in (tmp_path / "out" / "report.md").read_text()
    [r] = doc["results"]
    assert (r["cell"], r["status"]) == ("py3.99", "skipped")
    assert "Python 3.99 is not available on this host" in r["detail"] and "--backend docker" in r["detail"]
    assert "--python-downloads" in r["detail"]


def test_with_python_downloads_a_python_uv_cannot_get_is_not_tested(tmp_path, monkeypatch, saved_models, harness_cache):
    """--python-downloads asks uv for the CPython a cell lacks, and uv really tries: here from a
    mirror on loopback that has nothing (tests reach no other host). The cell is skipped with uv's
    words, the 3.11 cell loads, and the run is not a pass."""
    import http.server
    import threading

    class Empty(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    mirror = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Empty)
    threading.Thread(target=mirror.serve_forever, daemon=True).start()
    # this machine's other Pythons (pyenv) out of sight: only the harness's own 3.11 is found
    monkeypatch.setenv("PATH", f"{Path(sys.executable).resolve().parent}:/usr/bin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "uv-pythons"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_MIRROR", f"http://127.0.0.1:{mirror.server_port}")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  python: ["3.10", "3.11"]\n  tensorflow: ["2.15.1"]\npackages: {tensorflow: tensorflow-cpu}\n')
    out = tmp_path / "out"
    try:
        code = run_harness(monkeypatch, harness_cache, str(matrix), str(saved_models["dense.h5"]), "-o", str(out), "--python-downloads")
    finally:
        mirror.shutdown()
    doc = json.loads((out / "results.json").read_text())
    status = {r["cell"]: r["status"] for r in doc["results"]}
    assert status == {"py3.10-tensorflow2.15.1": "skipped", TF215: "loaded"}
    skipped = result(doc, "dense.h5", "py3.10-tensorflow2.15.1")
    assert "Python 3.10 is not on this host and uv could not download it (error: Failed to install cpython-3.10" in skipped["detail"]
    assert "404" in skipped["detail"]
    assert code == 5 and doc["gate"]["not_tested"] == ["py3.10-tensorflow2.15.1"]  # one cell loaded, one not tested: not a pass
    assert "not a pass: 1 cell not tested: Python 3.10" in (out / "report.md").read_text()


def test_outputs_are_compared_with_the_saved_by_cell_or_a_reference(tmp_path, monkeypatch, saved_models, harness_cache, isolated_store):
    import numpy as np

    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {tensorflow: tensorflow-cpu}\nload: {inference: true}\n')
    code = run_harness(monkeypatch, harness_cache, str(matrix), str(saved_models["dense.h5"]), "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 0
    same = result(doc, "dense.h5", TF221)
    assert same["status"] == "loaded"  # Keras 3 computes what Keras 2.15 (which saved it) computes
    assert same["output_diff"]["reference"] == TF215 and same["output_diff"]["max_abs"] < 1e-5
    saved = tmp_path / "out" / "outputs" / "dense.h5" / f"{TF215}.npz"
    reference = np.load(saved)["0"]  # outputs by name: one output is "0"
    assert reference.shape == (12, 2)  # three batches of four rows made from its input (edge values, two seeded), joined

    given = tmp_path / "input.npy"
    np.save(given, np.ones((5, 6), dtype="float32"))  # a user's input: 5 rows instead of the default batches
    matrix.write_text(
        f'matrix:\n  tensorflow: ["2.15.1"]\npackages: {{tensorflow: tensorflow-cpu}}\nload: {{inference: true, input: "{given}"}}\n'
    )
    run_harness(monkeypatch, harness_cache, str(matrix), str(saved_models["dense.h5"]), "-o", str(tmp_path / "given"))
    [fed] = json.loads((tmp_path / "given" / "results.json").read_text())["results"]
    assert fed["inference"]["outputs"][0]["shape"] == [5, 2] and fed["inference"]["input"][0]["shape"] == [5, 6]

    wrong = tmp_path / "wrong.npy"
    np.save(wrong, reference + 0.5)
    matrix.write_text(
        f'matrix:\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {{tensorflow: tensorflow-cpu}}\nload: {{inference: true, reference: "{wrong}"}}\n'
    )
    code = run_harness(monkeypatch, harness_cache, str(matrix), str(saved_models["dense.h5"]), "-o", str(tmp_path / "out2"))
    doc = json.loads((tmp_path / "out2" / "results.json").read_text())
    assert code == 1
    for r in doc["results"]:
        assert (r["status"], r["cause"]) == ("loaded-output-mismatch", "version-mismatch")
        assert abs(r["output_diff"]["max_abs"] - 0.5) < 1e-5
        assert "max abs diff 0.5" in r["detail"]
    # the store holds the final statuses (the comparison comes after the cells were recorded)
    stored = Store(isolated_store).results(doc["run"]["store_run"])
    assert sorted((r["cell"], r["status"]) for r in stored) == sorted((r["cell"], r["status"]) for r in doc["results"])


def test_try_fixes_loads_a_keras2_file_through_tf_keras_legacy_mode(tmp_path, monkeypatch, saved_models, harness_cache):
    # Keras 3 refuses the Lambda of a Keras 2 file (safe_mode); tf-keras 2.16 loads it.
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.16.2"]\npackages: {tensorflow: tensorflow-cpu}\n')
    models = [str(saved_models["lambda_layer.h5"]), str(saved_models["residual_block.h5"])]
    code = run_harness(monkeypatch, harness_cache, str(matrix), *models, "-o", str(tmp_path / "out"), "--try-fixes")
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 1
    fixed = result(doc, "lambda_layer.h5", TF216)
    assert (fixed["status"], fixed["fix_worked"]) == ("loaded-after-fix", "tf-keras + TF_USE_LEGACY_KERAS=1")
    assert fixed["exception"]["type"] == "ValueError" and "safe_mode" in fixed["exception"]["message"]
    assert "tf-keras 2.16.0" in fixed["detail"] and fixed["fix"].startswith("install tf-keras==2.16.0 and set TF_USE_LEGACY_KERAS=1")
    still = result(doc, "residual_block.h5", TF216)
    assert still["status"] == "load-error" and "tf-keras + TF_USE_LEGACY_KERAS=1" in still["fixes_tried"]
    assert "did not load it either" in still["detail"]


def test_try_fixes_pins_the_numpy_a_tensorflow_imports_with(tmp_path, monkeypatch, saved_models, harness_cache):
    """tensorflow-cpu 2.14.0 declares no numpy bound, so numpy 2 comes with it and the import fails;
    --try-fixes runs a sibling cell with the newest numpy below 2, where the model loads."""
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.14.0"]\npackages: {tensorflow: tensorflow-cpu}\n')
    plain = run_harness(monkeypatch, harness_cache, str(matrix), str(saved_models["dense.h5"]), "-o", str(tmp_path / "plain"))
    before = result(json.loads((tmp_path / "plain" / "results.json").read_text()), "dense.h5", TF214)
    assert plain == 1 and (before["status"], before["missing_name"]) == ("import-error", "numpy ABI")
    assert before["recipe"]["proven"] is False and "--try-fixes" in before["recipe"]["why"] and "not tried" in before["fix"]
    code = run_harness(monkeypatch, harness_cache, str(matrix), str(saved_models["dense.h5"]), "-o", str(tmp_path / "out"), "--try-fixes")
    fixed = result(json.loads((tmp_path / "out" / "results.json").read_text()), "dense.h5", TF214)
    assert code == 0 and (fixed["status"], fixed["fix_worked"]) == ("loaded-after-fix", "numpy<2")
    pins = fixed["recipe"]["environment"]["pins"]
    assert fixed["recipe"]["proven"] is True and pins["tensorflow"] == "2.14.0" and pins["numpy"].startswith("1.")
    assert fixed["fix"].startswith(f"pin numpy=={pins['numpy']} (proven: it loads in ")


def test_crossload_grid_saved_by_rows_loaded_by_columns(tmp_path, monkeypatch, capsys, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text('name: cross\nmatrix:\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {tensorflow: tensorflow-cpu}\n')
    build = Path(__file__).resolve().parent.parent / "examples" / "build_dense.py"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    code = cli.main(["crossload", str(matrix), "--build", str(build), "-o", str(tmp_path / "out")])
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 1
    assert [s["files"] for s in doc["crossload"]["saved"]] == [["dense.h5", "dense.keras"]] * 2
    assert len(doc["results"]) == 4 * 2  # 2 cells x 2 files saved, each loaded in 2 cells
    outcome = {(r["model"], r["cell"]): (r["status"], r["cause"]) for r in doc["results"]}
    # each Keras reads what it saved itself
    assert outcome[(f"dense.h5@{TF215}", TF215)] == ("loaded", None)
    assert outcome[(f"dense.keras@{TF221}", TF221)] == ("loaded", None)
    # Keras 2 reads neither file Keras 3 saved; Keras 3 reads Keras 2's H5 but not its .keras
    assert outcome[(f"dense.h5@{TF221}", TF215)] == ("load-error", "version-mismatch")
    # ... though Keras 3's .keras config, repaired for tf.keras 2.15 (repair.to_keras2), loads there
    assert outcome[(f"dense.keras@{TF221}", TF215)] == ("loaded-after-fix", "version-mismatch")
    assert outcome[(f"dense.h5@{TF215}", TF221)] == ("loaded", None)
    assert outcome[(f"dense.keras@{TF215}", TF221)] == ("load-error", "version-mismatch")
    grid = (tmp_path / "out" / "crossload.md").read_text()
    assert f"| `{TF221}` | ❌ load-error TypeError | ✅ loaded |" in grid
    assert "## `dense.keras`" in grid and "saved by \\ loaded by" in grid
    assert "## `dense.h5`" in capsys.readouterr().out


def test_savedmodel_folder_inspected_and_loaded(tmp_path, monkeypatch, saved_models, harness_cache):
    from harness.inspection import inspect_model

    folder = saved_models["residual_savedmodel"]
    info = inspect_model(folder)
    assert (info.format, info.keras_version, info.loss) == ("savedmodel", "2.15.0", "my_custom_loss")
    assert info.names("custom") == ["ResidualBlock", "my_custom_loss"]
    assert info.names("lambda") == ["Lambda"] and info.risks
    assert {"Sequential", "Flatten", "Dense"} <= {c.name for c in info.classes}  # the nested model's layers
    objects = Path(__file__).resolve().parent.parent / "examples" / "custom_objects.py"
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        f'matrix:\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {{tensorflow: tensorflow-cpu}}\nload: {{custom_objects: "{objects}"}}\n'
    )
    code = run_harness(monkeypatch, harness_cache, str(matrix), str(folder), "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 1
    ok = result(doc, "residual_savedmodel", TF215)
    assert (ok["status"], ok["fix_worked"]) == ("loaded-after-fix", "custom_objects")
    keras3 = result(doc, "residual_savedmodel", TF221)
    assert (keras3["status"], keras3["cause"]) == ("load-error", "version-mismatch")
    assert "File format not supported" in keras3["exception"]["message"]


def test_store_keeps_results_and_a_rerun_reuses_them(tmp_path, monkeypatch, saved_models, harness_cache, isolated_store):
    import sqlite3

    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {tensorflow: tensorflow-cpu}\n')
    models = [str(saved_models["dense.h5"]), str(saved_models["residual_block.h5"])]
    first = run_harness(monkeypatch, harness_cache, str(matrix), *models, "-o", str(tmp_path / "one"))
    rows = sqlite3.connect(isolated_store).execute("SELECT model, cell, status FROM results ORDER BY model, cell").fetchall()
    assert rows == [
        ("dense.h5", TF215, "loaded"),
        ("dense.h5", TF221, "loaded"),
        ("residual_block.h5", TF215, "load-error"),
        ("residual_block.h5", TF221, "load-error"),
    ]
    second = run_harness(monkeypatch, harness_cache, str(matrix), *models, "-o", str(tmp_path / "two"))
    doc = json.loads((tmp_path / "two" / "results.json").read_text())
    assert first == second == 1
    assert [r["cached"] for r in doc["results"]] == [True] * 4
    assert not (tmp_path / "two" / "logs").exists()  # nothing ran
    assert (tmp_path / "two" / "report.md").read_text().count("· cached |") == 4
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    assert sorted((r["model"], r["cell"], r["status"], r["cause"]) for r in doc["results"]) == sorted(
        (r["model"], r["cell"], r["status"], r["cause"]) for r in one["results"]
    )
    # a new model runs, the known one is reused; --fresh runs everything again
    run_harness(monkeypatch, harness_cache, str(matrix), models[0], str(saved_models["custom_loss.h5"]), "-o", str(tmp_path / "three"))
    three = json.loads((tmp_path / "three" / "results.json").read_text())
    assert {(r["model"], r["cached"]) for r in three["results"]} == {("dense.h5", True), ("custom_loss.h5", False)}
    run_harness(monkeypatch, harness_cache, str(matrix), models[0], "-o", str(tmp_path / "four"), "--fresh")
    assert not any(r["cached"] for r in json.loads((tmp_path / "four" / "results.json").read_text())["results"])
    runs = sqlite3.connect(isolated_store).execute("SELECT COUNT(*), SUM(complete) FROM runs").fetchone()
    assert runs == (4, 4)


@pytest.mark.parametrize("kill_after_results", [0, 1, 3])
def test_kill_9_then_resume_gives_the_uninterrupted_results(
    kill_after_results, tmp_path, monkeypatch, saved_models, harness_cache, isolated_store
):
    import os
    import signal
    import subprocess
    import sys
    import time

    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.15.1", "2.16.2", "2.21.0"]\npackages: {tensorflow: tensorflow-cpu}\n')
    models = [str(saved_models["dense.h5"]), str(saved_models["residual_block.h5"])]

    def essence(path: Path) -> list[tuple]:
        doc = json.loads(path.read_text())
        return sorted((r["model"], r["cell"], r["status"], r["cause"], (r["exception"] or {}).get("type")) for r in doc["results"])

    monkeypatch.setenv("HARNESS_STORE", str(tmp_path / "reference.sqlite"))
    run_harness(monkeypatch, harness_cache, str(matrix), *models, "-o", str(tmp_path / "reference"), "-j", "1")
    reference = essence(tmp_path / "reference" / "results.json")

    env = {**os.environ, "HARNESS_CACHE_DIR": str(harness_cache), "HARNESS_STORE": str(isolated_store)}
    command = [sys.executable, "-m", "harness.cli", "run", str(matrix), *models, "-o", str(tmp_path / "out"), "-j", "1"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None:
        results = tmp_path / "out" / "results.json"
        done = len(json.loads(results.read_text())["results"]) if results.exists() else 0
        if done >= kill_after_results and (kill_after_results or results.exists()):
            break
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert subprocess.run(command, env=env, capture_output=True).returncode == 1
    assert essence(tmp_path / "out" / "results.json") == reference
    resumed = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert sum(r["cached"] for r in resumed) >= kill_after_results  # what finished before the kill was not run again


REGISTERED_LAYER = """
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="MyPackage")
class Scale(tf.keras.layers.Layer):
    \"\"\"Written for Keras 2: it touches the private list Keras 2 layers keep their weights in.\"\"\"

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(), initializer="ones")
        self._trainable_weights = list(self._trainable_weights)

    def call(self, x):
        return x * self.factor * self.w

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
"""
SAVE_REGISTERED = """
import sys
sys.path.insert(0, sys.argv[2])
import tensorflow as tf
from registered_layer import Scale
inputs = tf.keras.Input(shape=(2,))
tf.keras.Model(inputs, Scale()(inputs)).save(sys.argv[1])
"""


def test_each_attempt_starts_clean_and_every_attempt_counts(tmp_path, work_root, harness_cache, monkeypatch):
    """A layer saved registered (MyPackage>Scale) and a custom-objects file that registers it on
    import. The plain load must not see that registration (a user's load_model(path) fails
    without the import), the custom-objects attempt proves the fix under Keras 2, and under
    Keras 3 the same objects fail inside their own Keras 2 code: an AttributeError that counts."""
    import os
    import subprocess

    from conftest import make_venv

    (tmp_path / "registered_layer.py").write_text(REGISTERED_LAYER)
    saver = make_venv(work_root / "saver-tf2.15", "tensorflow-cpu==2.15.1", "tensorflow-addons==0.23.0")
    model = tmp_path / "registered.h5"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([str(saver), "-c", SAVE_REGISTERED, str(model), str(tmp_path)], check=True, capture_output=True, env=env)
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        'matrix:\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {tensorflow: tensorflow-cpu}\nload: {custom_objects: registered_layer.py}\n'
    )
    code = run_harness(monkeypatch, harness_cache, str(matrix), str(model), "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 1
    k2 = result(doc, "registered.h5", TF215)
    assert (k2["status"], k2["cause"], k2["missing_name"], k2["fix_worked"]) == (
        "loaded-after-fix",
        "custom-object",
        "MyPackage>Scale",
        "custom_objects",
    )
    assert "Unknown layer: 'MyPackage>Scale'" in k2["exception"]["message"]
    assert "import the module that registers 'MyPackage>Scale'" in k2["fix"]
    k3 = result(doc, "registered.h5", TF221)
    assert (k3["status"], k3["attribute_error"], k3["attribute"]) == ("load-error", True, "_trainable_weights")
    assert k3["cause"] == "version-mismatch" and "written for Keras 2" in k3["fix"] and "pass custom_objects" not in k3["fix"]
    tried = [(a["fix"], a["exception"]) for a in k3["attempts"]]
    assert tried[1] == ("custom_objects", "AttributeError"), tried
    html = (tmp_path / "out" / "report.html").read_text()
    panels = json.loads(re.search(r'<script type="application/json" id="harness-data">(.*?)</script>', html, re.S).group(1))
    attempts = [text for p in panels if p["title"] == TF221 for term, text in p["terms"] if term == "Attempts"]
    assert any("custom_objects: AttributeError: 'Scale' object has no attribute '_trainable_weights'" in a for a in attempts), attempts


SAVE_KERAS_FORMAT = """
import sys, tensorflow as tf
inputs = tf.keras.Input(shape=(4,))
hidden = tf.keras.layers.Dense(8, activation="relu")(inputs)
tf.keras.Model(inputs, tf.keras.layers.Dense(2)(hidden)).save(sys.argv[1])
"""


def test_a_keras_file_saved_by_tf_2_13_is_sound_and_loads_there(tmp_path, work_root, harness_cache, monkeypatch):
    """TF 2.13's .keras keeps its weights under _layer_checkpoint_dependencies/, not layers/:
    a static rule that expected layers/ called such files corrupt and built no environment."""
    import os
    import subprocess

    from conftest import make_venv

    saver = make_venv(work_root / "saver-tf2.13", "tensorflow-cpu==2.13.1")
    model = tmp_path / "tf213.keras"
    subprocess.run(
        [str(saver), "-c", SAVE_KERAS_FORMAT, str(model)], check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    )
    info = inspect_model(model)
    assert (info.format, info.keras_version, info.problems, info.doubts) == ("keras", "2.13.1", (), ())
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.13.1"]\npackages: {tensorflow: tensorflow-cpu}\n')
    code = run_harness(monkeypatch, harness_cache, str(matrix), str(model), "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 0 and [r["status"] for r in doc["results"]] == ["loaded"]


PAIR = """
name: pair
matrix:
  python: ["3.11"]
  tensorflow: ["2.15.1", "2.21.0"]
packages: {tensorflow: tensorflow-cpu}
load: {timeout: 240}
"""


def test_files_that_are_no_whole_model_and_layouts_one_keras_cannot_read(tmp_path, monkeypatch, saved_models, harness_cache):
    """Saved by real TF 2.15.1 / 2.21.0 (tests/conftest.py SAVE_MORE); the outcomes were checked
    by hand loads in plain venvs of both releases (tests/test_diagnose.py quotes the messages)."""
    matrix = tmp_path / "m.yaml"
    matrix.write_text(textwrap.dedent(PAIR))
    names = [
        "weights_only.h5", "dense_keras3.weights.h5", "sharded_keras3.weights.json", "unzipped_keras3",
        "mixed_precision.h5", "lstm.h5", "lambda_loss.h5", "hdf5_named.keras", "exported_keras3",
    ]  # fmt: skip
    code = run_harness(monkeypatch, harness_cache, str(matrix), *(str(saved_models[n]) for n in names), "-o", str(tmp_path / "out"))
    assert code == 1
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    for name in ("weights_only.h5", "dense_keras3.weights.h5", "sharded_keras3.weights.json"):
        for cell in (TF215, TF221):
            r = result(doc, name, cell)
            assert (r["status"], r["cause"]) == ("load-error", "not-a-model") and "load_weights" in r["fix"], name
    k2 = {n: result(doc, n, TF215) for n in names}
    k3 = {n: result(doc, n, TF221) for n in names}
    # an unzipped .keras folder: Keras 3.15 loads it, Keras 2 cannot read Keras 3's layout
    assert k3["unzipped_keras3"]["status"] == "loaded"
    assert (k2["unzipped_keras3"]["status"], k2["unzipped_keras3"]["cause"]) == ("load-error", "version-mismatch")
    # Keras 3's export (no Keras model in it): Keras 3 refuses the format; Keras 2's load_model
    # returns a bare object, and predict, the next thing a user calls, raises AttributeError
    exported = {cell: result(doc, "exported_keras3", cell) for cell in (TF215, TF221)}
    assert [(r["status"], r["cause"]) for r in exported.values()] == [("load-error", "not-a-model")] * 2
    assert exported[TF215]["exception"]["type"] == "AttributeError" and "'predict'" in exported[TF215]["exception"]["message"]
    assert "File format not supported" in exported[TF221]["exception"]["message"]
    assert all("TFSMLayer" in r["fix"] and "tf.saved_model.load" in r["fix"] for r in exported.values())
    # and harness run tried that advice: the signature answered a batch (Keras 3 through TFSMLayer,
    # Keras 2, which has no TFSMLayer, through tf.saved_model.load); still no load
    assert "answered a batch through TFSMLayer here" in exported[TF221]["fix"]
    assert "answered a batch through tf.saved_model.load here" in exported[TF215]["fix"]
    assert all(r["fix_worked"] is None and any(a.get("serving") and a["ok"] for a in r["attempts"]) for r in exported.values())
    # Keras 2 files Keras 3 misreads, each named for what it is
    for name in ("mixed_precision.h5", "lstm.h5", "hdf5_named.keras"):
        assert k2[name]["status"] == "loaded", name
    assert (k3["mixed_precision.h5"]["cause"], k3["mixed_precision.h5"]["missing_name"], k3["mixed_precision.h5"]["attribute_error"]) == (
        "version-mismatch",
        "Policy",
        True,
    )
    # the policy written as its name (repair.py) loads in the cell; TF 2.15 loads the original, outputs were not compared
    assert (k3["mixed_precision.h5"]["status"], k3["mixed_precision.h5"]["fix_worked"]) == ("loaded-after-fix", "repaired config")
    assert k3["mixed_precision.h5"]["recipe"]["proven"] is False
    assert "time_major" in k3["lstm.h5"]["fix"] and "LSTM" in k3["lstm.h5"]["fix"]
    assert (k3["lambda_loss.h5"]["status"], k3["lambda_loss.h5"]["cause"], k3["lambda_loss.h5"]["fix_worked"]) == (
        "loaded-after-fix",
        "custom-object",
        "compile=False",
    )
    assert (k2["lambda_loss.h5"]["status"], k2["lambda_loss.h5"]["missing_name"]) == ("loaded-after-fix", "<lambda>")
    # HDF5 under a .keras name: Keras 3 picks the loader by the name; the harness tries an .h5 name
    named = k3["hdf5_named.keras"]
    assert (named["status"], named["cause"], named["fix_worked"]) == ("loaded-after-fix", "version-mismatch", "copied to .h5")
    assert "accessible `.keras` zip" in named["exception"]["message"]


def test_trusted_files_refused_by_safe_mode_are_tried_without_it(tmp_path, monkeypatch, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(textwrap.dedent(PAIR).replace('["2.15.1", "2.21.0"]', '["2.21.0"]'))
    lam = str(saved_models["lambda_layer.h5"])
    code = run_harness(monkeypatch, harness_cache, str(matrix), lam, "-o", str(tmp_path / "plain"))
    plain = result(json.loads((tmp_path / "plain" / "results.json").read_text()), "lambda_layer.h5", TF221)
    assert (plain["status"], plain["cause"], plain["missing_name"]) == ("load-error", "safe-mode", "Lambda")
    assert "safe_mode=False" not in [a["fix"] for a in plain["attempts"]]  # not trusted: the file's code is never run on purpose
    code = run_harness(monkeypatch, harness_cache, str(matrix), lam, "-o", str(tmp_path / "trusted"), "--trust-models")
    assert code == 0
    trusted = result(json.loads((tmp_path / "trusted" / "results.json").read_text()), "lambda_layer.h5", TF221)
    assert (trusted["status"], trusted["cause"], trusted["fix_worked"]) == ("loaded-after-fix", "safe-mode", "safe_mode=False")
    assert "proven" in trusted["fix"]


def test_checkpoint_folders_are_recognised_and_settled_without_a_cell(tmp_path, monkeypatch, capsys, saved_models, harness_cache):
    """A TF checkpoint (Keras 2 save_weights without .h5) and an Orbax checkpoint, both written
    by the real libraries: inspect says what they are; run reports them without building."""
    from harness.inspection import inspect_model

    tf_ckpt, orbax = inspect_model(saved_models["tf_checkpoint"]), inspect_model(saved_models["orbax_checkpoint"])
    assert (tf_ckpt.format, tf_ckpt.kind) == ("tf-checkpoint", "weights")
    assert (orbax.format, orbax.kind) == ("orbax", "checkpoint")
    assert cli.main(["inspect", str(saved_models["orbax_checkpoint"])]) == 0
    assert "Orbax checkpoint" in capsys.readouterr().out
    matrix = tmp_path / "m.yaml"
    matrix.write_text(textwrap.dedent(PAIR))
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "empty-cache"))  # nothing may be built
    code = cli.main(
        ["run", str(matrix), str(saved_models["tf_checkpoint"]), str(saved_models["orbax_checkpoint"]), "-o", str(tmp_path / "out")]
    )
    assert code == 1
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {(r["model"], r["status"], r["cause"]) for r in doc["results"]} == {
        ("tf_checkpoint", "load-error", "not-a-model"),
        ("orbax_checkpoint", "load-error", "not-a-model"),
    }
    assert not list((tmp_path / "empty-cache").glob("**/bin/python"))


def test_reports_match_the_golden_files(e2e_run):
    """What the e2e matrix reports (results.json's substance and report.md), masked where it
    varies between runs (tests/golden.py): a refactor that changes a word of it fails here."""
    from golden import compare_run

    compare_run("e2e", e2e_run["out"])
