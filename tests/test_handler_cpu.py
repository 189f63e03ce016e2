"""lambkit.cpu: the CPU beside every figure, read from /proc/cpuinfo texts as Linux writes them."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from lamb.handler.lambkit.cpu import Cpu, isa_features, parse, read_cpuinfo, this_cpu

# The first processor of an AMD EPYC (Zen 4) as this project's build machine reports it, flags shortened.
EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni
bogomips\t: 5200.00

processor\t: 1
model name\t: some other core
flags\t\t: fpu
"""
# An AVX2 machine without VNNI (Zen 2), the one issue 25 measured int8 no faster on.
ZEN2 = "processor\t: 0\nmodel name\t: AMD EPYC 7R32\nflags\t\t: fpu sse sse2 avx fma avx2 bmi2\n"
# Graviton2 (Neoverse N1) and Graviton3 (Neoverse V1): arm64 names its part, not a model.
GRAVITON2 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""
GRAVITON3 = GRAVITON2.replace("0xd0c", "0xd40").replace("asimddp ssbs", "asimddp sha512 sve asimdfhm svei8mm svebf16 i8mm bf16")


def test_x86_model_and_the_features_that_decide_int8():
    cpu = parse(EPYC, "x86_64")
    assert cpu == Cpu("AMD EPYC 9R14", "x86_64", ("AVX2", "AVX-512F", "AVX-512 VNNI"))
    assert cpu.int8_dot and cpu.isa == "x86_64+avx2+avx512f+avx512_vnni"
    assert cpu.describe() == "AMD EPYC 9R14 (x86_64: AVX2, AVX-512F, AVX-512 VNNI)"
    zen2 = parse(ZEN2, "x86_64")
    assert zen2.features == ("AVX2",) and not zen2.int8_dot and zen2.isa == "x86_64+avx2"
    assert isa_features(cpu.isa) - isa_features(zen2.isa) == {"avx512f", "avx512_vnni"}


def test_arm64_names_its_graviton_from_the_part_number():
    g2, g3 = parse(GRAVITON2, "aarch64"), parse(GRAVITON3, "aarch64")
    assert g2 == Cpu("Neoverse-N1 (Graviton2)", "arm64", ("ASIMD dot-product",)) and g2.int8_dot
    assert g3.features == ("ASIMD dot-product", "SVE", "i8mm") and g3.model == "Neoverse-V1 (Graviton3)"
    other = parse(GRAVITON2.replace("0xd0c", "0xd03"), "aarch64")
    assert other.model == "arm part 0x41/0xd03"


def test_nothing_known_reads_as_unknown_with_no_features():
    cpu = parse("", "x86_64")
    assert cpu == Cpu("unknown", "x86_64", ())
    assert not cpu.int8_dot and cpu.describe().startswith("unknown (x86_64: none of AVX2, AVX-512F")


def test_the_dict_round_trips():
    cpu = parse(GRAVITON3, "aarch64")
    assert Cpu.from_dict(cpu.as_dict()) == cpu and cpu.as_dict()["isa"] == "arm64+asimddp+sve+i8mm"


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="Linux only")
def test_this_machine_reads_its_own_cpuinfo():
    text = read_cpuinfo()
    assert "\n\n" not in text and text.startswith("processor")
    assert this_cpu() == parse(text, platform.machine()) and this_cpu().model != "unknown"
