#!/usr/bin/env python3
"""Compares two results.json files of tests/bench/run.sh, figure by figure.

    tests/bench/compare.py OLD.json NEW.json [--system dockermand]

For each figure and system found in both, prints the old and new medians,
the change in percent, and whether the change is beyond the spread of the
two runs (the new median outside the old min–max and the other way round).
"""

import argparse
import json
import sys


def load(path):
    with open(path) as f:
        data = json.load(f)
    figs = {}
    for f in data["figures"]:
        figs[f["id"]] = f
    return data, figs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--system", action="append",
                    help="only these systems (repeatable); default: all found in both")
    a = ap.parse_args()
    old_meta, old = load(a.old)
    new_meta, new = load(a.new)
    print(f"old: {a.old} ({old_meta['meta'].get('date')}, {old_meta['meta'].get('mode')}, "
          f"git {old_meta['meta'].get('git')})")
    print(f"new: {a.new} ({new_meta['meta'].get('date')}, {new_meta['meta'].get('mode')}, "
          f"git {new_meta['meta'].get('git')})")
    print()
    width = max((len(f["label"]) for f in new.values()), default=20) + 2
    print(f"{'figure':<{width}}{'system':<17}{'old':>12}{'new':>12}{'change':>9}  ")
    for fid, nf in new.items():
        of = old.get(fid)
        if not of:
            continue
        systems = a.system or [s for s in nf["values"] if s in of["values"]]
        for s in systems:
            if s not in nf["values"] or s not in of["values"]:
                continue
            o, n = of["values"][s], nf["values"][s]
            if not o["median"]:
                continue
            change = (n["median"] - o["median"]) / o["median"] * 100
            beyond = n["median"] > o["max"] or n["median"] < o["min"]
            beyond = beyond and (o["median"] > n["max"] or o["median"] < n["min"])
            # One run has no spread to judge by.
            beyond = beyond and len(o.get("runs", [])) > 1 and len(n.get("runs", [])) > 1
            better = nf.get("better")
            mark = ""
            if beyond and better:
                improved = change > 0 if better == "higher" else change < 0
                mark = "better" if improved else "WORSE"
            print(f"{nf['label']:<{width}}{s:<17}{o['median']:>12.4g}{n['median']:>12.4g}"
                  f"{change:>+8.1f}%  {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
