"""A real S3-compatible server for export tests: moto in server mode on 127.0.0.1 (real
HTTP, the S3 API as boto3 and s3fs speak it), with the environment s3fs reads pointed at it."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

BUCKET = "datasets"


@contextmanager
def moto_s3() -> Iterator[tuple[Any, str]]:
    """(an s3fs filesystem with only the empty bucket `BUCKET` in it, the endpoint URL)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its buckets per process, not per server: start from an empty store
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset",
                                                  method="POST"), timeout=30).close()
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        with pytest.MonkeyPatch.context() as patch:
            for k, v in env.items():
                patch.setenv(k, v)
            import s3fs

            # filesystems cached by an earlier server's tests would still call its port
            s3fs.S3FileSystem.clear_instance_cache()
            fs = s3fs.S3FileSystem(skip_instance_cache=True)
            fs.mkdir(BUCKET)
            yield fs, endpoint
    finally:
        server.stop()
