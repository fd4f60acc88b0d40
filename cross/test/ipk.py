#!/usr/bin/env python3
"""Reads an ipk the way OpenWrt's opkg does, and checks that it was packed
the way the SDK's ipkg-build packs.

  ipk.py check IPK      the outer and inner archives' format
  ipk.py install IPK ROOT
      unpacks data.tar.gz into ROOT and the control files into
      ROOT/usr/lib/opkg/info/<package>.<name>, with <package>.list, as
      opkg's install does (scripts are not run)

opkg reads only a gzip'd tar holding ./debian-binary, ./data.tar.gz and
./control.tar.gz; anything else (an ar archive, other member names) is
refused with the message opkg gives, "Malformed package file".
"""
import gzip
import io
import os
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


def install(path, root):
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
    print(package)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "install":
        install(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
