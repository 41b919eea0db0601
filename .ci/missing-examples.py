#!/usr/bin/env python3
"""Lists the public items of bobbin (types, functions, inherent methods, constants) whose
documentation has no `# Examples` section with a doctest that asserts something. Exits
with status 1 if there are any.

It reads rustdoc's JSON output, which needs a nightly toolchain:
    cargo +nightly rustdoc -p bobbin --lib -- -Z unstable-options --output-format json
    python3 .ci/missing-examples.py target/doc/bobbin.json

Trait implementations are left out: their methods are documented by the trait.
"""
import json, re, sys

doc = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "target/doc/bobbin.json"))
idx = doc["index"]
get = lambda i: idx.get(str(i))

def has_example(docs):
    if not docs:
        return False
    m = re.search(r"^#+ Examples?\s*$", docs, re.M)
    if not m:
        return False
    rest = docs[m.end():]
    return "```" in rest and re.search(r"assert|should_panic|compile_fail", rest) is not None

seen, out = set(), []

def report(item, path):
    if not has_example(item.get("docs")):
        span = item.get("span") or {}
        out.append(f"{path}\t{span.get('filename')}:{(span.get('begin') or [0])[0]}")

def walk(iid, path):
    item = get(iid)
    if item is None or item["crate_id"] != 0 or iid in seen:
        return
    seen.add(iid)
    kind, inner = next(iter(item["inner"].items()))
    name = item["name"]
    here = f"{path}::{name}" if path else name
    if kind == "module":
        for c in inner["items"]:
            walk(c, here)
        return
    if kind == "use":
        if inner.get("id") is not None:
            target = get(inner["id"])
            if target is not None and "module" not in target["inner"] and inner["id"] not in seen:
                walk(inner["id"], path)
            elif target is not None and inner["is_glob"]:
                for c in target["inner"]["module"]["items"]:
                    walk(c, path)
        return
    if item["visibility"] != "public" and kind not in ("variant",):
        return
    if kind in ("struct", "enum", "union", "trait", "function", "type_alias", "constant", "static", "macro"):
        report(item, here)
    impls = inner.get("impls", []) if isinstance(inner, dict) else []
    for imp in impls:
        ii = get(imp)
        if ii is None:
            continue
        im = ii["inner"]["impl"]
        if im["trait"] is not None or im.get("is_synthetic") or im.get("blanket_impl"):
            continue
        for m in im["items"]:
            mi = get(m)
            if mi and mi["visibility"] == "public" and mi["crate_id"] == 0:
                report(mi, f"{here}::{mi['name']}")
    if kind == "trait":
        for m in inner["items"]:
            mi = get(m)
            if mi:
                report(mi, f"{here}::{mi['name']}")

walk(doc["root"], "")
for line in out:
    print(line)
print(f"{len(out)} public items without an asserting `# Examples` doctest", file=sys.stderr)
sys.exit(1 if out else 0)
