"""channel: the probe's messages are data from an attacker, read bounded and validated."""

from __future__ import annotations

import base64
import json

from harness.channel import MAX_STRING, read_channel


def lines(*messages: object) -> str:
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


START = {"kind": "start", "probe_version": 2, "python": "3.11.7", "api": "tf.keras", "versions": {"tensorflow-cpu": "2.15.1"}}


def test_messages_make_one_result_and_outputs_come_back_as_bytes():
    text = lines(
        START,
        {"kind": "import", "import": {"ok": True, "seconds": 3.2}},
        {"kind": "model", "key": "m0", "result": {"attempts": [{"fix": None, "ok": True}]}},
        {"kind": "outputs", "key": "m0", "npz": base64.b64encode(b"PK\x03\x04npz").decode()},
        {"kind": "done", "seconds": 4.0},
    )
    report = read_channel(text, ["m0"])
    assert report.finished and not report.problems
    assert report.result is not None
    assert report.result["import"]["ok"] is True and report.result["versions"] == {"tensorflow-cpu": "2.15.1"}
    assert report.result["models"]["m0"]["attempts"][0]["ok"] is True
    assert report.outputs == {"m0": b"PK\x03\x04npz"}


def test_anything_else_is_dropped_and_noted():
    text = lines(
        {"kind": "model", "key": "m0", "result": {}},  # before start
        START,
        "not json",
        [1, 2],
        {"kind": "model", "key": "m7", "result": {"attempts": []}},  # not asked for
        {"kind": "model", "key": "../../etc", "result": {}},
        {"kind": "outputs", "key": "m0", "npz": "***"},
        {"kind": "import", "import": {"ok": "yes"}},
        {"kind": "surprise"},
    )
    report = read_channel(text, ["m0"])
    assert report.result is not None and report.result["models"] == {} and "import" not in report.result
    assert report.outputs == {} and not report.finished
    assert len(report.problems) == 8


def test_sizes_are_cut():
    huge = {"kind": "model", "key": "m0", "result": {"attempts": [{"error": {"message": "x" * (MAX_STRING * 3)}}] * 1000}}
    deep: dict = {}
    node = deep
    for _ in range(50):
        node["n"] = {}
        node = node["n"]
    report = read_channel(lines(START, huge, {"kind": "model", "key": "m1", "result": deep}), ["m0", "m1"])
    assert report.result is not None
    attempts = report.result["models"]["m0"]["attempts"]
    assert len(attempts) == 200 and len(attempts[0]["error"]["message"]) < MAX_STRING + 100
    assert len(json.dumps(report.result["models"]["m1"])) < 200  # nesting stops at the depth limit


def test_no_start_means_no_result():
    assert read_channel("", ["m0"]).result is None
    assert read_channel(lines({"kind": "done"}), ["m0"]).result is None


def test_files_come_back_by_role_and_only_known_roles():
    """harness migrate's bridge: the architecture and weights a load exported, the file a target re-saved."""
    import base64

    def file(key: str, role: str, data: str) -> dict:
        return {"kind": "file", "key": key, "role": role, "data": data}

    encoded = base64.b64encode(b"HDF").decode()
    text = lines(
        START,
        file("m0", "weights", encoded),
        file("m0", "rebuilt", encoded),
        file("m0", "../../etc/passwd", encoded),  # a role is a word from a fixed list, never a path
        file("m1", "weights", encoded),  # not asked for
        file("m0", "architecture", "***"),
    )
    report = read_channel(text, ["m0"])
    assert report.files == {"m0": {"weights": b"HDF", "rebuilt": b"HDF"}}
    assert len(report.problems) == 3
