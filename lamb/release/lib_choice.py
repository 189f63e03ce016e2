"""Which runtime library release ships for a target: ``resolve``, the one place that decides it.

verify (which release to verify on), compare (which release each row projects) and package (what
it builds) all ask ``resolve``; nothing else chooses. Given the target, the manifest and an
override (``--runtime-lib``), it returns the library, the release, the audit of its wheel and the
reasons.

First the library and the newest release with a wheel *tagged* for the target (``_tagged``: the
override, else what ``lamb verify`` proved, else the first library in preference order whose
kernels cover the model's quantization). Tags are not enough: several releases tagged manylinux
need a newer glibc than Amazon Linux 2 has. So before anything is built, each candidate wheel is
fetched (cached) and audited as it will ship (slimmed or not), newest first; the first that passes
ships, and the reason says why the newer ones did not. When none passes, ``lamb package`` refuses
with one sentence naming the library, the symbol version it needs, the target's glibc, and the
way out.

With ``--wheelhouse`` the candidates are the library's wheels in that folder, whatever their
platform tag (``linux_x86_64`` included): judged by what they need, not by what they claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lamb import quantization, runtime_lib
from lamb.errors import DependencyError, InputError, RuntimeLibError
from lamb.release import audit, slim, wheels
from lamb.targets import Target

SHIP, TAGGED, VERIFY = "ship", "tagged", "verify"  # what ``resolve`` is asked for (its docstring)


@dataclass
class Resolution:
    """The library and release that ship (``choice``: name, requirement, version, the reasons), and
    the audit of its wheel that justified it."""

    choice: runtime_lib.RuntimeLibChoice
    wheel_audit: audit.AuditReport | None  # None: not audited (``audit=False``, or a model named alone)
    rejected: list[str] = field(default_factory=list)  # one phrase per newer candidate the audit refused
    # Set when nothing passed on unmeasured facts and the artifact proves itself at build time
    # (an image's docker build runs the model): why this release ships unproven.
    unproven: str = ""


def resolve(
    target: Target | None,
    manifest: Any,
    override: str | None = None,
    *,
    purpose: str = "ship",
    model_format: str | None = None,
    slimmed: bool = True,
    wheelhouse: Path | None = None,
    cache: Path | None = None,
    progress: Callable[[str], None] | None = None,
    proven_at_build: bool = False,
) -> Resolution:
    """The library and release that ship for ``target``: the newest release of the library the
    evidence picks whose wheel passes the ELF audit there (refused when none does).

    ``purpose``: ``SHIP`` (the default: what ``lamb package`` builds), ``TAGGED`` (the newest release
    *tagged* for the target, unaudited: what the tables alone say; verify resolves a model named
    alone, without a manifest, so), or ``VERIFY``: the release to verify on, so a target
    ``lamb package`` refuses still resolves, to the library's newest wheel for this machine, the
    refusal in its reason (verify then shows whether the model runs at all); so does no target at
    all (``override``'s newest wheel here). ``model_format`` stands in for the manifest's when there
    is none. ``proven_at_build``:
    the artifact runs the model while it is built on the target's own base image (``--format
    image``), so a refusal resting on unmeasured facts becomes a warning there.
    """
    if purpose == VERIFY or target is None:
        return _to_verify(target, manifest, override, model_format)
    if purpose == TAGGED:
        return Resolution(_tagged(target, manifest, override, model_format), None)
    step = progress or (lambda _msg: None)
    if wheelhouse is not None:
        return _from_wheelhouse(target, manifest, override, Path(wheelhouse), slimmed, step)
    try:
        return _first_passing(target, manifest, override, slimmed, cache, step)
    except _NonePasses as none:
        name = none.name
        rank = _unmeasured(target, none.rejected)
        if proven_at_build and rank:
            return _unproven(target, none.rejected, rank)
        # Offer only ways out that pass the audit themselves.
        alternative = None
        if override:
            default = _passing(target, manifest, None, slimmed, cache)
            alternative = default and f"the default library (drop --runtime-lib: {default} passes the ELF audit here)"
        hint = _way_out(target, name, manifest, override, slimmed, cache, alternative, none.rejected)
        if none.rejected:
            raise _refusal(target, none.rejected, None, hint) from None
        raise DependencyError(none.message, hint) from None


def _tagged(target: Target, manifest: Any, override: str | None = None, model_format: str | None = None) -> runtime_lib.RuntimeLibChoice:
    """The library for ``target`` that can run the model ``manifest`` describes, at its newest
    release *tagged* for the target.

    Order of evidence: ``override`` (``--runtime-lib``), then the library ``lamb verify`` ran the
    model on, then the first library in preference order that runs the model's format and whose
    kernels cover its quantization. A Flex model is refused: no library ships the Flex delegate.
    """
    mode = getattr(manifest, "quantization", quantization.DEFAULT) if manifest is not None else quantization.DEFAULT
    fmt = runtime_lib.manifest_format(manifest) or model_format
    runtime_lib.refuse_flex(manifest)
    if override:
        return _asked_for(target, runtime_lib.normalise_name(override), fmt, mode)
    verification = getattr(manifest, "verification", None) if manifest is not None else None
    verified = verification.runtime_lib if verification is not None and verification.passed else None
    if verified and verification is not None:
        name = runtime_lib.normalise_name(verified)
        rows = [r for r in runtime_lib.available(target, name) if not r.lacks(mode)]
        if rows:
            row = rows[0]
            same = row.version == verification.runtime_lib_version
            how = "the same version" if same else f"{row.version}, its newest wheel for {target.name}"
            return runtime_lib.choice_of(row, f"lamb verify ran the model on {name} {verification.runtime_lib_version}; shipping {how}")
    for lib in runtime_lib.LIBRARIES.values():
        if fmt is not None and lib.format.name != fmt:
            continue
        rows = runtime_lib.available(target, lib.name)
        fitting = [r for r in rows if not r.lacks(mode)]
        if fitting:
            row = fitting[0]
            why = f"{row.name} {row.version} is the newest runtime library with a wheel for {target.describe()}"
            if verified and verification is not None:
                why += f" ({verified} {verification.runtime_lib_version}, which verify used, has none)"
            skipped = [r for r in rows if r not in fitting]
            if skipped:
                why += f"; {skipped[0].name} {skipped[0].version} lacks {mode} kernels"
            return runtime_lib.choice_of(row, why)
    what = f"{fmt} " if fmt else ""
    raise DependencyError(
        f"no runtime library has a wheel for {target.describe()} that runs {mode} {what}models",
        f"pick another --runtime or --arch; available: {_offer(target, fmt) or 'none'}",
    )


def _asked_for(target: Target, name: str, fmt: str | None, mode: str) -> runtime_lib.RuntimeLibChoice:
    if fmt is not None and runtime_lib.get(name).format.name != fmt:
        raise InputError(
            f"{name} runs {runtime_lib.get(name).format.name} models, and this model is {fmt}",
            f"use --runtime-lib {' or '.join(lib.name for lib in runtime_lib.for_format(fmt))}, or convert for {name}",
        )
    rows = runtime_lib.available(target, name)
    if not rows:
        raise DependencyError(
            f"{name} has no wheel for {target.describe()}",
            f"choose another --runtime-lib; for this target: {_offer(target, fmt)}",
        )
    row = rows[0]
    note = ""
    if row.lacks(mode):
        note = f"; warning: {name} {row.version} lacks kernels for {mode} models, the smoke run will tell"
    return runtime_lib.choice_of(row, f"--runtime-lib {name} asked for; {row.version} is its newest wheel for {target.name}{note}")


def _offer(target: Target, fmt: str | None = None) -> str:
    rows = runtime_lib.available(target, model_format=fmt)
    return ", ".join(f"{r.name} {r.version}" for r in rows) or "no runtime library at all"


def _to_verify(target: Target | None, manifest: Any, override: str | None, model_format: str | None) -> Resolution:
    """What verify runs for ``target``: what ships there, else the nearest thing this machine can
    run; no target: ``override``'s newest wheel for this machine."""
    from lamb import targets

    host = targets.host_target()
    if target is None:
        name = runtime_lib.normalise_name(override or runtime_lib.default().name)
        return Resolution(_host(name, host), None)
    try:
        resolved = resolve(target, manifest, override, model_format=model_format, purpose=SHIP if manifest is not None else TAGGED)
    except RuntimeLibError:
        # A Flex model: no library can run it; verify on the default one and report that it fails.
        runs = runtime_lib.for_format(model_format or runtime_lib.manifest_format(manifest) or "")
        default = runs[0].name if runs else runtime_lib.default().name
        return Resolution(runtime_lib.unpinned(default, f"no runtime library runs Flex models; tried the default, {default}"), None)
    except DependencyError as refused:
        # lamb package will refuse this target: verify on the library's newest wheel here, and say so.
        name = runtime_lib.normalise_name(override) if override else runtime_lib.default().name
        here = _host(name, host)
        return Resolution(replace(here, reason=f"{here.requirement} on this machine; `lamb package` refuses "
                                               f"{target.name}: {refused.message}"), None)
    choice = resolved.choice
    audited = " (the newest release whose wheel passes the ELF audit there)" if resolved.wheel_audit is not None else ""
    return replace(resolved, choice=replace(choice, reason=f"{choice.requirement}, what `lamb package` ships for {target.name}{audited}"))


def _host(name: str, host: Target | None) -> runtime_lib.RuntimeLibChoice:
    """``name``'s newest wheel for this machine's Lambda target (``host``), to run a model here."""
    rows = runtime_lib.available(host, name) if host is not None else []
    if not rows:
        return runtime_lib.unpinned(name, f"--runtime-lib {name}")
    row = rows[0]
    return runtime_lib.choice_of(row, f"{row.name}=={row.version}, its newest wheel for this machine")


class _NonePasses(Exception):
    def __init__(self, name: str, rejected: list, message: str = ""):
        super().__init__(message)
        self.name, self.rejected, self.message = name, rejected, message


def _passing(target: Target, manifest: Any, override: str | None, slimmed: bool, cache: Path | None) -> str | None:
    """The requirement that would ship for ``target``, or None when nothing passes there."""
    try:
        return _first_passing(target, manifest, override, slimmed, cache, lambda _msg: None).choice.requirement
    except (_NonePasses, DependencyError):
        return None


def _first_passing(target: Target, manifest: Any, override: str | None, slimmed: bool, cache: Path | None,
                   step: Callable[[str], None]) -> Resolution:
    try:
        first = _tagged(target, manifest, override)
    except DependencyError as exc:
        if not override:
            raise
        raise _NonePasses(runtime_lib.normalise_name(override), [], exc.message) from None
    mode = getattr(manifest, "quantization", quantization.DEFAULT) if manifest is not None else quantization.DEFAULT
    rejected: list[tuple[str, str, audit.AuditReport]] = []  # (name, version, report), newest first
    for row in _candidates(target, first, override, mode):
        step(f"auditing the wheel of {row.name} {row.version} for {target.name}")
        wheel = wheels.fetch_wheel(row.name, row.version, target, cache=cache)
        report = audit.audit_wheel_as_shipped(wheel, target, slim.slim if slimmed else None)
        if report.passed:
            picked = (row.name, row.version) == (first.name, first.version)
            choice = first if picked else runtime_lib.choice_of(row)
            why = _why(first.reason if picked else "", row.name, row.version, report, rejected, target)
            return Resolution(replace(choice, reason=why), report, [_phrase(*r) for r in rejected])
        rejected.append((row.name, row.version, report))
    raise _NonePasses(first.name, rejected)


def _candidates(target: Target, first: runtime_lib.RuntimeLibChoice, override: str | None, mode: str):
    """The table's pick, then its older releases, then (unless asked for one library) the others'."""
    rows = runtime_lib.available(target, first.name)
    yield from rows[[r.version for r in rows].index(first.version):]
    if override:
        return
    fmt = runtime_lib.get(first.name).format.name
    for lib in runtime_lib.for_format(fmt):
        if lib.name != first.name:
            yield from (r for r in runtime_lib.available(target, lib.name) if not r.lacks(mode))


def _why(reason: str, name: str, version: str, report: audit.AuditReport,
         rejected: list[tuple[str, str, audit.AuditReport]], target: Target) -> str:
    needs = _needs_phrase(report)
    passed = f"{name} {version}'s wheel passes the ELF audit for {target.system.name} ({needs})"
    if not rejected:
        return f"{reason}; {passed}" if reason else passed
    refused = "; ".join(_phrase(*r) for r in rejected)
    return f"{refused}; {passed}, the newest that does"


def _phrase(name: str, version: str, report: audit.AuditReport) -> str:
    problem = report.problems[0]
    return f"{name} {version} needs {problem.need} ({problem.file.rsplit('/', 1)[-1]})"


def _needs_phrase(report: audit.AuditReport) -> str:
    return ", ".join(f"{family} {version}" for family, version in report.newest.items() if family in ("GLIBC", "GLIBCXX")) \
        or "no versioned symbols"


def _way_out(target: Target, name: str, manifest: Any, override: str | None, slimmed: bool, cache: Path | None,
             alternative: str | None = None, rejected: list | None = None) -> str:
    """Only ways out that exist: another runtime, arch or engine is offered when its wheel passes."""
    from lamb import targets

    outs = [alternative] if alternative else []
    newest_os = targets.default_runtime().os
    if target.runtime.os != newest_os:
        newer = next(r for r in targets.RUNTIMES if r.os == newest_os)
        if _passing(targets.Target(newer, target.arch), manifest, override, slimmed, cache):
            outs.append(f"{newer.name} or newer on {target.arch} ({newest_os}, glibc {'%d.%d' % newer.glibc})")
    other = next(a for a in targets.ARCHES if a != target.arch)
    there = _passing(targets.Target(target.runtime, other), manifest, override, slimmed, cache)
    if there:
        outs.append(f"--arch {other} ({there} passes there)")
    engine = None if alternative else _other_engine(target, name, cache)
    if engine:
        outs.append(engine)
    unmeasured = _unmeasured(target, rejected or [])
    if unmeasured:
        outs.append("--format image (its docker build runs the model on the base image's own libraries, "
                    "so it fails there if the function would)")
        outs.append(f"measure the target with `lamb probe --runtime {target.runtime.name} --arch {target.arch}` "
                    f"(this verdict rests on {unmeasured} facts, not a measurement)")
    outs.append(f"--wheelhouse with a wheel of {name} built for {target.runtime.os}")
    return "use " + ", or ".join(outs)


def _unproven(target: Target, rejected: list, rank: str) -> Resolution:
    """The table's pick, shipped into an image whose build decides what the audit could not."""
    name, version, report = rejected[0]
    row = next(r for r in runtime_lib.available(target, name) if r.version == version)
    why = (f"no release passes the ELF audit on {rank} facts ({_phrase(name, version, report)}); "
           f"{name} {version} ships into the image, whose docker build runs the model on the base image's own "
           "libraries and fails there if the function would")
    return Resolution(runtime_lib.choice_of(row, why), report, [_phrase(*r) for r in rejected], unproven=why)


def _unmeasured(target: Target, rejected: list) -> str | None:
    """The rank of the facts the refusal rests on, unless they were measured (then no image or
    probe can change the verdict)."""
    from lamb import targets

    ranks = [report.rests_on for _name, _version, report in rejected]
    rank = targets.weakest(ranks) if ranks else None
    return rank if rank in (targets.DOCUMENTED, targets.INFERRED) else None


def _other_engine(target: Target, name: str, cache: Path | None) -> str | None:
    """Another runtime library lamb can ship whose newest wheel passes the audit here; one that
    runs another model format (ONNX Runtime for a LiteRT model) needs the model converted for it."""
    here = runtime_lib.get(name).format.name
    for other in runtime_lib.names():
        if other == name:
            continue
        rows = runtime_lib.available(target, other)
        if not rows:
            continue
        wheel = wheels.fetch_wheel(other, rows[0].version, target, cache=cache)
        if audit.audit_wheel(wheel, target).passed:
            passes = f"{other} {rows[0].version}'s wheel passes the audit here"
            if runtime_lib.get(other).format.name != here:
                return f"another engine: `lamb convert MODEL --runtime-lib {other}`, verify and package that ({passes})"
            return f"--runtime-lib {other} ({passes})"
    return None


def _refusal(target: Target, rejected: list[tuple[str, str, audit.AuditReport]], via: str | None,
             hint: str) -> DependencyError:
    name, version, report = rejected[0]
    problem = report.problems[0]
    least = min(rejected, key=lambda r: _need_rank(r[2]))
    also = ""
    if len(rejected) > 1 and least is not rejected[0]:
        also = f" (even {least[0]} {least[1]} needs {least[2].problems[0].need})"
    source = f"the wheelhouse's {Path(via).name}" if via else f"{name} {version}"
    return DependencyError(
        f"{source} cannot load on {target.describe()}: its {problem.file.rsplit('/', 1)[-1]} needs "
        f"{problem.need}{also}",
        hint,
    )


def _need_rank(report: audit.AuditReport) -> tuple:
    parsed = audit.parse_version(report.problems[0].need) if report.problems else None
    return parsed[1] if parsed else (999,)


def _from_wheelhouse(target: Target, manifest: Any, override: str | None, wheelhouse: Path, slimmed: bool,
                     step: Callable[[str], None]) -> Resolution:
    """The newest wheel of the library in the wheelhouse that loads on the target."""
    runtime_lib.refuse_flex(manifest)
    if override:
        names = [runtime_lib.normalise_name(override)]
    else:
        verification = getattr(manifest, "verification", None) if manifest is not None else None
        verified = runtime_lib.normalise_name(verification.runtime_lib) if verification and verification.runtime_lib else None
        fmt = runtime_lib.manifest_format(manifest)
        runs = [lib.name for lib in (runtime_lib.for_format(fmt) if fmt else runtime_lib.LIBRARIES.values())]
        names = ([verified] if verified else []) + [n for n in runs if n != verified]
    rejected: list[tuple[str, str, audit.AuditReport]] = []
    last_wheel = None
    for name in names:
        for version, wheel in wheels.wheel_versions(wheelhouse, name, target, local_builds=True).items():
            step(f"auditing {wheel.name} for {target.name}")
            report = audit.audit_wheel_as_shipped(wheel, target, slim.slim if slimmed else None)
            if report.passed:
                lib = runtime_lib.get(name)
                choice = runtime_lib.RuntimeLibChoice(
                    name=name, requirement=f"{name}=={version}", version=version, module=lib.module,
                    extra_requirements=list(lib.needs),
                    reason=_why("", name, version, report, rejected, target).replace(
                        f"{name} {version}'s wheel", f"the wheelhouse's {wheel.name}", 1),
                )
                return Resolution(choice, report, [_phrase(*r) for r in rejected])
            rejected.append((name, version, report))
            last_wheel = last_wheel or wheel
        if override or rejected:
            break  # the library asked for, or the first one the wheelhouse has, decides
    if not rejected:
        raise DependencyError(
            f"the wheelhouse {wheelhouse} has no wheel of {' or '.join(names)} for {target.describe()}",
            "add one (built for that Python and arch), or drop --wheelhouse to use the index",
        )
    raise _refusal(
        target, rejected, via=str(last_wheel),
        hint=f"replace it with a wheel of {rejected[0][0]} built for {target.runtime.os} (glibc {target.glibc} "
        "or older), or build without --wheelhouse",
    )
