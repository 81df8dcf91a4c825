"""The suite's own stand-ins for AWS (tests/aws_fakes.py)."""

import os
import sys

import boto3
from moto import backends

from tests.aws_fakes import REGION, list_moto_services_once


def _count_listings_by_moto_backends(monkeypatch) -> list[str]:
    """The folders `moto.backends` lists from now on (`os.listdir` called from there)."""
    listed, listdir = [], os.listdir

    def counted(path="."):
        if sys._getframe(1).f_code.co_filename == backends.__file__:
            listed.append(path)
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counted)
    return listed


def test_motos_server_lists_its_services_once_and_still_serves_each(endpoint, monkeypatch):
    """moto's dispatcher asks `list_of_moto_modules` on every request; after
    `list_moto_services_once` (the `moto_server` fixture) no request lists moto's folder,
    and requests of two services still reach their own backends."""
    listed = _count_listings_by_moto_backends(monkeypatch)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    s3.create_bucket(Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="bucket", Key="k", Body=b"x")
    glue = boto3.client("glue", endpoint_url=endpoint, region_name=REGION)
    glue.create_database(DatabaseInput={"Name": "d"})

    assert s3.get_object(Bucket="bucket", Key="k")["Body"].read() == b"x"
    assert [d["Name"] for d in glue.get_databases()["DatabaseList"]] == ["d"]
    assert listed == []


def test_without_the_list_once_each_call_lists_motos_folder(monkeypatch):
    """What `list_moto_services_once` saves: moto's own function lists the folder each
    time it is called; the listed-once one gives the same services."""
    list_moto_services_once()
    listed = _count_listings_by_moto_backends(monkeypatch)
    once, original = backends.list_of_moto_modules, backends.list_of_moto_modules.__wrapped__
    for _ in range(3):
        assert "s3" in once() and "glue" in original()
    assert len(listed) == 3
    assert tuple(original()) == once()
