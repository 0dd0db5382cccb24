"""The application user's password source (service/dbsecret.py) against Secrets Manager on moto, with
exactly the value the stack's first secret version holds (components.dbcredential.secret_value)."""

from __future__ import annotations

import asyncio
import json

import boto3
import pytest

from components.dbcredential import secret_value
from service.dbsecret import SecretPassword, SecretUnavailable
from service.settings import DbSecret

REGION = "eu-west-1"


@pytest.fixture
def secrets(aws_env):
    return boto3.client("secretsmanager", region_name=REGION)


def _secret(client, password: str) -> DbSecret:
    value = secret_value(username="meridian_app", password=password, host="db.example", port=5432, dbname="meridian")
    arn = client.create_secret(Name="db-app", SecretString=value)["ARN"]
    return DbSecret(arn=arn, region=REGION)


def test_the_rendered_value_is_what_the_rotation_function_and_the_service_read(secrets):
    value = json.loads(secret_value(username="meridian_app", password="p@ss", host="h", port=5432, dbname="meridian"))
    # the AWS function requires these and refuses any other engine; ssl true: TLS only, no plain-text fallback
    assert {"host", "username", "password", "engine"} <= set(value) and value["engine"] == "postgres"
    assert value["ssl"] is True and value["port"] == 5432 and value["dbname"] == "meridian"
    source = SecretPassword(_secret(secrets, "first-password"))
    assert asyncio.run(source()) == "first-password"


def test_a_refused_password_is_read_again_and_awspending_used_between_rotation_steps(secrets):
    db = _secret(secrets, "old")
    source = SecretPassword(db)
    assert asyncio.run(source()) == "old"
    # setSecret has run (the database has "new"); finishSecret has not (AWSCURRENT is still "old")
    pending = secret_value(username="meridian_app", password="new", host="db.example", port=5432, dbname="meridian")
    version = secrets.put_secret_value(SecretId=db.arn, SecretString=pending, VersionStages=["AWSPENDING"])["VersionId"]
    assert asyncio.run(source()) == "old", "cached until refused"
    source.refused()
    assert asyncio.run(source()) == "new", "AWSCURRENT is the refused one: AWSPENDING"
    # finishSecret: AWSCURRENT moves; a later refusal of "new" finds no other, keeps AWSCURRENT
    stages = secrets.describe_secret(SecretId=db.arn)["VersionIdsToStages"]
    (old,) = [v for v, s in stages.items() if "AWSCURRENT" in s]
    secrets.update_secret_version_stage(
        SecretId=db.arn, VersionStage="AWSCURRENT", MoveToVersionId=version, RemoveFromVersionId=old
    )
    secrets.update_secret_version_stage(SecretId=db.arn, VersionStage="AWSPENDING", RemoveFromVersionId=version)
    source.refused("a password it no longer uses")  # a stale refusal changes nothing
    assert asyncio.run(source()) == "new"
    source.refused()
    assert asyncio.run(source()) == "new"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "not a JSON object with a 'password'"),
        ('{"username": "u"}', "not a JSON object"),
        ('{"password": ""}', "empty"),
    ],
)
def test_a_malformed_secret_is_a_clear_error_not_a_traceback(secrets, value, message):
    arn = secrets.create_secret(Name="bad", SecretString=value)["ARN"]
    with pytest.raises(SecretUnavailable, match=message):
        SecretPassword(DbSecret(arn=arn, region=REGION)).current()


def test_a_missing_secret_names_it(secrets):
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:nope-AbCdEf"
    with pytest.raises(SecretUnavailable, match=r"nope-AbCdEf \(AWSCURRENT\): ResourceNotFoundException"):
        SecretPassword(DbSecret(arn=arn, region=REGION)).current()
