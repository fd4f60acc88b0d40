#!/usr/bin/env python3
"""Test stand-ins for the OpenWrt programs the init script and the package
scripts call, written after their documented behaviour:

  standin.py export FILE
      the shell variables OpenWrt's config_load (uci export through
      /lib/functions.sh) leaves for the UCI file FILE
  standin.py validate FILE TYPE SECTION 'option:datatype[:default]'...
      procd's /sbin/validate_data: `name=value; ` (or `unset -v name; `) per
      option on stdout, one "... validates as TYPE with true|false" line per
      value on stderr, exit status 255 if any value failed
  standin.py procd OPS_FILE
      the JSON message procd.sh's procd_close_service sends with
      `ubus call service set`, from the calls procd.sh stand-in recorded
  standin.py ubus STATE_DIR LOG ARGS...
      `ubus call service set|delete|signal|list`: records each call in LOG
      and, for `set`, what procd would do with the running instances
      (start, signal, restart, stop, nothing), deciding "changed" as
      procd's instance_config_changed does (the config files by checksum)

Anonymous sections are named cfgNNNNNN in file order, by both export and
validate.
"""
import hashlib
import json
import os
import re
import shlex
import sys

IDENT = re.compile(r"^[A-Za-z0-9_]+$")


def parse_uci(path):
    """[(type, name, {option: str | [str]})] in file order."""
    sections = []
    current = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                words = shlex.split(line, comments=True)
            except ValueError as e:
                sys.exit(f"{path}:{lineno}: {e}")
            if not words or words[0] == "package":
                continue
            kw = words[0]
            if kw == "config":
                if len(words) not in (2, 3):
                    sys.exit(f"{path}:{lineno}: config TYPE ['NAME']")
                name = words[2] if len(words) == 3 else f"cfg{len(sections) + 1:06x}"
                if not IDENT.match(words[1]) or not IDENT.match(name):
                    sys.exit(f"{path}:{lineno}: bad section type or name")
                current = (words[1], name, {})
                sections.append(current)
                continue
            if kw not in ("option", "list") or len(words) != 3:
                sys.exit(f"{path}:{lineno}: expected option/list NAME 'VALUE'")
            if current is None or not IDENT.match(words[1]):
                sys.exit(f"{path}:{lineno}: {kw} outside a section or bad name")
            options = current[2]
            if kw == "option":
                options[words[1]] = words[2]
            else:
                prev = options.get(words[1])
                options[words[1]] = (prev if isinstance(prev, list) else []) + [words[2]]
    return sections


def quote(value):
    return "'" + value.replace("'", "'\\''") + "'"


def export(path):
    out, names = [], []
    for stype, name, options in parse_uci(path):
        out.append(f"CONFIG_{name}_TYPE={quote(stype)}")
        names.append(f"CONFIG_{name}_TYPE")
        for opt, value in options.items():
            var = f"CONFIG_{name}_{opt}"
            if isinstance(value, list):
                out.append(f"{var}={quote(' '.join(value))}")
                for i, item in enumerate(value, 1):
                    out.append(f"{var}_ITEM{i}={quote(item)}")
                out.append(f"{var}_LENGTH={len(value)}")
                names += [var, f"{var}_LENGTH"] + [f"{var}_ITEM{i}" for i in range(1, len(value) + 1)]
            else:
                out.append(f"{var}={quote(value)}")
                names.append(var)
    sections = [name for _, name, _ in parse_uci(path)]
    out.append(f"CONFIG_SECTIONS={quote(' '.join(sections))}")
    out.append(f"_UCI_VARS={quote(' '.join(sorted(set(names))))}")
    print("\n".join(out))


BOOLS = {"0": "0", "off": "0", "false": "0", "no": "0", "disabled": "0",
         "1": "1", "on": "1", "true": "1", "yes": "1", "enabled": "1"}


def number(value):
    try:
        return float(value)
    except ValueError:
        return None


def datatype_ok(expr, value):
    """The datatypes the init script uses; anything else is a test error."""
    m = re.fullmatch(r"(\w+)(?:\((.*)\))?", expr)
    if not m:
        sys.exit(f"validate_data stand-in: bad datatype {expr}")
    kind, args = m.group(1), (m.group(2) or "")
    if kind == "string":
        return True
    if kind == "bool":
        return value in BOOLS
    if kind == "uinteger":
        return value.isdigit()
    if kind == "integer":
        return re.fullmatch(r"-?\d+", value) is not None
    if kind == "port":
        return value.isdigit() and int(value) <= 65535
    if kind in ("range", "min", "max"):
        bounds = [float(a) for a in args.split(",")]
        n = number(value)
        if n is None:
            return False
        if kind == "range":
            return bounds[0] <= n <= bounds[1]
        return n >= bounds[0] if kind == "min" else n <= bounds[0]
    sys.exit(f"validate_data stand-in: datatype {kind} not implemented")


def validate(path, stype, section, specs):
    options = next((o for t, n, o in parse_uci(path) if n == section and t == stype), None)
    if options is None:
        options = {}
    out, failed = [], False
    package = os.path.basename(path)
    for spec in specs:
        parts = spec.split(":", 2)
        name, expr = parts[0], parts[1]
        default = parts[2] if len(parts) == 3 else ""
        value = options.get(name)
        kind = expr.split("(")[0]

        def escape(v):
            return BOOLS[v] if kind == "bool" else (quote(v) if kind == "string" else v)

        if isinstance(value, list) and any(value):
            items = []
            for i, item in enumerate(v for v in value if v):
                ok = datatype_ok(expr, item)
                print(f"{package}.{section}.{name}[{i}]={item} validates as {expr} with {str(ok).lower()}",
                      file=sys.stderr)
                items.append(escape(item) if ok else "")
                failed |= not ok
            out.append(f"{name}=" + "\\ ".join(items) + "; ")
        elif not value:
            out.append(f"{name}={quote(default)}; " if default else f"unset -v {name}; ")
        else:
            ok = datatype_ok(expr, value)
            out.append(f"{name}={escape(value)}; " if ok else f"unset -v {name}; ")
            print(f"{package}.{section}.{name}={value} validates as {expr} with {str(ok).lower()}",
                  file=sys.stderr)
            failed |= not ok
    print("".join(out))
    return 255 if failed else 0


SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15}


def procd_message(ops_path):
    """Replays the recorded procd.sh calls into the message procd.sh builds."""
    with open(ops_path, encoding="utf-8") as f:
        records = [r.split("\x1f")[:-1] for r in f.read().split("\x1e") if r]
    msg, instance, seq = None, None, 0
    for op, *args in records:
        if op == "open_service":
            msg = {"name": args[0], "instances": {}}
            if len(args) > 1 and args[1]:
                msg["script"] = args[1]
        elif op == "open_instance":
            seq += 1
            instance = {}
            msg["instances"][args[0] if args and args[0] else f"instance{seq}"] = instance
        elif op in ("set_param", "append_param"):
            kind, values = args[0], args[1:]
            if kind in ("env", "data", "limits"):
                table = instance.setdefault(kind, {}) if op == "append_param" else {}
                for item in values:
                    k, _, v = item.partition("=")
                    table[k] = v
                instance[kind] = table
            elif kind in ("command", "netdev", "file", "respawn", "watch", "watchdog"):
                instance[kind] = (instance.get(kind, []) if op == "append_param" else []) + values
            elif kind in ("nice", "term_timeout"):
                instance[kind] = int(values[0])
            elif kind == "reload_signal":
                instance[kind] = SIGNALS[values[0]]
            elif kind in ("stdout", "stderr", "no_new_privs"):
                instance[kind] = values[0] not in ("", "0")
            elif kind in ("pidfile", "user", "group", "seccomp", "capabilities", "facility"):
                instance[kind] = values[0]
            else:
                sys.exit(f"procd stand-in: procd_set_param {kind} is not a procd.sh parameter")
        elif op == "close_instance":
            if "respawn" in instance and not instance["respawn"]:
                instance["respawn"] = ["3600", "5", "5"]
            instance = None
        elif op == "add_jail":
            jail = {"name": args[0]}
            for flag in args[1:]:
                if flag not in ("log", "ubus", "udebug", "procfs", "sysfs", "ronly", "requirejail",
                                "netns", "userns", "cgroupsns"):
                    sys.exit(f"procd stand-in: procd_add_jail knows no {flag}")
                jail[flag] = True
            jail["mount"] = {}
            instance["jail"] = jail
        elif op in ("add_jail_mount", "add_jail_mount_rw"):
            if "jail" in instance:
                for path in args:
                    instance["jail"]["mount"][path] = "1" if op.endswith("_rw") else "0"
        elif op in ("config_trigger", "interface_trigger"):
            key = "package" if op == "config_trigger" else "interface"
            msg.setdefault("triggers", []).append(
                [args[0], ["if", ["eq", key, args[1]], ["run_script", *args[2:]]], 1000])
        else:
            sys.exit(f"procd stand-in: unknown record {op}")
    if msg is not None and "triggers" not in msg:
        msg["triggers"] = []
    print(json.dumps(msg))


def file_sums(instance):
    sums = {}
    for path in instance.get("file", []):
        try:
            with open(path, "rb") as f:
                sums[path] = hashlib.md5(f.read()).hexdigest()
        except OSError:
            sums[path] = None
    return sums


def ubus(state_dir, log, args):
    with open(log, "a", encoding="utf-8") as f:
        f.write(" ".join(args) + "\n")
    if args[:2] != ["call", "service"]:
        return 0
    method, body = args[2], json.loads(args[3]) if len(args) > 3 else {}
    state_path = os.path.join(state_dir, f"{body.get('name', '')}.json")
    try:
        with open(state_path, encoding="utf-8") as f:
            running = json.load(f)
    except FileNotFoundError:
        running = {}
    actions = []
    if method == "set":
        new = {}
        for name, inst in body.get("instances", {}).items():
            inst = dict(inst, file_sums=file_sums(inst))
            new[name] = inst
            old = running.get(name)
            if old is None:
                actions.append(f"start {name}")
            elif old != inst:
                sig = old.get("reload_signal")
                actions.append(f"signal {sig} {name}" if sig else f"restart {name}")
        actions += [f"stop {name}" for name in running if name not in new]
        running = new
    elif method == "delete":
        actions += [f"stop {name}" for name in running]
        running = {}
    elif method == "list":
        print(json.dumps({body.get("name"): {"instances": {
            n: {"running": True} for n in running}}} if running else {}))
    with open(state_path, "w", encoding="utf-8") as f:
        json.dump(running, f)
    with open(log, "a", encoding="utf-8") as f:
        for a in actions or (["nothing"] if method == "set" else []):
            f.write(f"procd: {a}\n")
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "export":
        return export(argv[1])
    if len(argv) >= 4 and argv[0] == "validate":
        return validate(argv[1], argv[2], argv[3], argv[4:])
    if len(argv) == 2 and argv[0] == "procd":
        return procd_message(argv[1])
    if len(argv) >= 3 and argv[0] == "ubus":
        return ubus(argv[1], argv[2], argv[3:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
