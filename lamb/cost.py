"""What a Lambda function costs, and which memory setting to give it, from timings measured here.

Lambda bills each request plus GB-seconds (the memory setting times the billed duration, rounded
up to the millisecond), and gives a function CPU in proportion to its memory: one vCPU at 1,769 MB.
So for inference run on one thread, the time measured here on one core stretches by 1,769 / memory
below one vCPU and does not shrink above it. Below 1,769 MB the GB-seconds, and so the compute
cost, stay about flat while latency falls as memory grows; above it cost grows with memory and
latency does not move. ``advise_memory`` turns that into a setting: the point where cost stops
being flat, or the cheapest setting that meets a latency the user gives, never below the floors
(peak RSS, and any other floor a caller knows of).

Every figure here is an estimate from local timing: the machine, its CPU and its load are not
Lambda's. Callers say so wherever they show one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lamb.errors import InputError

# Lambda's memory setting: 128 MB to 10,240 MB in 1 MB steps; one vCPU's worth of CPU at 1,769 MB,
# up to 6 vCPUs. https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
# The shipped handler sizes its thread pool by the same two CPU figures; it cannot import lamb, so
# it repeats them and tests/test_cost.py checks that they agree.
LAMBDA_MIN_MEMORY_MB = 128
LAMBDA_MAX_MEMORY_MB = 10240
MB_PER_VCPU = 1769
MAX_VCPUS = 6

# The peak-RSS floor: peak x 1.25 + 32 MB, rounded up to 64 MB. The 25 % covers inputs larger than
# the one measured and allocator growth over many warm requests; the 32 MB what the real runtime
# client adds beside the handler. Lambda kills a function the moment it crosses its setting.
_HEADROOM = 1.25
_HEADROOM_MB = 32
_STEP_MB = 64
# "Flat": within 2 % of the cheapest setting. The 1 ms billing granularity makes costs wobble by
# about that much between neighbouring settings for requests of a few tens of ms.
FLAT = 0.02


@dataclass(frozen=True)
class Price:
    """On-demand prices for one architecture, in US dollars."""

    arch: str  # Lambda's name: "x86_64" | "arm64"
    gb_second: float  # per GB-second of billed duration (first tier: up to 6 billion GB-s a month)
    per_million_requests: float
    region: str
    source: str
    checked: str  # when the figures were read from the source


# https://aws.amazon.com/lambda/pricing/ (US East (N. Virginia), first duration tier; read
# 2026-11-26): requests $0.20 per 1M on both architectures; duration $0.0000166667 per GB-s on x86
# and $0.0000133334 per GB-s on Arm (the page lists them per ms: $0.0000000021 per ms at 128 MB x86).
# Billed duration is rounded up to 1 ms. Since 2025-08-01 the INIT phase (cold start) of zip
# functions on managed runtimes is billed too ("AWS Lambda standardizes billing for INIT Phase",
# AWS Compute Blog, 2025-04-29); it is paid once per execution environment, not per request.
PRICES: dict[str, Price] = {
    "x86_64": Price("x86_64", 0.0000166667, 0.20, "us-east-1", "https://aws.amazon.com/lambda/pricing/", "2026-11-26"),
    "arm64": Price("arm64", 0.0000133334, 0.20, "us-east-1", "https://aws.amazon.com/lambda/pricing/", "2026-11-26"),
}

ESTIMATE_NOTE = (
    "cost is an estimate from local timing at 1 thread (above one vCPU, at 2 threads), scaled by Lambda's CPU share "
    f"(1 vCPU per {MB_PER_VCPU:,} MB) and priced at {PRICES['x86_64'].region} on-demand rates read "
    f"{PRICES['x86_64'].checked}; Lambda's CPUs are not this machine's"
)


def price_for(arch: str) -> Price:
    try:
        return PRICES[arch]
    except KeyError:
        raise InputError(f"no Lambda price for arch {arch!r}", f"use one of: {', '.join(PRICES)}") from None


def check_memory(memory_mb: int) -> int:
    if not LAMBDA_MIN_MEMORY_MB <= memory_mb <= LAMBDA_MAX_MEMORY_MB:
        raise InputError(
            f"memory {memory_mb} MB is outside Lambda's range",
            f"use {LAMBDA_MIN_MEMORY_MB} to {LAMBDA_MAX_MEMORY_MB} MB",
        )
    return int(memory_mb)


def parse_memory_list(text: str | None, default: tuple[int, ...]) -> list[int]:
    """``"512,1024,1769"`` -> sorted, checked settings (``--memory``)."""
    if not text:
        return list(default)
    values = []
    for raw in str(text).split(","):
        part = raw.strip().lower().removesuffix("mb").strip()
        if not part:
            continue
        try:
            values.append(check_memory(int(part)))
        except ValueError:
            raise InputError(f"--memory {text!r} is not a list of MB values", "e.g. --memory 512,1024,1769") from None
    if not values:
        raise InputError("--memory names no setting", "e.g. --memory 512,1024,1769")
    return sorted(set(values))


def vcpu_share(memory_mb: int) -> float:
    return memory_mb / MB_PER_VCPU


def lambda_duration_ms(local_ms: float, memory_mb: int, speedup: float | None = None) -> float:
    """The duration work measured here at ``local_ms`` on one thread would take at ``memory_mb``.

    Below one vCPU Lambda throttles the function to its share, so the time stretches. Above it the
    handler runs one runtime-library thread per vCPU; one thread gets no faster, and what a second
    thread buys is ``speedup`` (one-thread time over two-thread time, measured here at 2 threads):
    at most the CPU share there is, and never extrapolated past 2 threads. Without a measured
    ``speedup`` the time stays the one-thread time.
    """
    share = vcpu_share(memory_mb)
    if share <= 1.0 or not speedup or speedup <= 1.0:
        return local_ms / min(1.0, share)
    return local_ms / min(share, speedup)


def cost_per_million(local_ms: float, memory_mb: int, arch: str = "x86_64", speedup: float | None = None) -> float:
    """US dollars per million warm requests (requests + GB-seconds, 1 ms billing granularity)."""
    price = price_for(arch)
    billed_ms = math.ceil(lambda_duration_ms(local_ms, memory_mb, speedup))
    gb_seconds = billed_ms / 1000.0 * memory_mb / 1024.0
    return 1e6 * gb_seconds * price.gb_second + price.per_million_requests


# -- memory advice --------------------------------------------------------------------------------


def recommend_memory_mb(peak_rss_mb: float) -> int:
    """The floor for not being killed, for a measured peak RSS (see ``_HEADROOM``)."""
    wanted = peak_rss_mb * _HEADROOM + _HEADROOM_MB
    stepped = math.ceil(wanted / _STEP_MB) * _STEP_MB
    return int(min(LAMBDA_MAX_MEMORY_MB, max(LAMBDA_MIN_MEMORY_MB, stepped)))


def pixel_budget_floor(peak_rss_mb: float, env: dict[str, str] | None = None) -> int:
    """The smallest memory setting that holds the measured peak plus the largest image the
    handler's pixel budget admits at that setting.

    The handler refuses images over its budget before decoding (413); the budget is a share of
    the memory setting unless ``LAMB_MAX_IMAGE_PIXELS`` fixes it, so a setting sized on a small test
    image alone would be killed by the largest image it still accepts.
    """
    from lamb.handler.lambkit.decode import IMAGE_BYTES_PER_PIXEL, pixel_budget

    memory = recommend_memory_mb(peak_rss_mb)
    while True:  # converges: the image's share grows more slowly than the memory setting
        image_mb = pixel_budget(memory, explicit_pixels(env)) * IMAGE_BYTES_PER_PIXEL / (1024 * 1024)
        wanted = recommend_memory_mb(peak_rss_mb + image_mb)
        if wanted <= memory:
            return memory
        memory = wanted


def explicit_pixels(env: dict[str, str] | None) -> int:
    """``LAMB_MAX_IMAGE_PIXELS`` from a function's environment; 0 (unset) lets the budget follow memory."""
    value = (env or {}).get("LAMB_MAX_IMAGE_PIXELS", "").strip()
    return int(value) if value.isdigit() else 0


@dataclass
class MemoryPoint:
    """One memory setting: projected latency and cost."""

    memory_mb: int
    duration_ms: float
    cost_per_million: float
    below_floor: bool = False  # under a floor: the function would be killed (or miss another floor)


@dataclass
class MemoryAdvice:
    """The memory setting to use, why, and the figures it rests on."""

    recommended_mb: int
    reason: str  # one sentence
    floors: dict[str, int] = field(default_factory=dict)  # what sets a lower bound: {"peak RSS": 256, ...}
    local_ms: float | None = None  # the one-thread duration measured here
    duration_ms: float | None = None  # projected at the recommended setting
    cost_per_million: float | None = None  # projected at the recommended setting
    max_latency_ms: float | None = None
    latency_met: bool | None = None  # None: no latency asked for
    arch: str = "x86_64"

    @property
    def floor_mb(self) -> int:
        return max(self.floors.values(), default=LAMBDA_MIN_MEMORY_MB)


def memory_points(
    local_ms: float, settings: list[int], arch: str = "x86_64", floor_mb: int = 0, speedup: float | None = None,
) -> list[MemoryPoint]:
    return [
        MemoryPoint(m, lambda_duration_ms(local_ms, m, speedup), cost_per_million(local_ms, m, arch, speedup), m < floor_mb)
        for m in settings
    ]


def advise_memory(
    local_ms: float | None,
    *,
    peak_rss_mb: float | None = None,
    floors: dict[str, int] | None = None,
    max_latency_ms: float | None = None,
    arch: str = "x86_64",
    speedup: float | None = None,
) -> MemoryAdvice:
    """The setting to use, from a request's one-thread duration measured here and the floors.

    ``speedup``: one-thread over two-thread time, measured here (``lambda_duration_ms``); with it a
    latency target can be met above one vCPU, where a second thread runs.

    Without a latency target: where cost stops being flat, one full vCPU (below it the same
    GB-seconds buy proportionally less latency; above it cost grows and one thread gets no
    faster), or the floor when that is higher; when the function needs far less, the reason says
    what the smallest setting would take and cost. With ``max_latency_ms``: the cheapest setting whose projected duration meets
    it (the smallest among those within ``FLAT`` of the cheapest). Never below a floor: the
    peak-RSS rule, plus any ``floors`` the caller adds (name -> MB).
    """
    all_floors = dict(floors or {})
    if peak_rss_mb:
        all_floors["peak RSS"] = recommend_memory_mb(peak_rss_mb)
    floor = min(LAMBDA_MAX_MEMORY_MB, max(all_floors.values(), default=LAMBDA_MIN_MEMORY_MB))
    floor_why = max(all_floors, key=all_floors.get) if all_floors else None  # type: ignore[arg-type]
    if max_latency_ms is not None and max_latency_ms <= 0:
        raise InputError(f"--max-latency-ms {max_latency_ms:g} must be positive", "e.g. --max-latency-ms 300")
    if local_ms is None or local_ms <= 0:
        reason = f"the floor from {floor_why}" if floor_why else "Lambda's minimum"
        return MemoryAdvice(floor, f"{floor} MB: {reason}; no timing to weigh cost and latency", all_floors,
                            max_latency_ms=max_latency_ms, arch=arch)

    settings = range(floor, LAMBDA_MAX_MEMORY_MB + 1)
    costs = {m: cost_per_million(local_ms, m, arch, speedup) for m in settings}
    met: bool | None = None
    if max_latency_ms is not None:
        meeting = [m for m in settings if lambda_duration_ms(local_ms, m, speedup) <= max_latency_ms]
        if meeting:
            cheapest = min(costs[m] for m in meeting)
            recommended = min(m for m in meeting if costs[m] <= cheapest * (1 + FLAT))
            met = True
            reason = (
                f"{recommended:,} MB is the cheapest setting whose projected request time "
                f"({lambda_duration_ms(local_ms, recommended, speedup):,.0f} ms) meets {max_latency_ms:,.0f} ms"
                + (_two_threads(speedup) if recommended > MB_PER_VCPU else "")
            )
        else:
            met = False
    if met is not True:
        # Without a latency target: one vCPU (or the floor, when that is higher). Below one vCPU
        # the GB-seconds of CPU-bound work are the same at every setting, so cost is flat and only
        # speed changes; above it cost grows and one thread gets no faster. Judged on the
        # unrounded cost: the 1 ms billing granularity moves the "flat" edge with every few
        # hundred microseconds of timing noise, and the advice must not differ between two runs
        # of the same function (invoke, the smoke run that deploy and the image README read).
        recommended = max(floor, MB_PER_VCPU)
        if recommended == floor and floor > MB_PER_VCPU:
            reason = f"{recommended:,} MB, the floor set by {floor_why}"
        else:
            reason = _one_vcpu_reason(local_ms, floor, floor_why, peak_rss_mb, arch)
        if met is False:
            fastest = min(lambda_duration_ms(local_ms, m, speedup) for m in settings)
            how = (f"even with 2 threads ({speedup:.2f}x measured here at 2 threads) it takes {fastest:,.0f} ms"
                   if speedup and speedup > 1.0 else f"one thread takes {local_ms:,.0f} ms even with a full vCPU")
            reason = f"no setting meets {max_latency_ms:,.0f} ms: {how}; " + reason
    return MemoryAdvice(
        recommended_mb=recommended,
        reason=reason,
        floors=all_floors,
        local_ms=local_ms,
        duration_ms=lambda_duration_ms(local_ms, recommended, speedup),
        cost_per_million=cost_per_million(local_ms, recommended, arch, speedup),
        max_latency_ms=max_latency_ms,
        latency_met=met,
        arch=arch,
    )


def _one_vcpu_reason(local_ms: float, floor: int, floor_why: str | None, peak_rss_mb: float | None, arch: str) -> str:
    """Why one vCPU, and what the function itself needs: when that is far less, say that the rest
    of the setting buys only CPU (speed), and what the smallest setting would cost and take."""
    reason = (f"{MB_PER_VCPU:,} MB is one full vCPU, where cost stops being flat: below it the same cost buys a slower request "
              f"({lambda_duration_ms(local_ms, floor):,.0f} ms at {floor:,} MB); above it cost grows and one thread gets no faster")
    if floor * 2 > MB_PER_VCPU:
        return reason
    needs = f"peak {peak_rss_mb:,.0f} MB measured" if peak_rss_mb else f"the floor set by {floor_why}" if floor_why else "Lambda's minimum"
    small, full = f"${cost_per_million(local_ms, floor, arch):,.2f}", f"${cost_per_million(local_ms, MB_PER_VCPU, arch):,.2f}"
    # Below one vCPU the price per request is flat: the two often print alike, and "$0.92 instead of $0.92" reads as a slip.
    cost = f"for the same {full}" if small == full else f"for {small} instead of {full}"
    return (f"{MB_PER_VCPU:,} MB is one full vCPU, where cost stops being flat, and only the vCPU share buys speed: "
            f"the function needs just {floor:,} MB ({needs}); "
            f"at {floor:,} MB a request would take about {_ms(lambda_duration_ms(local_ms, floor))} instead of "
            f"{_ms(lambda_duration_ms(local_ms, MB_PER_VCPU))}, {cost} per million requests; "
            "set that if latency does not matter")


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms"


def _two_threads(speedup: float | None) -> str:
    return f", with the handler's second thread {speedup:.2f}x as fast as one (measured here at 2 threads)" if speedup else ""


def memory_advice(advice: MemoryAdvice | int) -> str:
    """One sentence for the user: the setting, why, and what it means for latency and cost."""
    if isinstance(advice, int):  # a bare setting: what its CPU share means
        vcpu = vcpu_share(advice)
        if advice >= MB_PER_VCPU:
            return f"{advice} MB gives {min(vcpu, MAX_VCPUS):.1f} vCPU on Lambda"
        return (
            f"at {advice} MB Lambda gives {vcpu:.2f} of a vCPU, so inference runs about {1 / vcpu:.1f}x slower "
            f"than measured here; {MB_PER_VCPU} MB buys one full vCPU"
        )
    text = advice.reason
    if advice.duration_ms is not None and advice.cost_per_million is not None:
        text += (
            f"; about {advice.duration_ms:,.0f} ms a request and ${advice.cost_per_million:,.2f} per million requests "
            f"on {advice.arch} (an estimate from local timing)"
        )
    return text


# -- the function's settings: memory and timeout, advised once ---------------------------------------

# Timeout: 1 to 900 seconds ("Function timeout: 900 seconds (15 minutes)"),
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
LAMBDA_TIMEOUT_RANGE_S = (1, 900)
# The shipped handler fetches {"url": ...} images with a connect + read cap of 3 + 10 s by default
# (LAMB_CONNECT_TIMEOUT, LAMB_READ_TIMEOUT in lamb/handler/lambda_function.py).
URL_FETCH_ALLOWANCE_S = 13
# The first request after a cold start runs init + inference at the CPU share the memory buys;
# twice that covers larger inputs and a noisy neighbour.
TIMEOUT_HEADROOM = 2.0
# The timeout is rounded up to whole steps of this many seconds, so two measurements of the same
# function (lamb invoke, and the smoke run deploy and the image README read) advise the same one:
# with 13 s for the url fetch, cold starts from 0 to 3.5 s all advise 20 s (in 5 s steps the
# boundary fell at 1 s, where a small model's cold start lies). A generous timeout costs nothing:
# Lambda bills the time used.
TIMEOUT_STEP_S = 10


def recommend_timeout_s(init_ms: float, invoke_ms: float, memory_mb: int) -> int:
    """A timeout for the first request after a cold start, at the CPU share ``memory_mb`` buys.

    Below one vCPU everything measured here runs proportionally slower (``lambda_duration_ms``).
    Twice that, plus the handler's own cap on fetching a ``{"url": ...}`` image, rounded up to
    ``TIMEOUT_STEP_S``. (Lambda's default of 3 s is what timed the course's function out.)
    """
    seconds = lambda_duration_ms(init_ms + invoke_ms, memory_mb) / 1000 * TIMEOUT_HEADROOM + URL_FETCH_ALLOWANCE_S
    low, high = LAMBDA_TIMEOUT_RANGE_S
    return int(min(high, max(low, math.ceil(seconds / TIMEOUT_STEP_S) * TIMEOUT_STEP_S)))


@dataclass
class FunctionAdvice:
    """The memory and timeout to give the function, and why: the one advice that invoke, deploy
    and the image context's README all state."""

    memory: MemoryAdvice
    timeout_s: int | None  # None: no cold start measured
    timeout_reason: str

    @property
    def memory_mb(self) -> int:
        return self.memory.recommended_mb


def advise_function(
    local_ms: float | None,
    *,
    init_ms: float | None,
    peak_rss_mb: float | None,
    arch: str = "x86_64",
    env: dict[str, str] | None = None,
    max_latency_ms: float | None = None,
    memory_mb: int | None = None,
    first_invoke_ms: float | None = None,
) -> FunctionAdvice:
    """Memory (``advise_memory`` with the peak-RSS and pixel-budget floors) and the timeout a cold
    first request needs at that memory. ``memory_mb`` fixes the memory (a user's ``--memory``);
    ``first_invoke_ms`` is the cold first request's time when ``local_ms`` is a warm median."""
    floors = {"the pixel budget": pixel_budget_floor(peak_rss_mb, env)} if peak_rss_mb else {}
    memory = advise_memory(local_ms, peak_rss_mb=peak_rss_mb, floors=floors, max_latency_ms=max_latency_ms, arch=arch)
    setting = memory_mb if memory_mb is not None else memory.recommended_mb
    first = first_invoke_ms if first_invoke_ms is not None else local_ms
    if init_ms is None or first is None:
        return FunctionAdvice(memory, None, "no cold start measured")
    timeout = recommend_timeout_s(init_ms, first, setting)
    reason = (f"the measured cold start of {init_ms:,.0f} + {first:,.0f} ms at {setting:,} MB's CPU share, "
              f"x{TIMEOUT_HEADROOM:g}, + {URL_FETCH_ALLOWANCE_S} s for fetching a url, rounded up to {TIMEOUT_STEP_S} s")
    return FunctionAdvice(memory, timeout, reason)
