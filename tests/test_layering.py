"""Import direction is a DAG (DESIGN.md 3): media, codecs -> protocol, segmenter, channels ->
subscribers -> io -> app. Sans-IO layers import no asyncio/uvloop/socket/time/av."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "rtmpgop"

RANK = {
    "errors": 0, "media": 0, "config": 0,
    "codecs": 1,
    "protocol": 2, "segmenter": 2, "channels": 2,
    "subscribers": 3,
    "io": 4,
    "app": 5, "cli": 6, "__main__": 7, "web": 0,
}
SANS_IO = {"codecs", "protocol", "segmenter", "channels", "media", "errors"}
FORBIDDEN_IN_SANS_IO = {"asyncio", "uvloop", "socket", "time", "av", "threading", "selectors"}


def layer(parts):
    return parts[0] if parts else "__init__"


def imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_import_dag():
    bad = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("").parts
        me = layer(rel)
        if me in ("__init__",):
            continue
        for mod in imports(path):
            top = mod.split(".")[0]
            if top == "rtmpgop":
                other = layer(mod.split(".")[1:])
                if other in ("__init__",) or other == me:
                    continue
                if RANK.get(other, 99) > RANK.get(me, 99) or (
                        RANK.get(other) == RANK.get(me) and RANK.get(me, 0) > 0):
                    bad.append(f"{'/'.join(rel)} imports {mod}")
            elif me in SANS_IO and top in FORBIDDEN_IN_SANS_IO:
                bad.append(f"{'/'.join(rel)} (sans-IO) imports {mod}")
    assert not bad, "\n".join(bad)
