#!/usr/bin/env python3
"""Reads an ipk the way OpenWrt's opkg does, and checks that it was packed
the way the SDK's ipkg-build packs; stands in for opkg itself.

  ipk.py check IPK      the outer and inner archives' format
  ipk.py install IPK ROOT
      unpacks data.tar.gz into ROOT and the control files into
      ROOT/usr/lib/opkg/info/<package>.<name>, with <package>.list, as
      opkg's install does (no checks, no scripts, no status)
  ipk.py opkg ROOT install IPK [--force-depends]
  ipk.py opkg ROOT remove PACKAGE [--force-depends]
      opkg (opkg-lede, OpenWrt's) installing a package file or removing a
      package on the root file system ROOT, with its status database
      ROOT/usr/lib/opkg/status: see Opkg below

opkg reads only a gzip'd tar holding ./debian-binary, ./data.tar.gz and
./control.tar.gz; anything else (an ar archive, other member names) is
refused with the message opkg gives, "Malformed package file".
"""
import gzip
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile

MEMBERS = ["./debian-binary", "./data.tar.gz", "./control.tar.gz"]


def refuse(why):
    sys.exit(f"Malformed package file: {why}")


def gzip_tar(data, what):
    if data[:2] != b"\x1f\x8b":
        refuse(f"{what} is not gzip'd (starts {data[:8]!r})")
    try:
        return tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:")
    except (OSError, tarfile.TarError) as e:
        refuse(f"{what}: {e}")


def packed_like_ipkg_build(data, what, names=None):
    """Errors: gzip -n, GNU tar, numeric owner 0, names sorted."""
    errors = []
    if data[3] != 0 or data[4:8] != b"\0\0\0\0":
        errors.append(f"{what}: gzip header keeps a name or time (not gzip -n)")
    raw = gzip.decompress(data)
    if raw[257:265] != b"ustar  \0":
        errors.append(f"{what}: not GNU tar format")
    tar = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
    members = tar.getmembers()
    got = [m.name for m in members]
    if names is not None and got != names:
        errors.append(f"{what}: members {got}, want {names}")
    if names is None and got != sorted(got):
        errors.append(f"{what}: names not sorted: {got}")
    for m in members:
        if (m.uid, m.gid, m.uname, m.gname) != (0, 0, "", ""):
            errors.append(f"{what}: {m.name} owned by {m.uid}/{m.gid} {m.uname}/{m.gname}, not numeric 0/0")
    return errors


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] == b"!<arch>\n":
        refuse("an ar archive; opkg reads gzip'd tar packages only")
    outer = gzip_tar(data, "package")
    files = {}
    for m in outer.getmembers():
        if m.name not in MEMBERS or not m.isfile():
            refuse(f"unexpected member {m.name}")
        files[m.name] = outer.extractfile(m).read()
    if set(files) != set(MEMBERS):
        refuse(f"members {sorted(files)}")
    if files["./debian-binary"] != b"2.0\n":
        refuse("debian-binary is not 2.0")
    return data, files


def check(path):
    data, files = read(path)
    errors = packed_like_ipkg_build(data, "package", MEMBERS)
    errors += packed_like_ipkg_build(files["./control.tar.gz"], "control.tar.gz")
    errors += packed_like_ipkg_build(files["./data.tar.gz"], "data.tar.gz")
    if errors:
        sys.exit("\n".join(errors))


def install(path, root, quiet=False):
    _, files = read(path)
    control = gzip_tar(files["./control.tar.gz"], "control.tar.gz")
    fields = control.extractfile("./control").read().decode()
    package = next(l.split(":", 1)[1].strip() for l in fields.splitlines() if l.startswith("Package:"))
    info = os.path.join(root, "usr/lib/opkg/info")
    os.makedirs(info, exist_ok=True)
    for m in control.getmembers():
        if m.isfile():
            dest = os.path.join(info, f"{package}.{os.path.basename(m.name)}")
            with open(dest, "wb") as f:
                f.write(control.extractfile(m).read())
            os.chmod(dest, m.mode)
    data = gzip_tar(files["./data.tar.gz"], "data.tar.gz")
    listed = []
    for m in data.getmembers():
        if m.isfile():
            listed.append(m.name[1:])
    data.extractall(root, filter="fully_trusted")
    with open(os.path.join(info, f"{package}.list"), "w", encoding="utf-8") as f:
        f.write("".join(p + "\n" for p in listed))
    if not quiet:
        print(package)


def control_fields(text):
    """The fields of a control file or status stanza, continuation lines
    joined with newlines."""
    fields, last = {}, None
    for line in text.splitlines():
        if line.startswith(" ") and last:
            fields[last] += "\n" + line[1:]
        elif ":" in line:
            last, value = line.split(":", 1)
            fields[last] = value.strip()
    return fields


def names(field):
    """Package names of a Depends, Conflicts or Provides field: version
    constraints dropped, alternatives ("a | b") kept together as lists."""
    out = []
    for part in (field or "").split(","):
        alts = [re.sub(r"\s*\(.*\)", "", a).strip() for a in part.split("|")]
        alts = [a for a in alts if a]
        if alts:
            out.append(alts)
    return out


def version_key(version):
    """opkg's (dpkg's) version order: epoch, then upstream and revision
    compared part by part, digits numerically, ~ before anything."""
    epoch, _, rest = version.rpartition(":")
    upstream, _, revision = rest.partition("-")

    def parts(s):
        key = []
        for digits, other in re.findall(r"(\d+)|(\D+)", s):
            if digits:
                key.append((1, int(digits), ""))
            else:
                key.append((0, 0, "".join(chr(0) if c == "~" else c for c in other)))
        return key

    return (int(epoch or 0), parts(upstream), parts(revision))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Opkg:
    """opkg-lede's install and remove, with the steps, order and messages
    of opkg_install_pkg, opkg_remove_pkg and their checks:

    install: the package's Conflicts name an installed package -> refused
    (check_conflicts_for; Replaces is not modelled: OpenWrt's build system
    never writes it); a Depends satisfied by no installed package or
    Provides -> refused (no feeds to fetch it from); same name installed:
    same version -> "up to date", nothing done, older -> "Not downgrading",
    newer -> upgrade (the old prerm "upgrade", files it had that the new one
    lacks removed); a file the package brings that another installed
    package owns -> refused (check_data_file_clashes); conffiles: a changed
    one (checksum in the status differs) is kept and the package's copy
    written as NAME-opkg, as is one left behind by a removed package; the
    postinst "configure" last. Scripts run with PKG_UPGRADE (1 on upgrade,
    else 0) and PKG_ROOT, by busybox sh.
    remove: installed packages depending on it or on what it provides ->
    refused unless --force-depends; the prerm "remove", its files deleted
    except changed conffiles ("Not deleting modified conffile"), the
    postrm, its info files and status entry.

    STANDIN_AFTER_UNPACK, when set, is a bash command run once a package's
    files are in place, before its scripts, with the package's name in
    STANDIN_PACKAGE (the tests point the scripts' absolute paths into ROOT
    with it)."""

    def __init__(self, root, force_depends=False):
        self.root = root
        self.force_depends = force_depends
        self.info = os.path.join(root, "usr/lib/opkg/info")
        self.status_path = os.path.join(root, "usr/lib/opkg/status")
        self.status = []
        if os.path.exists(self.status_path):
            with open(self.status_path, encoding="utf-8") as f:
                self.status = [control_fields(s) for s in f.read().split("\n\n") if s.strip()]

    def fail(self, where, message):
        for line in message.splitlines():
            print(f" * {where}: {line}", file=sys.stderr)
        sys.exit(255)

    def save(self):
        os.makedirs(os.path.dirname(self.status_path), exist_ok=True)
        with open(self.status_path, "w", encoding="utf-8") as f:
            for p in self.status:
                for k, v in p.items():
                    f.write(f"{k}: {v}".replace("\n", "\n ") + "\n")
                f.write("\n")

    def installed(self, name):
        return next((p for p in self.status if p["Package"] == name), None)

    def provides(self, pkg):
        return {pkg["Package"]} | {n for alts in names(pkg.get("Provides")) for n in alts}

    def files(self, name):
        try:
            with open(os.path.join(self.info, f"{name}.list"), encoding="utf-8") as f:
                return [l.rstrip("\n") for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def owner(self, path):
        return next((p["Package"] for p in self.status if path in self.files(p["Package"])), None)

    def conffiles(self, pkg):
        """{path: checksum} of an installed package."""
        out = {}
        for line in pkg.get("Conffiles", "").splitlines():
            if line.strip():
                path, _, sum_ = line.strip().partition(" ")
                out[path] = sum_
        return out

    def modified(self, path, recorded):
        full = self.root + path
        return os.path.exists(full) and sha256(full) != recorded

    def run(self, name, script, args, upgrade):
        path = os.path.join(self.info, f"{name}.{script}")
        if not os.path.exists(path):
            return
        env = dict(os.environ, PKG_UPGRADE="1" if upgrade else "0", PKG_ROOT=self.root + "/")
        rc = subprocess.run(["busybox", "sh", path, *args], env=env).returncode
        if rc:
            self.fail("pkg_run_script", f'package "{name}" {script} script returned status {rc}.')

    def delete_files(self, pkg, keep):
        """Removes an installed package's files but those in keep, and its
        emptied directories."""
        for path in sorted(self.files(pkg["Package"]), reverse=True):
            full = self.root + path
            if path in keep:
                continue
            if os.path.isdir(full) and not os.path.islink(full):
                continue
            if os.path.lexists(full):
                os.unlink(full)

    def forget(self, name):
        for f in os.listdir(self.info):
            if f.startswith(name + ".") and f[len(name) + 1:] in (
                    "control", "list", "conffiles", "postinst", "prerm", "postrm", "preinst",
                    "postinst-pkg", "prerm-pkg"):
                os.unlink(os.path.join(self.info, f))
        self.status = [p for p in self.status if p["Package"] != name]

    def install(self, ipk):
        _, files = read(ipk)
        control = gzip_tar(files["./control.tar.gz"], "control.tar.gz")
        new = control_fields(control.extractfile("./control").read().decode())
        name = new["Package"]
        old = self.installed(name)
        if old:
            cmp = (version_key(old["Version"]) > version_key(new["Version"])) - (
                version_key(old["Version"]) < version_key(new["Version"]))
            if cmp == 0:
                print(f"Package {name} ({new['Version']}) installed in root is up to date.")
                return
            if cmp > 0:
                print(f"Not downgrading package {name} on root from {old['Version']} to {new['Version']}.")
                return
            print(f"Upgrading {name} on root from {old['Version']} to {new['Version']}...")
        else:
            print(f"Installing {name} ({new['Version']}) to root...")
        conflicting = [alts[0] for alts in names(new.get("Conflicts"))
                       if self.installed(alts[0]) and alts[0] != name]
        if conflicting and not self.force_depends:
            self.fail("check_conflicts_for",
                      f"The following packages conflict with {name}:\n\t" + "\n\t".join(conflicting))
        present = set().union(*(self.provides(p) for p in self.status if p["Package"] != name))
        missing = [" | ".join(alts) for alts in names(new.get("Depends"))
                   if not any(a in present for a in alts)]
        if missing and not self.force_depends:
            self.fail("satisfy_dependencies_for",
                      f"Cannot satisfy the following dependencies for {name}:\n\t" + "\n\t".join(missing))
        data = gzip_tar(files["./data.tar.gz"], "data.tar.gz")
        new_files = [m.name[1:] for m in data.getmembers() if m.isfile()]
        conf_member = next((m for m in control.getmembers() if m.name == "./conffiles"), None)
        new_conf = [] if conf_member is None else [
            l.strip() for l in control.extractfile(conf_member).read().decode().splitlines() if l.strip()]
        if old:
            self.run(name, "prerm", ["upgrade", new["Version"]], upgrade=True)
        # backup_modified_conffiles: an upgraded package's changed
        # conffiles, and the package's conffiles that exist but were no
        # conffiles of the package before (left by a removed package).
        kept = {}
        old_conf = self.conffiles(old) if old else {}
        for path in new_conf:
            full = self.root + path
            if not os.path.exists(full):
                continue
            if (path in old_conf and self.modified(path, old_conf[path])) or (
                    path not in old_conf and self.owner(path) in (None, name)):
                with open(full, "rb") as f:
                    kept[path] = f.read()
        for path in new_files:
            full = self.root + path
            if path in kept or not os.path.lexists(full) or os.path.isdir(full):
                continue
            owner = self.owner(path)
            if owner == name:
                continue
            self.fail("check_data_file_clashes",
                      f"Package {name} wants to install file {full}\n"
                      f"\tBut that file is already provided by package  * {owner or '<no package>'}")
        if old:
            self.delete_files(old, set())
            self.forget(name)
        install(ipk, self.root, quiet=True)
        sums = {}
        for path in new_conf:
            full = self.root + path
            if not os.path.exists(full):
                continue
            sums[path] = sha256(full)
            if path in kept:
                with open(full, "rb") as f:
                    theirs = f.read()
                if theirs != kept[path]:
                    print(f"Existing conffile {full} is different from the conffile in the new package."
                          f" The new conffile will be placed at {full}-opkg.", file=sys.stderr)
                    os.rename(full, full + "-opkg")
                    with open(full, "wb") as f:
                        f.write(kept[path])
        entry = {k: new[k] for k in ("Package", "Version", "Depends", "Conflicts", "Provides")
                 if k in new}
        entry["Status"] = "install user installed"
        entry["Architecture"] = new.get("Architecture", "")
        if sums:
            entry["Conffiles"] = "\n" + "\n".join(f"{p} {s}" for p, s in sums.items())
        self.status.append(entry)
        self.save()
        hook = os.environ.get("STANDIN_AFTER_UNPACK")
        if hook:
            subprocess.run(["bash", "-c", hook], check=True, env=dict(os.environ, STANDIN_PACKAGE=name))
        print(f"Configuring {name}.")
        self.run(name, "postinst", ["configure"], upgrade=bool(old))

    def remove(self, name):
        pkg = self.installed(name)
        if not pkg:
            print("No packages removed.")
            return
        provided = self.provides(pkg)
        dependents = [p["Package"] for p in self.status if p["Package"] != name and any(
            any(a in provided for a in alts) for alts in names(p.get("Depends")))]
        if dependents and not self.force_depends:
            self.fail("print_dependents_warning",
                      f"Package {name} is depended upon by packages:\n"
                      + "".join(f"\t{d}\n" for d in dependents)
                      + f"These might cease to work if package {name} is removed.\n\n"
                      "Force removal of this package with --force-depends.\n"
                      "Force removal of this package and its dependents\n"
                      "with --force-removal-of-dependent-packages.")
        print(f"Removing package {name} from root...")
        self.run(name, "prerm", ["remove"], upgrade=False)
        keep = set()
        for path, recorded in self.conffiles(pkg).items():
            if self.modified(path, recorded):
                print(f"Not deleting modified conffile {self.root + path}.")
                keep.add(path)
        self.delete_files(pkg, keep)
        self.run(name, "postrm", ["remove"], upgrade=False)
        self.forget(name)
        self.save()


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "check":
        check(args[1])
    elif len(args) == 3 and args[0] == "install":
        install(args[1], args[2])
    elif len(args) >= 4 and args[0] == "opkg" and args[2] in ("install", "remove"):
        force = "--force-depends" in args[4:]
        if [a for a in args[4:] if a != "--force-depends"]:
            sys.exit(__doc__)
        opkg = Opkg(args[1], force_depends=force)
        opkg.install(args[3]) if args[2] == "install" else opkg.remove(args[3])
    else:
        sys.exit(__doc__)
