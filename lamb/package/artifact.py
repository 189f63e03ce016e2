"""Write the artifact: a deterministic zip, or a container image build context.

Deterministic means the same files give the same bytes: entries sorted by name, one fixed
timestamp, fixed permissions, fixed compression. Then a sha256 in a release note or a CI log
identifies the build, and an unchanged model re-uploads nothing.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lamb import files, layout
from lamb.cost import FunctionAdvice
from lamb.manifest import atomic_output

# Zip's epoch: the earliest timestamp the format can store (DOS time starts in 1980).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Lambda runs the function as a user that is neither the file's owner nor in its group, so every
# file must be world-readable; libraries and executables keep an executable bit (the dynamic
# loader does not need it for .so, but bundled tools and the RIE's checks do, and it is harmless).
FILE_MODE = 0o644
EXEC_MODE = 0o755
COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESS_LEVEL = 6  # level 9 costs ~2x the time for <1% on model weights


def entry_overhead(arcname: str) -> int:
    """Bytes a zip entry takes beyond its deflated data: its local header and its central
    directory record, each with its name (no extra fields: ``write_zip_to`` writes none)."""
    name = len(arcname.encode())
    return 30 + name + 46 + name


@dataclass(frozen=True)
class Entry:
    """One file of the artifact: its path inside the artifact and where its bytes come from."""

    arcname: str  # posix path inside the artifact
    source: Path


def collect(root: Path, prefix: str = "") -> list[Entry]:
    """Every regular file under ``root`` as an Entry (symlinks resolved to their content)."""
    root = Path(root)
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_file():  # a dangling link
                continue
            rel = path.relative_to(root).as_posix()
            entries.append(Entry(prefix + rel, path))
    return entries


def mode_for(entry: Entry) -> int:
    name = entry.arcname.rsplit("/", 1)[-1]
    is_lib = name.endswith(".so") or ".so." in name
    executable = bool(entry.source.stat().st_mode & stat.S_IXUSR)
    return EXEC_MODE if (is_lib or executable) else FILE_MODE


def write_zip(entries: list[Entry], output: Path) -> Path:
    """Write ``entries`` as a deterministic zip at ``output`` (atomically: temp file + rename)."""
    output = Path(output)
    tmp = atomic_output(output)
    try:
        write_zip_to(entries, tmp)
        files.publish(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return output


def write_zip_to(entries: list[Entry], path: Path, on_entry: Callable[[], None] | None = None) -> None:
    """Write the zip to ``path`` directly (the caller owns atomicity); ``on_entry`` after each file."""
    names = [e.arcname for e in entries]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate artifact entries: {', '.join(dupes[:5])}")
    with zipfile.ZipFile(path, "w", compression=COMPRESSION, compresslevel=COMPRESS_LEVEL) as zf:
        for entry in sorted(entries, key=lambda e: e.arcname):
            info = zipfile.ZipInfo(entry.arcname, date_time=ZIP_EPOCH)
            info.compress_type = COMPRESSION
            info.create_system = 3  # Unix, so external_attr carries the permission bits
            info.external_attr = (stat.S_IFREG | mode_for(entry)) << 16
            with open(entry.source, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            if on_entry is not None:
                on_entry()


def replace_dir(staging: Path, output: Path) -> None:
    """Move the finished folder ``staging`` to ``output``, replacing what was there.

    Directories cannot be swapped in one rename, so the old one is first renamed aside (same
    folder, same filesystem): at every moment ``output`` is either the whole old or the whole new
    context, and the old one is deleted only after the new one is in place.
    """
    output = Path(output)
    aside = None
    if output.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{output.name}.old.", dir=output.parent))
        os.rmdir(aside)
        os.replace(output, aside)
    try:
        os.replace(staging, output)
    except BaseException:
        if aside is not None:
            os.replace(aside, output)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True) if aside.is_dir() else aside.unlink()


def copy_entry(source: Path, dest: Path) -> None:
    """One of lamb's root entries (a file, or the handler's package folder) to ``dest``."""
    if Path(source).is_dir():
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    else:
        shutil.copyfile(source, dest)


# -- container image context ------------------------------------------------------------------------

# The sample request: the Dockerfile's smoke step runs the function on it at build time (bound
# in for that one step, never copied into the image), and the image README's commands send it.
SAMPLE_EVENT = "sample-event.json"


def dockerignore(root_files: tuple[str, ...]) -> str:
    """The .dockerignore: only what the Dockerfile uses goes to the Docker daemon."""
    return "# Only what the Dockerfile uses goes to the Docker daemon.\n*\n" + "".join(
        f"!{name}\n" for name in (*root_files, "requirements.txt", SAMPLE_EVENT)
    )


# The build-time smoke step: import the handler and answer the sample event once, with the base
# image's own Python, glibc and libstdc++. An extension the image's loader cannot load (e.g.
# "GLIBCXX_3.4.30 not found") fails `docker build` here, with the loader's own message, instead
# of the function's first cold start. Only the handler's entry point is named, not its internals.
_SMOKE = (
    "import json, sys; from {module} import {function} as handle; "
    "answer = handle(json.load(open(sys.argv[1])), None); print(json.dumps(answer)[:400]); "
    "sys.exit(isinstance(answer, dict) and 'error' in answer)"
)


def dockerfile(target, requirements: list[str], lamb_version: str, root_files: tuple[str, ...], base_image: str | None = None) -> str:
    """The Dockerfile for ``target`` (a ``Target``): AWS's Lambda base image (or ``base_image``,
    one built on it, as the course's homework extends a given image), pinned wheels, lamb's
    ``root_files`` (``layout.root_files``), and a smoke step that runs the model once while the
    image is built."""
    module, _, function = layout.HANDLER.rpartition(".")
    smoke = _SMOKE.format(module=module, function=function)
    given = (f"# Built on a given image (--base-image): it must be a Lambda Python {target.python_version} image on {target.arch},\n"
             f"# built on {target.base_image}; the smoke step below fails the build when it is not.\n") if base_image else ""
    return f"""\
# Built by lamb {lamb_version} for AWS Lambda {target.describe()}.
# --platform on FROM, not only on `docker build`: Lambda runs the image on this arch whatever the
# build machine is (an arm64 laptop building for x86_64 Lambda is the classic "exec format error").
{given}# hadolint ignore=DL3029
FROM --platform={target.docker_platform} {base_image or target.base_image}

# Wheels only, for this image's Python and arch; the versions are pinned by lamb package,
# which resolved and audited them.
COPY requirements.txt ${{LAMBDA_TASK_ROOT}}/
RUN pip install --no-cache-dir --only-binary=:all: --no-deps \\
        --target "${{LAMBDA_TASK_ROOT}}" -r "${{LAMBDA_TASK_ROOT}}/requirements.txt"

COPY {" ".join(n for n in root_files if n != layout.HANDLER_PACKAGE)} ${{LAMBDA_TASK_ROOT}}/
COPY {layout.HANDLER_PACKAGE} ${{LAMBDA_TASK_ROOT}}/{layout.HANDLER_PACKAGE}/

# Smoke run on this base image's own libraries: import the handler and answer {SAMPLE_EVENT}
# once. If the function could not load or run here, the build fails with the loader's message.
RUN --mount=type=bind,source={SAMPLE_EVENT},target=/tmp/{SAMPLE_EVENT} \\
    python3 -c "{smoke}" /tmp/{SAMPLE_EVENT}

CMD ["{layout.HANDLER}"]
"""


def image_readme(target, name: str, advice: FunctionAdvice | None = None, base_image: str | None = None) -> str:
    """Build, run, push and create-function commands that paste and run as they are.

    ``name`` (from the model's) names the image, the ECR repository, the function and its role.
    ``--provenance=false``: BuildKit otherwise pushes an OCI image index with an attestation,
    whose media type Lambda rejects ("image manifest media type not supported"). Memory and
    timeout are ``advice`` (``lamb.cost.advise_function`` on the smoke run's figures, the advice
    ``lamb invoke`` gives and ``lamb deploy`` applies); without a smoke run the shell asks for them.
    """
    if advice is not None and advice.timeout_s is not None:
        settings = (f"MEMORY={advice.memory_mb} TIMEOUT={advice.timeout_s}  "
                    f"# lamb's advice from the smoke run: {advice.memory_mb:,} MB, {advice.timeout_s} s (as lamb invoke and lamb deploy)")
    else:
        settings = ('MEMORY=${MEMORY:?no smoke run measured this build: set MEMORY (MB), e.g. from lamb invoke} '
                    'TIMEOUT=${TIMEOUT:?set TIMEOUT (s), e.g. from lamb invoke}')
    arch = target.arch
    platform = target.docker_platform
    trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
    return f"""\
# {name}: a Lambda container image context built by lamb

Target: {target.describe()}. Base image: `{base_image or target.base_image}`.

`docker build` proves the image: its last step imports the handler and answers `{SAMPLE_EVENT}`
once on the base image's own Python, glibc and libstdc++, so a library that cannot load on
Lambda (`GLIBCXX_3.4.30 not found`) fails the build with the loader's message, not the
function's first cold start. It needs BuildKit (the default builder since Docker 23).

Every block below runs as it is, from this folder, in one shell (bash or zsh).
`{SAMPLE_EVENT}` holds an image the function answered in lamb's smoke run. The container answers on port
8080, as in the course and as `lamb serve` does, so the course's `test.py` works against either.

## Build and try it locally

```sh
docker build --platform {platform} --provenance=false -t {name}:latest .
docker run --rm -d --name {name} --platform {platform} -p 8080:8080 {name}:latest
sleep 3
curl -s -XPOST http://localhost:8080/2015-03-31/functions/function/invocations -d @{SAMPLE_EVENT}
docker stop {name}
```

## Push to ECR and create the function

```sh
AWS_REGION=${{AWS_REGION:-us-east-1}}
ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
REGISTRY=$ACCOUNT.dkr.ecr.$AWS_REGION.amazonaws.com
{settings}
aws ecr create-repository --repository-name {name} --region $AWS_REGION
aws ecr get-login-password --region $AWS_REGION | docker login --username AWS --password-stdin $REGISTRY
docker tag {name}:latest $REGISTRY/{name}:latest
docker push $REGISTRY/{name}:latest
aws iam create-role --role-name {name}-role --assume-role-policy-document '{trust}'
aws iam attach-role-policy --role-name {name}-role --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
sleep 10  # IAM: a new role takes a few seconds before Lambda may assume it
aws lambda create-function --function-name {name} --region $AWS_REGION \\
    --package-type Image --code ImageUri=$REGISTRY/{name}:latest --architectures {arch} \\
    --memory-size $MEMORY --timeout $TIMEOUT --role arn:aws:iam::$ACCOUNT:role/{name}-role
aws lambda wait function-active-v2 --function-name {name} --region $AWS_REGION
aws lambda invoke --function-name {name} --region $AWS_REGION --cli-binary-format raw-in-base64-out \\
    --payload fileb://{SAMPLE_EVENT} response.json && cat response.json
```

## Update it

```sh
AWS_REGION=${{AWS_REGION:-us-east-1}}
REGISTRY=$(aws sts get-caller-identity --query Account --output text).dkr.ecr.$AWS_REGION.amazonaws.com
docker build --platform {platform} --provenance=false -t {name}:latest .
docker tag {name}:latest $REGISTRY/{name}:latest
docker push $REGISTRY/{name}:latest
aws lambda update-function-code --function-name {name} --region $AWS_REGION --image-uri $REGISTRY/{name}:latest
```
"""
