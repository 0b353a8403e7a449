"""The bucket, checked before anything else: one request, short timeouts, no retries, and one line that says what
is wrong (no prefix, no keys, no network or a wrong endpoint, no such bucket, refused keys, a wrong region).

Without it, Snakemake's first look at the bucket happens while it builds the job graph, through boto3 with
retries, and a wrong setting shows as minutes of retries and a long traceback. The Snakefile calls `check` when
the default storage provider is S3, so this runs before the graph, before any pod exists, in a dry run too.
"""

from __future__ import annotations

import os
import re
import urllib.parse

from snakemake_interface_common.exceptions import WorkflowError

TIMEOUT = 8  # seconds to connect, and to read the answer
RUNPOD_S3 = re.compile(r"^s3api-([a-z0-9-]+)\.runpod\.io$")


class StorageCheckError(WorkflowError):
    pass


def split_prefix(prefix: str | None) -> tuple[str, str]:
    if not prefix:
        raise StorageCheckError(
            "no bucket: set default-storage-prefix: s3://<bucket>/<folder> in the profile or pass "
            "--default-storage-prefix s3://<bucket>/<folder>"
        )
    if not prefix.startswith("s3://") or len(prefix) <= len("s3://"):
        raise StorageCheckError(
            f"default-storage-prefix {prefix!r} is not an S3 address: write it as s3://<bucket>/<folder>"
        )
    bucket, _, folder = prefix[len("s3://") :].partition("/")
    return bucket, folder


def runpod_region(endpoint: str | None) -> str | None:
    """The data-center id a RunPod network-volume endpoint (https://s3api-eu-ro-1.runpod.io) needs as region."""
    host = urllib.parse.urlsplit(endpoint or "").hostname or ""
    m = RUNPOD_S3.match(host)
    return m[1].upper() if m else None


def check(prefix: str | None, endpoint: str | None, region: str | None, access_key: str | None, secret_key: str | None):
    """Raises StorageCheckError (one line) unless the bucket answers to these settings."""
    import boto3
    import botocore.config
    import botocore.exceptions

    bucket, _ = split_prefix(prefix)
    where = endpoint or "AWS S3"
    wanted = runpod_region(endpoint)
    if wanted and (region or "").upper() != wanted:
        raise StorageCheckError(
            f"{endpoint} is a RunPod network volume in {wanted}: set storage-s3-region: {wanted} "
            f"(RunPod's S3 API wants the data-center id as region; it is {region!r})"
        )
    if not (access_key or os.environ.get("AWS_ACCESS_KEY_ID")) or not (
        secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY")
    ):
        raise StorageCheckError(
            "no keys for the bucket: export SNAKEMAKE_STORAGE_S3_ACCESS_KEY and SNAKEMAKE_STORAGE_S3_SECRET_KEY"
        )
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=botocore.config.Config(
            connect_timeout=TIMEOUT, read_timeout=TIMEOUT, retries={"max_attempts": 1, "mode": "standard"}
        ),
    )
    try:
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as e:
        raise StorageCheckError(refusal(e, bucket, where, region)) from None
    except botocore.exceptions.BotoCoreError as e:
        raise StorageCheckError(
            f"cannot reach {where} ({type(e).__name__}): no network, or a wrong storage-s3-endpoint-url"
        ) from None


def refusal(e, bucket: str, where: str, region: str | None) -> str:
    code = str(e.response.get("Error", {}).get("Code", ""))
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("404", "NoSuchBucket") or status == 404:
        return f"bucket {bucket!r} does not exist at {where}: check default-storage-prefix"
    if code in ("301", "PermanentRedirect", "AuthorizationHeaderMalformed") or status == 301:
        return f"bucket {bucket!r} is in another region than {region!r}: set storage-s3-region"
    if code in ("403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied") or status == 403:
        return (
            f"{where} refused the keys for bucket {bucket!r} (HTTP {status}): check "
            "SNAKEMAKE_STORAGE_S3_ACCESS_KEY, SNAKEMAKE_STORAGE_S3_SECRET_KEY and storage-s3-region"
        )
    return f"{where} answered HTTP {status} ({code}) for bucket {bucket!r}"


def check_workflow(workflow) -> None:
    """`check` with the settings Snakemake was given, when the default storage is S3; a job already running on a
    pod (whose bucket was checked before it started) is not checked again."""
    storage = workflow.storage_settings
    if getattr(storage, "default_storage_provider", None) != "s3" or workflow.remote_exec:
        return
    tagged = (workflow.storage_provider_settings or {}).get("s3")
    settings = tagged.get_settings() if tagged is not None else None
    try:
        check(
            storage.default_storage_prefix,
            getattr(settings, "endpoint_url", None),
            getattr(settings, "region", None),
            getattr(settings, "access_key", None),
            getattr(settings, "secret_key", None),
        )
    except StorageCheckError as e:
        raise StorageCheckError(f"Storage: {e}") from None
