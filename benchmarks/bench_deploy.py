"""Benchmark: `lamb deploy` of the Xception artifacts against a local moto server, beside a naive redeploy.

The issue's "done when", measured: a float32 Xception zip (~97 MB) goes through S3, a
dynamic-range one (~45 MB) goes directly, a second deploy of the same zip publishes nothing new
and uploads nothing, and the function's runtime, arch, handler and CodeSha256 match the artifact.

Baseline: what Chalice and Zappa do on every deploy: send the whole zip again (directly, or to
S3) and update the code. Against real Lambda, the naive direct upload of the
97 MB zip is refused (its request is over 69,905,067 bytes); moto accepts it, so the table says so.

    .venv/bin/python benchmarks/bench_deploy.py            # real artifacts: lamb convert + lamb package (minutes, cached)
    .venv/bin/python benchmarks/bench_deploy.py --synthetic 97,45   # zips of incompressible bytes of those MB (seconds)

AWS is moto's server on 127.0.0.1 (no account, no network); times are moto's, not AWS's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MB = 2**20
REGION = "eu-west-1"


def real_artifacts(work: Path, runtime: str) -> dict[str, Path]:
    """The float32 and dynamic-range Xception zips, built by lamb package (conversions cached)."""
    from bench_package import converted
    from xception_model import ensure_xception_h5

    from lamb.package import build_package

    h5 = ensure_xception_h5()
    zips = {}
    for quantize in ("float32", "dynamic"):
        manifest = converted(h5, quantize)
        # the artifact beside its manifest, as `lamb package` writes it: deploy reads the measured figures there
        output = manifest.parent / f"xception_{quantize}-{runtime}-x86_64.zip"
        if not output.is_file():
            build_package(manifest, runtime=runtime, arch="x86_64", output=output, skip_verify=True)
        zips[quantize] = output
    return zips


def synthetic_artifacts(work: Path, sizes_mb: list[float], runtime: str) -> dict[str, Path]:
    """Zips shaped like lamb package's (handler, lamb.json with its package record, a model of
    incompressible bytes) with the manifest beside them: the tests' own builder."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import make_deploy_artifact

    zips = {}
    for i, size in enumerate(sizes_mb):
        name = f"synthetic_{size:g}mb"
        zips[name] = make_deploy_artifact(work / name, model_bytes=int(size * MB) - 4096, runtime=runtime, seed=i, name=name)
    return zips


def start_moto() -> tuple[object, str]:
    import logging

    import requests
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # AWSLambdaBasicExecutionRole exists, as in a real account
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    requests.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}).raise_for_status()
    return server, url


def queue_scores(url: str, n: int) -> None:
    import requests

    answers = {"results": [json.dumps({"cat": 0.9, "dog": 0.1})] * n, "region": REGION}
    requests.post(f"{url}/moto-api/static/lambda-simple/response", json=answers).raise_for_status()


def naive_redeploy(url: str, function: str, zip_path: Path, via_s3: bool) -> tuple[int, float]:
    """What Chalice/Zappa do again on every deploy: (bytes sent, seconds)."""
    import boto3

    lam = boto3.client("lambda", region_name=REGION, endpoint_url=url)
    start = time.perf_counter()
    data = zip_path.read_bytes()
    if via_s3:
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=url)
        bucket = "naive-deploys"
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=bucket, Key=f"{function}.zip", Body=data)
        lam.update_function_code(FunctionName=function, S3Bucket=bucket, S3Key=f"{function}.zip")
    else:
        lam.update_function_code(FunctionName=function, ZipFile=data)
    lam.get_waiter("function_updated_v2").wait(FunctionName=function)
    return len(data), time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", metavar="MB,MB", help="deploy zips of incompressible bytes of these sizes instead of the real artifacts")
    parser.add_argument("--runtime", default="python3.12")
    parser.add_argument("--reps", type=int, default=3, help="second deploys to time (median)")
    args = parser.parse_args()
    print(describe_machine(), flush=True)  # the CPU and load every figure below was measured on

    for key in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[key]  # never a real account: fake credentials, moto's endpoint
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION,
                      AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)

    from lamb.deploy import DeployOptions, deploy_artifact
    from lamb.deploy.artifact import read_facts
    from lamb.deploy.plan import DIRECT_UPLOAD_REQUEST_BYTES, base64_size

    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    server, url = start_moto()
    rows = []
    try:
        if args.synthetic:
            zips = synthetic_artifacts(work, [float(x) for x in args.synthetic.split(",")], args.runtime)
        else:
            zips = real_artifacts(work, args.runtime)
        import boto3

        lam = boto3.client("lambda", region_name=REGION, endpoint_url=url)
        for label, zip_path in zips.items():
            function = f"bench-{label}".replace("_", "-").replace(".", "-")[:64]
            options = DeployOptions(function, create_role=True, url="public", alias="live", endpoint_url=url)
            queue_scores(url, 1 + args.reps)
            start = time.perf_counter()
            first = deploy_artifact(zip_path, options)
            first_s = time.perf_counter() - start
            again, seconds = [], []
            for _ in range(args.reps):
                start = time.perf_counter()
                again.append(deploy_artifact(zip_path, options))
                seconds.append(time.perf_counter() - start)
            facts = read_facts(zip_path)
            config = lam.get_function(FunctionName=function)["Configuration"]
            match = {
                "runtime": config["Runtime"] == facts.runtime,
                "arch": config["Architectures"] == [facts.arch],
                "handler": config["Handler"] == facts.handler,
                "CodeSha256": config["CodeSha256"] == facts.code_sha256 == first.deployed_code_sha256,
            }
            naive = [naive_redeploy(url, function, zip_path, via_s3=first.upload == "s3") for _ in range(args.reps)]
            rows.append({
                "label": label, "zip": zip_path.stat().st_size, "path": first.upload, "first_sent": first.uploaded_bytes,
                "first_s": first_s, "again_sent": max(r.uploaded_bytes for r in again),
                "again_published": any(r.published for r in again), "again_version": again[-1].version,
                "first_version": first.version, "again_s": statistics.median(seconds),
                "naive_sent": naive[0][0], "naive_s": statistics.median(n[1] for n in naive),
                "match": match, "smoke": all(r.smoke and r.smoke.passed for r in [first, *again]),
                "direct_request": base64_size(zip_path.stat().st_size),
            })
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nlamb deploy benchmark: against moto's server on 127.0.0.1, {args.runtime}-x86_64, "
          f"{'synthetic zips' if args.synthetic else 'Xception artifacts from lamb package'}; median of {args.reps} second deploys")
    head = (f"{'artifact':26} {'zip MB':>7} {'path':>7} {'1st sent MB':>11} {'2nd sent MB':>11} {'naive 2nd MB':>12} "
            f"{'2nd s':>6} {'naive s':>8} {'2nd publishes':>13}  runtime arch handler CodeSha256")
    print(head)
    print("-" * len(head))
    ok = True
    for r in rows:
        matched = " ".join("yes" if r["match"][k] else "NO" for k in ("runtime", "arch", "handler", "CodeSha256"))
        publishes = "nothing" if not r["again_published"] and r["again_version"] == r["first_version"] else f"v{r['again_version']}"
        print(f"{r['label']:26} {r['zip'] / MB:7.1f} {r['path']:>7} {r['first_sent'] / MB:11.1f} {r['again_sent'] / MB:11.1f} "
              f"{r['naive_sent'] / MB:12.1f} {r['again_s']:6.2f} {r['naive_s']:8.2f} {publishes:>13}  {matched}")
        ok &= all(r["match"].values()) and r["again_sent"] == 0 and not r["again_published"] and r["smoke"]
    print()
    for r in rows:
        over = r["direct_request"] > DIRECT_UPLOAD_REQUEST_BYTES
        print(f"{r['label']}: base64 request {r['direct_request']:,} bytes {'>' if over else '<='} {DIRECT_UPLOAD_REQUEST_BYTES:,}: "
              f"lamb chose {r['path']}" + ("; a naive direct upload is refused by Lambda (moto accepts it)" if over else ""))
    big = [r for r in rows if r["zip"] > 50 * MB]
    small = [r for r in rows if r["zip"] <= 50 * MB]
    print(f"done when: >50 MB zip through S3: {'MET' if big and all(r['path'] == 's3' for r in big) else 'MISSED'}; "
          f"<=50 MB zip directly: {'MET' if small and all(r['path'] == 'direct' for r in small) else 'MISSED'}; "
          f"second deploy sends and publishes nothing: {'MET' if all(r['again_sent'] == 0 and not r['again_published'] for r in rows) else 'MISSED'}; "
          f"runtime/arch/handler/CodeSha256 match: {'MET' if all(all(r['match'].values()) for r in rows) else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
