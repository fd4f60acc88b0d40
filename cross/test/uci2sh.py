#!/usr/bin/env python3
"""Reads a UCI file and prints the shell variables that OpenWrt's
config_load would leave behind (test stand-in, see uci.sh).

  CONFIG_SECTIONS                 section names in file order
  CONFIG_<section>_TYPE           the section's type
  CONFIG_<section>_<option>       option value; for a list, items joined by spaces
  CONFIG_<section>_<option>_ITEM<n>, CONFIG_<section>_<option>_LENGTH   list items

Anonymous sections are named cfgNNNNNN, as `uci -n export` names them.
"""
import re
import shlex
import sys

IDENT = re.compile(r"^[A-Za-z0-9_]+$")


def quote(value):
    return "'" + value.replace("'", "'\\''") + "'"


def main(path):
    assigns = []
    names = []
    sections = []
    section = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                words = shlex.split(line, comments=True)
            except ValueError as e:
                sys.exit(f"{path}:{lineno}: {e}")
            if not words:
                continue
            kw = words[0]
            if kw == "package":
                continue
            if kw == "config":
                if len(words) not in (2, 3):
                    sys.exit(f"{path}:{lineno}: config TYPE ['NAME']")
                section = words[2] if len(words) == 3 else f"cfg{len(sections) + 1:06x}"
                if not IDENT.match(words[1]) or not IDENT.match(section):
                    sys.exit(f"{path}:{lineno}: bad section type or name")
                if section not in sections:
                    sections.append(section)
                var = f"CONFIG_{section}_TYPE"
                assigns.append(f"{var}={quote(words[1])}")
                names.append(var)
                continue
            if kw not in ("option", "list") or len(words) != 3:
                sys.exit(f"{path}:{lineno}: expected option/list NAME 'VALUE'")
            if section is None:
                sys.exit(f"{path}:{lineno}: {kw} outside a section")
            opt, value = words[1], words[2]
            if not IDENT.match(opt):
                sys.exit(f"{path}:{lineno}: bad option name {opt!r}")
            var = f"CONFIG_{section}_{opt}"
            if kw == "option":
                assigns.append(f"{var}={quote(value)}")
                names.append(var)
            else:
                n = sum(1 for a in names if a.startswith(f"{var}_ITEM")) + 1
                if n == 1:
                    assigns.append(f"{var}={quote(value)}")
                else:
                    assigns.append(f'{var}="${{{var}}} "{quote(value)}')
                assigns.append(f"{var}_ITEM{n}={quote(value)}")
                assigns.append(f"{var}_LENGTH={n}")
                names += [var, f"{var}_ITEM{n}", f"{var}_LENGTH"]
    assigns.append(f"CONFIG_SECTIONS={quote(' '.join(sections))}")
    assigns.append(f"_UCI_VARS={quote(' '.join(sorted(set(names))))}")
    print("\n".join(assigns))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: uci2sh.py FILE")
    main(sys.argv[1])
