"""One exception family for everything lamb refuses to do.

Every error carries a one-sentence message (what is wrong) and a hint (what to do). The CLI
catches ``LambError`` once, prints ``error: <message>`` and ``hint: <hint>``, and exits with the
subclass's ``exit_code`` so scripts can tell the kinds apart. Anything that is not a ``LambError``
is a bug and is allowed to surface as a traceback.
"""

from __future__ import annotations


class LambError(Exception):
    """Base class: a failure lamb can explain in a sentence."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, always
        return self.message


class VerificationFailed(LambError):
    """The converted model does not compute what the source model computes (within tolerance)."""

    exit_code = 1


class InputError(LambError):
    """A path, file, folder or option value that cannot be used as given."""

    exit_code = 3


class ManifestError(InputError):
    """No manifest where one is needed, or one that cannot be read."""

    exit_code = 3


class ManifestTooLarge(ManifestError):
    """A manifest (or an artifact's ``lamb.json``) larger or nested deeper than lamb reads: refused
    even where a missing or foreign one is not."""

    exit_code = 3


class ModelLoadError(LambError):
    """A model file that exists but cannot be loaded as a whole model."""

    exit_code = 4


class ConversionError(LambError):
    """The converter refused the model (unsupported ops, unknown shapes, ...)."""

    exit_code = 5


class RuntimeLibError(LambError):
    """The runtime library (lamb.runtime_lib) cannot load or run the model."""

    exit_code = 6


class DependencyError(LambError):
    """Wheels for the target could not be resolved or installed."""

    exit_code = 7

    def __init__(self, message: str, hint: str | None = None, *, package: str | None = None):
        super().__init__(message, hint)
        #: The distribution (PEP 503 name) that has no fitting wheel, when pip named one: a
        #: stand-in install unpins it and retries.
        self.package = package


class BudgetExceeded(LambError):
    """The artifact breaks a Lambda hard limit or the user's --max-size budget."""

    exit_code = 8


class ArtifactError(LambError):
    """The built artifact does not run (smoke run / invoke failed) or cannot be read."""

    exit_code = 9


class AwsError(LambError):
    """AWS refused a call or could not be reached (credentials, permissions, throttling, a waiter
    ending in Failed), or the deployed function is not the artifact that was built."""

    exit_code = 10


#: exit code -> what it means; rendered in ``lamb --help`` and the docs (docs/reference.md).
EXIT_CODES = {
    0: "success",
    1: "verification failed",
    2: "usage error (bad option or argument)",
    3: "bad input: missing or unreadable file, folder, option value or manifest",
    4: "the model file could not be loaded",
    5: "the converter refused the model",
    6: "the runtime library cannot run the model",
    7: "wheels for the target could not be resolved",
    8: "the artifact exceeds a Lambda limit or your budget",
    9: "the artifact failed to run",
    10: "AWS refused or could not be reached (credentials, permissions, throttling, a failed update)",
}
