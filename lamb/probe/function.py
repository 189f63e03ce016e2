"""The probe function: what the dynamic loader of the machine it runs on really provides.

``lamb probe`` ships this file alone as a Lambda function's ``lambda_function.py`` (no
dependencies: it must load wherever the runtime itself does) and runs it on this machine for
``--local``. It reads glibc's version from glibc itself, the libstdc++ and libgcc_s the loader
resolves (their paths from ``/proc/self/maps`` after loading them by soname) and the newest
GLIBCXX_, CXXABI_ and GCC_ versions their version definitions (``.gnu.version_d``) hold, the
sonames in the system library folders, Python's version, ``/etc/os-release``,
``AWS_EXECUTION_ENV`` and the CPU: ``/proc/cpuinfo``'s first processor as it is (lamb reads its
model and instruction sets with ``lambkit.cpu.parse``, the one reader of it, which this file,
shipping alone, cannot import).

The version definitions are read by a few lines of ``struct`` below rather than pyelftools,
which lamb itself uses: shipping pyelftools would give the probe a dependency to install and
load, and the reading here is checked against pyelftools and ``objdump -T`` by lamb's tests.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import struct

SYSTEM_LIBRARY_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib")
_SHT_GNU_VERDEF = 0x6FFFFFFD
_VERSION = re.compile(r"^([A-Z]+)_(\d+(?:\.\d+)*)$")


def lambda_handler(event, context):
    return probe()


def probe() -> dict:
    """Every fact this machine's loader gives, as JSON-ready values (None where it has none)."""
    libstdcxx = _loaded_path("libstdc++.so.6")
    libgcc = _loaded_path("libgcc_s.so.1")
    stdcxx_versions = version_definitions(libstdcxx) if libstdcxx else []
    gcc_versions = version_definitions(libgcc) if libgcc else []
    return {
        "glibc": _glibc(),
        "libstdcxx": libstdcxx,
        "glibcxx": newest(stdcxx_versions, "GLIBCXX"),
        "cxxabi": newest(stdcxx_versions, "CXXABI"),
        "libgcc_s": libgcc,
        "gcc": newest(gcc_versions, "GCC"),
        "system_libraries": _system_libraries(libstdcxx, libgcc),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "os_release": _os_release(),
        "aws_execution_env": os.environ.get("AWS_EXECUTION_ENV"),
        "cpuinfo": _cpuinfo(),
    }


def _cpuinfo() -> str | None:
    """``/proc/cpuinfo`` up to the end of the first processor's block, or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read().split("\n\n", 1)[0]
    except OSError:
        return None


def _glibc() -> str | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    return libc.gnu_get_libc_version().decode("ascii")


def _loaded_path(soname: str) -> str | None:
    """The file the dynamic loader maps for ``soname`` (its real path), or None."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return None
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                parts = line.split(maxsplit=5)  # address perms offset dev inode [path]
                path = parts[5].strip() if len(parts) == 6 else ""
                if os.path.basename(path).startswith(soname):
                    return os.path.realpath(path)
    except OSError:
        pass
    return None


def newest(names: list[str], family: str) -> str | None:
    """The highest ``FAMILY_x.y.z`` version among ``names``, dotted ("3.4.29"), or None."""
    versions = []
    for name in names:
        match = _VERSION.match(name)
        if match and match.group(1) == family:
            versions.append(tuple(int(x) for x in match.group(2).split(".")))
    return ".".join(str(x) for x in max(versions)) if versions else None


def version_definitions(path: str) -> list[str]:
    """The version names an ELF shared library defines (its ``.gnu.version_d``), in file order."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        return []
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        shoff, = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A)
        section = order + "IIQQQQIIQQ"  # name type flags addr offset size link info addralign entsize
    else:
        shoff, = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x2E)
        section = order + "IIIIIIIIII"
    sections = [struct.unpack_from(section, data, shoff + i * shentsize) for i in range(shnum)]
    names: list[str] = []
    for _name, kind, _flags, _addr, offset, _size, link, count, _align, _entsize in sections:
        if kind != _SHT_GNU_VERDEF:
            continue
        strings = sections[link][4]  # the linked string table's offset
        at = offset
        for _ in range(count):  # sh_info: how many definitions
            # Elf_Verdef: version flags ndx cnt hash aux next
            _v, _fl, _ndx, cnt, _hash, aux, nxt = struct.unpack_from(order + "HHHHIII", data, at)
            if cnt:  # the first Elf_Verdaux names the version; the rest name its parents
                vda_name, _vda_next = struct.unpack_from(order + "II", data, at + aux)
                end = data.index(b"\0", strings + vda_name)
                names.append(data[strings + vda_name:end].decode("ascii", "replace"))
            if not nxt:
                break
            at += nxt
    return names


def _system_libraries(*resolved: str | None) -> list[str]:
    """Shared-library names in the system folders, and in the folders the loader resolved
    libstdc++ and libgcc_s from (Debian's multiarch /usr/lib/x86_64-linux-gnu, for one)."""
    found: set[str] = set()
    folders = list(SYSTEM_LIBRARY_DIRS) + [os.path.dirname(p) for p in resolved if p]
    for folder in dict.fromkeys(folders):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        found.update(name for name in entries if ".so" in name)
    return sorted(found)


def _os_release() -> dict:
    fields = {}
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep and key:
                    fields[key] = value.strip().strip('"')
    except OSError:
        pass
    return fields


if __name__ == "__main__":  # `lamb probe --local` runs this file as it is
    import json
    import sys

    json.dump(probe(), sys.stdout)
