"""glibc's dynamic loader, replayed on paths: where each DT_NEEDED of an artifact's ELF files resolves.

The ELF audit (``lamb.release.audit``) asks it which needs the artifact itself satisfies, which the
target's base system must, and which nothing does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from lamb.layout import TASK_ROOT

# Where Lambda's dynamic loader looks inside the function: LD_LIBRARY_PATH holds
# /var/task:/var/task/lib (the task root), per the Lambda base images' Dockerfiles
# (aws/aws-lambda-base-images: ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:
# /var/runtime/lib:/var/task:/var/task/lib:/opt/lib).
TASK_ROOT_LIBRARY_DIRS = ("", "lib")
SYSTEM = "<system>"  # a need the target's base system satisfies


class Loader:
    """glibc's search for each DT_NEEDED, replayed for the imports of every extension module.

    As ld.so(8) describes it: a name already loaded (by file name or soname) is reused; else the
    DT_RPATH of the needing object and of each object that loaded it (unless the needing object
    has a DT_RUNPATH), then LD_LIBRARY_PATH (Lambda's: the task root and its lib/), then the
    needing object's DT_RUNPATH, then the system. Dependencies load breadth first, so an
    auditwheel-vendored library without an RPATH of its own finds its siblings: the extension's
    RPATH (``$ORIGIN/../<dist>.libs``) is inherited.
    """

    def __init__(self, elves: list[Any], present: set[str], in_system: Callable[[str], bool]):
        self.by_path = {e.path: e for e in elves}
        self.present = present
        self.in_system = in_system

    def import_all(self) -> dict[tuple[str, str], str | None]:
        """(needing file, needed name) -> artifact path, SYSTEM, or None when nothing has it."""
        found: dict[tuple[str, str], str | None] = {}
        for entry in (e for e in self.by_path.values() if e.extension):
            loaded: dict[str, str] = {PurePosixPath(entry.path).name: entry.path}
            queue = deque([(entry, self.own_rpath(entry))])
            while queue:
                obj, chain = queue.popleft()
                for name in obj.needed:
                    where: str | None
                    if name in loaded:
                        where = loaded[name]
                    else:
                        where = self.locate(name, obj, chain)
                        if where is not None:
                            loaded[name] = where
                        if where not in (None, SYSTEM) and where in self.by_path:
                            child = self.by_path[where]
                            if child.soname:
                                loaded.setdefault(child.soname, where)
                            queue.append((child, self.own_rpath(child) + chain))
                    if found.get((obj.path, name)) is None:
                        found[(obj.path, name)] = where
        return found

    def own_rpath(self, elf: Any) -> list[PurePosixPath]:
        return self._expand(elf.rpath, elf)

    def locate(self, name: str, elf: Any, rpath_chain: list[PurePosixPath]) -> str | None:
        dirs = [] if elf.runpath else list(rpath_chain)
        dirs += [PurePosixPath(d) for d in TASK_ROOT_LIBRARY_DIRS]
        dirs += self._expand(elf.runpath, elf)
        for directory in dirs:
            path = normalise(directory / name)
            if path is not None and path in self.present:
                return path
        return SYSTEM if self.in_system(name) else None

    @staticmethod
    def _expand(entries: tuple[str, ...], elf: Any) -> list[PurePosixPath]:
        origin = PurePosixPath(elf.path).parent
        out = []
        for entry in entries:
            expanded = entry.replace("${ORIGIN}", "$ORIGIN")
            if expanded.startswith("$ORIGIN"):
                out.append(origin / expanded[len("$ORIGIN"):].lstrip("/"))
            elif expanded == TASK_ROOT or expanded.startswith(TASK_ROOT + "/"):
                out.append(PurePosixPath(expanded[len(TASK_ROOT):].lstrip("/")))
            # Any other absolute path is on the build machine, not on Lambda.
        return out


def normalise(path: PurePosixPath) -> str | None:
    """Resolve ``..`` lexically; None when the path leaves the task root."""
    parts: list[str] = []
    for part in path.parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)

