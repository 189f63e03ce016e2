"""Sizes print in MiB, as Lambda counts its limits."""

from lamb.units import MiB, human_bytes, mb


def test_one_unit_for_every_size_lamb_prints():
    assert mb(None) == "-" and mb(250 * MiB) == "250.0" and mb(262_144_000) == "250.0"
    assert human_bytes(512) == "512 B" and human_bytes(1536) == "1.5 KB"
    assert human_bytes(int(83.2 * MiB)) == "83.2 MB" and human_bytes(3 * 1024 * MiB) == "3.0 GB"
