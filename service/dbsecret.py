"""The application user's password, read from AWS Secrets Manager whenever a connection opens.

The settings name the secret (`DbSecret`), never the password. The secret holds the JSON the AWS
rotation function for PostgreSQL reads and writes (`username`, `password`, `host`, ...). Single-user
rotation changes the password in the database *before* it moves the AWSCURRENT label to the new
version, so for a moment a new connection made with AWSCURRENT is refused: after a refusal the
next connection re-reads the secret and, if AWSCURRENT is still the refused password, takes
AWSPENDING (the one the database now has). Connections already open are not affected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

from service.settings import DbSecret

log = logging.getLogger("service.dbsecret")


class SecretUnavailable(Exception):
    """Secrets Manager cannot give the password now (unreachable, access denied, malformed secret)."""


class SecretPassword:
    """A password source for asyncpg (`password=` accepts a coroutine function): cached until refused."""

    def __init__(self, source: DbSecret, session=None):
        import boto3

        self.source = source
        session = session or boto3.session.Session()  # the pod's own identity (EKS Pod Identity / env)
        self._client = session.client("secretsmanager", region_name=source.region, endpoint_url=source.endpoint_url)
        self._lock = threading.Lock()
        self._password: str | None = None
        self._refused: str | None = None

    async def __call__(self) -> str:
        cached = self._password
        return cached if cached is not None else await asyncio.to_thread(self._fetch)

    def refused(self, password: str | None = None) -> None:
        """The database refused the password: the next connection reads the secret again."""
        with self._lock:
            if password is None or password == self._password:
                self._refused, self._password = self._password, None

    def current(self) -> str:
        """The password to use now (blocking): AWSCURRENT, or AWSPENDING while a rotation is between steps."""
        return self._fetch()

    def _fetch(self) -> str:
        with self._lock:
            if self._password is not None:
                return self._password
            password = self._read("AWSCURRENT")
            if password == self._refused:
                pending = self._read("AWSPENDING", missing_ok=True)
                if pending is not None:
                    log.info("AWSCURRENT was refused; using AWSPENDING (a rotation is between its steps)")
                    password = pending
            self._password = password
            return password

    def _read(self, stage: str, *, missing_ok: bool = False) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            value = self._client.get_secret_value(SecretId=self.source.arn, VersionStage=stage)["SecretString"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if missing_ok and code == "ResourceNotFoundException":
                return None
            raise SecretUnavailable(f"{self.source.arn} ({stage}): {code}: {exc}") from None
        except BotoCoreError as exc:
            raise SecretUnavailable(f"{self.source.arn} ({stage}): {type(exc).__name__}: {exc}") from None
        try:
            password = json.loads(value)["password"]
        except (ValueError, KeyError, TypeError):
            raise SecretUnavailable(f"{self.source.arn} ({stage}): not a JSON object with a 'password'") from None
        if not isinstance(password, str) or not password:
            raise SecretUnavailable(f"{self.source.arn} ({stage}): 'password' is empty or not a string")
        return password
