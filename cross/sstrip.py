#!/usr/bin/env python3
"""Copies an ELF executable without what the kernel does not load.

    sstrip.py IN OUT

To run a static executable the kernel reads only the ELF header and the
program headers. Everything past the last byte that a program header
covers -- the non-allocated sections such as MIPS's .pdr (procedure
descriptors, ~15% of a MIPS binary), .comment, the section name table and
the section header table -- is dropped, and the header's section fields are
zeroed. This is what OpenWrt's own `sstrip` does to firmware binaries.
Refuses files where a section header table is not at the end (nothing to
gain, and it would not be safe to cut).
"""
import struct
import sys


def sstrip(data):
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    cls, enc = data[4], data[5]
    if cls not in (1, 2) or enc not in (1, 2):
        raise ValueError("unknown ELF class or byte order")
    e = "<" if enc == 1 else ">"
    if cls == 1:
        # e_phoff, e_shoff at 28, 32; e_phentsize, e_phnum at 42, 44
        phoff, shoff = struct.unpack_from(e + "II", data, 28)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 42)
        ehsize = 52
        shfields = (32, "I"), (48, "H"), (50, "H")  # e_shoff, e_shnum, e_shstrndx

        def segment(off):
            _, p_offset, _, _, p_filesz = struct.unpack_from(e + "IIIII", data, off)
            return p_offset, p_filesz
    else:
        phoff, shoff = struct.unpack_from(e + "QQ", data, 32)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 54)
        ehsize = 64
        shfields = (40, "Q"), (60, "H"), (62, "H")

        def segment(off):
            p_offset, _, _, p_filesz = struct.unpack_from(e + "QQQQ", data, off + 8)
            return p_offset, p_filesz

    if phnum == 0:
        raise ValueError("no program headers: not an executable")
    end = max(ehsize, phoff + phnum * phentsize)
    for i in range(phnum):
        p_offset, p_filesz = segment(phoff + i * phentsize)
        end = max(end, p_offset + p_filesz)
    if end > len(data):
        raise ValueError("a program header points past the end of the file")
    if shoff and shoff < end:
        raise ValueError("section header table inside the loaded part; not stripping")
    out = bytearray(data[:end])
    for off, fmt in shfields:
        struct.pack_into(e + fmt, out, off, 0)
    return bytes(out)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: sstrip.py IN OUT")
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    try:
        out = sstrip(data)
    except ValueError as err:
        sys.exit(f"sstrip.py: {sys.argv[1]}: {err}")
    with open(sys.argv[2], "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
