"""``lamb compare``: which quantization to ship, by measured error, size, latency and Lambda cost."""

from lamb.compare.core import DEFAULT_MEMORY_MB, DEFAULT_MODES, compare_models, parse_modes
from lamb.compare.report import CompareReport, ModeResult, recommend

__all__ = ["DEFAULT_MEMORY_MB", "DEFAULT_MODES", "CompareReport", "ModeResult", "compare_models", "parse_modes", "recommend"]
