"""``lamb probe``: measure a Lambda target's loader (glibc, libstdc++, libgcc_s, system libraries).

- ``function``: the probe function itself, shipped alone (standard library only);
- ``report``: ``ProbeReport``, what a probe measured; ``render`` draws it for the CLI;
- ``run``: the probe as a plan of AWS calls made by deploy's executor, the local run, and the
  store of what was measured (through ``lamb.measured``).
"""

from lamb.probe.report import ProbeReport
from lamb.probe.run import ProbeOptions, probe_aws, probe_local

__all__ = ["ProbeOptions", "ProbeReport", "probe_aws", "probe_local"]
