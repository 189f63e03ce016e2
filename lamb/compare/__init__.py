"""``lamb compare``: which runtime library and quantization to ship, by measured error, size, latency and Lambda cost."""

from lamb.compare.core import DEFAULT_MEMORY_MB, DEFAULT_MODES, compare_models, parse_modes, runtime_libs
from lamb.compare.report import CompareReport, ModeResult, recommend

__all__ = ["DEFAULT_MEMORY_MB", "DEFAULT_MODES", "CompareReport", "ModeResult", "compare_models", "parse_modes", "recommend", "runtime_libs"]
