#!/usr/bin/env python3
"""Prints one markdown table per benchmark group from criterion's saved estimates.

Usage: python3 bench/report.py [CRITERION_DIR]   (default: target-bench/criterion)
       python3 bench/report.py --across DIR...   (one criterion directory per code layout,
                                                  as bench/layouts.sh writes them)

For each benchmark: the median time per iteration, the median per element when the
group has a throughput, and the ratio peer / bobbin (the first benchmark whose name
starts with "bobbin" is the baseline unless BASELINE names one; > 1 means bobbin is
faster).
"""

import json
import os
import sys

# Groups whose baseline is not simply the first "bobbin..." benchmark by name.
BASELINE = {"stack": "bobbin Stack::new+drop (guard via madvise)"}


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.2f} ns"


def load(root):
    groups = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            meta = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        elems = None
        tp = meta.get("throughput")
        if tp and "Elements" in tp:
            elems = tp["Elements"]
        m = est["median"]
        groups.setdefault(meta["group_id"], []).append(
            (
                meta["function_id"],
                m["point_estimate"],
                m["confidence_interval"]["lower_bound"],
                m["confidence_interval"]["upper_bound"],
                elems,
            )
        )
    return groups


def baseline(group, rows):
    """Orders a group's rows baseline first; returns the baseline's name and median."""
    rows.sort(key=lambda r: (not r[0].startswith("bobbin"), r[0]))
    base_name = BASELINE.get(group) or next((r[0] for r in rows if r[0].startswith("bobbin")), None)
    rows.sort(key=lambda r: r[0] != base_name)
    return base_name, next((r[1] for r in rows if r[0] == base_name), None)


def across(dirs):
    """Per benchmark, the ratio peer / bobbin in each layout, then median, min and max."""
    ratios = {}
    for d in dirs:
        for group, rows in load(d).items():
            base_name, base = baseline(group, rows)
            for name, med, _lo, _hi, _elems in rows:
                if base is not None and name != base_name:
                    ratios.setdefault((group, name), []).append(med / base)
    print(f"ratio peer / bobbin (> 1: bobbin faster) in each of {len(dirs)} layouts\n")
    print("| group | peer | median | min | max | per layout |")
    print("|---|---|---:|---:|---:|---|")
    for (group, name), rs in sorted(ratios.items()):
        srt = sorted(rs)
        n = len(srt)
        med = srt[n // 2] if n % 2 else (srt[n // 2 - 1] + srt[n // 2]) / 2
        each = " ".join(f"{r:.2f}" for r in rs)
        print(f"| {group} | {name} | {med:.2f} | {srt[0]:.2f} | {srt[-1]:.2f} | {each} |")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--across":
        across(sys.argv[2:])
        return
    root = sys.argv[1] if len(sys.argv) > 1 else "target-bench/criterion"
    groups = load(root)
    for group in sorted(groups):
        rows = groups[group]
        base_name, base = baseline(group, rows)
        per_elem = any(r[4] for r in rows)
        print(f"### {group}\n")
        head = "| benchmark | median | 95% CI of median |"
        sep = "|---|---:|---:|"
        if per_elem:
            head += " per item |"
            sep += "---:|"
        head += " ratio to bobbin |"
        sep += "---:|"
        print(head)
        print(sep)
        for name, med, lo, hi, elems in rows:
            line = f"| {name} | {fmt_ns(med)} | {fmt_ns(lo)} – {fmt_ns(hi)} |"
            if per_elem:
                line += f" {fmt_ns(med / elems)} |" if elems else " |"
            ratio = "—" if base is None else ("1" if name == base_name else f"{med / base:.3g}")
            line += f" {ratio} |"
            print(line)
        print()


if __name__ == "__main__":
    main()
