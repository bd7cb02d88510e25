"""The IMDS emulator answers each caller with its own instance, and enforces IMDSv2 like AWS."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from nat_gateway_ha_lab import imds, topology


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={imds.TOKEN_HEADER: token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def _token(base: str, ttl: str | None = "60") -> tuple[int, str]:
    req = urllib.request.Request(
        f"{base}/latest/api/token", method="PUT", headers={imds.TTL_HEADER: ttl} if ttl else {}
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def test_answers_with_the_callers_identity(cloud_world, imds_server) -> None:
    imds_server.target["id"] = cloud_world.instances["gw2"]
    base = imds_server.url
    status, token = _token(base)
    assert status == 200 and token
    md = f"{base}/latest/meta-data"
    assert _get(f"{md}/instance-id", token) == (200, cloud_world.instances["gw2"])
    assert _get(f"{md}/placement/region", token) == (200, topology.REGION)
    assert _get(f"{md}/placement/availability-zone", token) == (200, f"{topology.REGION}b")
    gw2 = topology.host("gw2")
    assert _get(f"{md}/mac", token) == (200, gw2.nic("eth0").mac)
    status, macs = _get(f"{md}/network/interfaces/macs/", token)
    assert sorted(macs.split()) == sorted(f"{n.mac}/" for n in gw2.nics)
    eth0 = f"{md}/network/interfaces/macs/{gw2.nic('eth0').mac}"
    assert _get(f"{eth0}/interface-id", token) == (200, cloud_world.eni("gw2", "eth0"))
    assert _get(f"{eth0}/local-ipv4s", token) == (200, "10.77.1.53\n10.77.1.54")
    assert _get(f"{eth0}/subnet-id", token) == (200, cloud_world.subnets["pub-b"])
    assert _get(f"{eth0}/vpc-id", token) == (200, cloud_world.vpc_id)
    eth1 = f"{md}/network/interfaces/macs/{gw2.nic('eth1').mac}"
    assert _get(f"{eth1}/device-number", token) == (200, "1")
    doc = json.loads(_get(f"{base}/latest/dynamic/instance-identity/document", token)[1])
    assert doc["instanceId"] == cloud_world.instances["gw2"] and doc["region"] == topology.REGION
    status, roles = _get(f"{md}/iam/security-credentials/", token)
    creds = json.loads(_get(f"{md}/iam/security-credentials/{roles.strip()}", token)[1])
    assert creds["Code"] == "Success" and creds["AccessKeyId"]


def test_token_rules(inprocess_world, imds_server) -> None:
    imds_server.target["id"] = inprocess_world.instances["gw1"]
    base = imds_server.url
    assert _token(base, ttl=None)[0] == 400
    assert _token(base, ttl="0")[0] == 400
    assert _token(base, ttl="21601")[0] == 400
    assert _get(f"{base}/latest/meta-data/instance-id")[0] == 401
    assert _get(f"{base}/latest/meta-data/instance-id", "forged")[0] == 401
    # A token belongs to the instance that asked for it.
    token = _token(base)[1]
    imds_server.target["id"] = inprocess_world.instances["gw2"]
    assert _get(f"{base}/latest/meta-data/instance-id", token)[0] == 401


def test_imdsv1_only_when_the_instance_allows_it(cloud_world, imds_server) -> None:
    gw1 = cloud_world.instances["gw1"]
    imds_server.target["id"] = gw1
    url = f"{imds_server.url}/latest/meta-data/instance-id"
    assert _get(url)[0] == 401
    cloud_world.ec2.modify_instance_metadata_options(InstanceId=gw1, HttpTokens="optional")
    assert _get(url) == (200, gw1)


@pytest.mark.parametrize("status", [500, 503])
def test_injected_failures_and_unknown_callers(inprocess_world, imds_server, status: int) -> None:
    imds_server.target["id"] = None
    assert _token(imds_server.url)[0] == 403
    imds_server.target["id"] = inprocess_world.instances["gw1"]
    imds_server.emulator.fail_next(1, status)
    assert _token(imds_server.url)[0] == status
    assert _token(imds_server.url)[0] == 200
