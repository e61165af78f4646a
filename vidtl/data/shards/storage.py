"""Where shards live: a local folder or an ``s3://bucket/prefix`` URL.

Both give objects by name, as a stream of chunks that stops past a limit (:meth:`chunks`),
take finished local files (:meth:`put`) and list what is there (:meth:`names`). A store is
written by anyone who can write to it: a local object must be a regular file (never a FIFO or
a device), and no object is read past the bytes its reader expects.

S3 goes through boto3 (``pip install 'vidtl[stream]'``), which takes its credentials, region
and endpoint from the usual places: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``~/.aws``, an instance role, and ``AWS_ENDPOINT_URL`` for S3-compatible
stores (MinIO, Ceph, moto). Every failure is a :class:`ShardAccessError` naming the object's
URL and what to check.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vidtl.core.atomic import atomic_path
from vidtl.core.errors import UserError
from vidtl.core.safe_files import RefusedFileError, open_regular


class ShardAccessError(UserError):
    """An object of a shard store cannot be read or written (names its URL)."""


class ShardStorage(Protocol):
    """A place that holds named objects (shards and their index)."""

    def url(self, name: str) -> str: ...

    def chunks(self, name: str, limit: int) -> Iterator[bytes]:
        """The object's bytes, a chunk at a time; a :class:`ShardAccessError` as soon as it
        holds more than ``limit``."""
        ...

    def put(self, local: Path, name: str) -> None: ...

    def names(self) -> set[str]: ...


@dataclass(frozen=True)
class LocalShardStorage:
    """Shards in a local (or shared) folder."""

    folder: Path

    def url(self, name: str) -> str:
        return str(self.folder / name)

    def chunks(self, name: str, limit: int) -> Iterator[bytes]:
        try:
            with open_regular(self.folder / name, "shard store object") as file:
                if os.fstat(file.fileno()).st_size > limit:
                    raise _too_large(self.url(name), limit)
                yield from _bounded(iter(lambda: file.read(CHUNK), b""), self.url(name), limit)
        except FileNotFoundError:
            raise ShardAccessError(f"{self.url(name)} does not exist") from None
        except RefusedFileError as error:
            raise ShardAccessError(str(error)) from None
        except OSError as error:
            raise ShardAccessError(f"cannot read {self.url(name)}: {error.strerror}") from None

    def put(self, local: Path, name: str) -> None:
        destination = self.folder / name
        if local.resolve() == destination.resolve():
            return
        destination.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(destination, keep_suffix=True) as partial:
            shutil.copyfile(local, partial)

    def names(self) -> set[str]:
        if not self.folder.is_dir():
            return set()
        return {p.name for p in self.folder.iterdir() if p.is_file()}


class S3ShardStorage:
    """Shards under ``s3://bucket/prefix`` (boto3; the endpoint from ``AWS_ENDPOINT_URL``)."""

    def __init__(self, bucket: str, prefix: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    def __getstate__(self) -> dict[str, Any]:  # a boto3 client does not cross processes
        return {"bucket": self.bucket, "prefix": self.prefix, "_client": None}

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise ShardAccessError(
                    f"reading s3://{self.bucket} needs boto3: pip install 'vidtl[stream]'"
                ) from None
            config = Config(retries={"max_attempts": 4, "mode": "standard"},
                            connect_timeout=10, read_timeout=120)
            # a session of its own: the credentials and endpoint of now, not of a cached one
            self._client = boto3.session.Session().client("s3", config=config)
        return self._client

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def chunks(self, name: str, limit: int) -> Iterator[bytes]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
        except Exception as error:  # botocore's errors: named for the user below
            raise ShardAccessError(s3_problem(self.url(name), error)) from None
        body = response["Body"]
        try:
            if int(response.get("ContentLength") or 0) > limit:
                raise _too_large(self.url(name), limit)
            yield from _bounded(iter(lambda: body.read(CHUNK), b""), self.url(name), limit)
        except ShardAccessError:
            raise
        except Exception as error:
            raise ShardAccessError(s3_problem(self.url(name), error)) from None
        finally:
            body.close()

    def put(self, local: Path, name: str) -> None:
        try:
            self.client.upload_file(str(local), self.bucket, self.key(name))
        except Exception as error:
            raise ShardAccessError(s3_problem(self.url(name), error)) from None

    def names(self) -> set[str]:
        found: set[str] = set()
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(""))
            for page in pages:
                found.update(item["Key"].rsplit("/", 1)[-1] for item in page.get("Contents", []))
        except Exception as error:
            raise ShardAccessError(s3_problem(f"s3://{self.bucket}/{self.prefix}",
                                              error)) from None
        return found


CHUNK = 4 * 2**20


class ObjectTooLargeError(ShardAccessError):
    """An object holds more bytes than its reader expects of it."""


def _too_large(url: str, limit: int) -> ShardAccessError:
    return ObjectTooLargeError(f"{url} holds more than the {limit} bytes expected of it")


def _bounded(chunks: Iterator[bytes], url: str, limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _too_large(url, limit)
        yield chunk


def read_object(storage: ShardStorage, name: str, limit: int) -> bytes:
    """The whole object ``name`` of ``storage``, of at most ``limit`` bytes."""
    return b"".join(storage.chunks(name, limit))


def _without_credentials(text: str | None) -> str | None:
    """``text`` with the ``user:password@`` of any URL in it left out (messages reach logs and
    W&B)."""
    return re.sub(r"//[^/@\s]*@", "//", text) if text else text


def s3_problem(url: str, error: Exception) -> str:
    """One line saying what went wrong with ``url`` and what to check (no credentials)."""
    return str(_without_credentials(_s3_problem(url, error)))


def _s3_problem(url: str, error: Exception) -> str:
    kind = type(error).__name__
    if kind in ("NoCredentialsError", "PartialCredentialsError"):
        return (f"{url}: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
    if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError",
                "ReadTimeoutError"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the S3 endpoint"
        return f"{url}: cannot reach {endpoint} ({error}); check the URL and AWS_ENDPOINT_URL"
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    if code in ("NoSuchKey", "404", "NotFound"):
        return f"{url} does not exist"
    if code == "NoSuchBucket":
        return f"{url}: the bucket does not exist"
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return f"{url}: access denied ({code}); check the credentials and the bucket's policy"
    return f"{url}: {kind}: {error}"


def open_storage(location: str | Path) -> ShardStorage:
    """The storage of ``location``: ``s3://bucket/prefix`` or a local folder."""
    text = str(location)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://"):].partition("/")
        if not bucket:
            raise ShardAccessError(f"{text}: expected s3://bucket/prefix")
        return S3ShardStorage(bucket, prefix)
    if "://" in text:
        raise ShardAccessError(f"{text}: shards live in a local folder or at s3://bucket/prefix")
    return LocalShardStorage(Path(text).expanduser())
