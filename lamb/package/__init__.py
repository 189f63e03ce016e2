"""Build Lambda artifacts: targets, wheels, slimming, zip and image context, size budget.

``build_package`` ties the steps together; each step is its own module.
"""

from lamb.package.build import SmokeResult, build_package
from lamb.package.report import PackageReport

__all__ = ["PackageReport", "SmokeResult", "build_package"]
