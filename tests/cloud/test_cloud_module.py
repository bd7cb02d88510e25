"""The nat_gateway_ha_cloud module: package logic in both cloud modes, and the module through Ansible."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nat_gateway_ha.provision import ensure
from nat_gateway_ha_lab import cloud
from support import agent_config, eip_target, route_targets, seed_world, test_client

ROOT = Path(__file__).resolve().parents[2]


def test_check_mode_then_claim_and_source_dest_check(cloud_world, imds_server, tmp_path) -> None:
    imds_server.target["id"] = cloud_world.instances["gw2"]
    cfg = agent_config(cloud_world, "gw2", imds_server.url, tmp_path)
    cloud.reset_calls()
    predicted = ensure(cfg, owner=True, want_source_dest_check=False, check_mode=True)
    assert predicted["changed"] and not predicted["ownership_before"]["owner"] and predicted["owner"]
    assert len(predicted["source_dest_check_changed"]) == 2
    assert len(predicted["takeover"]["planned"]) == 6
    assert cloud.mutating_calls() == []
    done = ensure(cfg, owner=True, want_source_dest_check=False)
    assert done["changed"] and done["owner"] and done["ownership_after"]["owner"]
    assert set(done["source_dest_check"].values()) == {False}
    assert predicted["ownership_after"] == done["ownership_after"]  # check mode's diff was exact
    assert set(route_targets(cloud_world.ec2, cloud_world.private_tables).values()) == {
        cloud_world.eni("gw2", "eth1")
    }
    assert eip_target(cloud_world.ec2) == (cloud_world.eni("gw2", "eth0"), "10.77.1.54")
    again = ensure(cfg, owner=True, want_source_dest_check=False)
    assert not again["changed"]


def test_imdsv1_or_a_wider_hop_limit_is_refused(inprocess_world, imds_server, tmp_path) -> None:
    from nat_gateway_ha.provision import InsecureMetadata

    w = inprocess_world
    imds_server.target["id"] = w.instances["gw2"]
    cfg = agent_config(w, "gw2", imds_server.url, tmp_path)
    assert ensure(cfg)["metadata_options"] == {"http_tokens": "required", "hop_limit": 1}
    w.ec2.modify_instance_metadata_options(
        InstanceId=w.instances["gw2"], HttpTokens="optional", HttpPutResponseHopLimit=2
    )
    with pytest.raises(
        InsecureMetadata,
        match=r"pair lab host gw2: instance i-\w+ has IMDS tokens optional and hop limit 2.*tokens required",
    ):
        ensure(cfg)
    assert ensure(cfg, require_imdsv2=False)["metadata_options"] == {
        "http_tokens": "optional",
        "hop_limit": 2,
    }


def test_a_gateway_without_a_path_to_ec2_fails_the_converge_with_the_fix(
    inprocess_world, imds_server, tmp_path
) -> None:
    """The check runs on every gateway, the backup too: an endpoint that does not answer from it is a
    failover that cannot happen, said with the host and the two ways to give it a path."""
    from nat_gateway_ha.provision import ApiUnreachable

    with socket.socket() as closed:  # a port that was free a moment ago: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    imds_server.target["id"] = inprocess_world.instances["gw2"]
    cfg = agent_config(
        inprocess_world,
        "gw2",
        imds_server.url,
        tmp_path,
        endpoint_url=f"http://127.0.0.1:{port}",
        api_connect_timeout=0.5,
        api_max_attempts=1,
    )
    with pytest.raises(
        ApiUnreachable, match=r"pair lab host gw2: the EC2 API \(http://127.0.0.1:\d+\)"
    ) as err:
        ensure(cfg)
    assert "interface VPC endpoint" in str(err.value) and "public IPv4 address" in str(err.value)


def test_bad_config_names_pair_host_and_field(inprocess_world, imds_server, tmp_path) -> None:
    from nat_gateway_ha.resolve import ResolveError

    imds_server.target["id"] = inprocess_world.instances["gw2"]
    bad_ip = agent_config(
        inprocess_world,
        "gw2",
        imds_server.url,
        tmp_path,
        eips=[{"eip": {"public_ip": "203.0.113.10"}, "private_ip": "10.77.1.99"}],
    )
    with pytest.raises(ResolveError, match=r"pair lab host gw2 field eips\[0\]\.private_ip"):
        ensure(bad_ip)
    main_by_id = agent_config(
        inprocess_world, "gw2", imds_server.url, tmp_path, route_tables={"ids": [inprocess_world.main_table]}
    )
    with pytest.raises(ResolveError, match=r"route_tables\.ids.*main route table"):
        ensure(main_by_id)
    bad_mac = agent_config(
        inprocess_world, "gw2", imds_server.url, tmp_path, lan_eni={"mac": "02:00:00:00:00:99"}
    )
    with pytest.raises(ResolveError, match="field lan_eni"):
        ensure(bad_mac)


def test_selection_rules(inprocess_world, connect_as) -> None:
    w = inprocess_world
    lan_a = w.subnets["lan-a"]
    cases = {
        "tags": ({"tags": {"Network": "private"}}, set(w.private_tables)),
        "ids": ({"ids": w.private_tables[3:5]}, set(w.private_tables[3:5])),
        "subnets": ({"subnet_ids": [lan_a]}, {w.private_tables[0]}),
        "union": ({"ids": [w.public_table], "subnet_ids": [lan_a]}, {w.public_table, w.private_tables[0]}),
        "main": ({"ids": [w.main_table], "include_main": True}, {w.main_table}),
    }
    for name, (selection, expected) in cases.items():
        c = connect_as(w, "gw2", route_tables=selection)
        assert set(c.target.route_tables) == expected, name
    w.ec2.create_tags(Resources=[w.main_table], Tags=[{"Key": "Network", "Value": "private"}])
    assert w.main_table not in connect_as(w, "gw2").target.route_tables
    with_main = connect_as(w, "gw2", route_tables={"tags": {"Network": "private"}, "include_main": True})
    assert w.main_table in with_main.target.route_tables


def test_module_through_ansible(moto_server, imds_server, tmp_path) -> None:
    """One play: the module in check mode (predicts, changes nothing), then for real, both with --diff."""
    moto_server.reset()
    world = seed_world(test_client(moto_server.url), moto_server.url, private_tables=2)
    imds_server.target["id"] = world.instances["gw2"]
    cfg = json.loads(agent_config(world, "gw2", imds_server.url, tmp_path).model_dump_json())
    out = tmp_path / "out"
    tasks = []
    for name, check in (("predict", True), ("claim", False)):
        tasks += [
            {
                "name": name,
                "nat_gateway_ha_cloud": {"agent_config": cfg, "owner": True},
                "register": name,
                "check_mode": check,
            },
            {
                "name": f"save {name}",
                "ansible.builtin.copy": {
                    "content": "{{ " + name + " | to_json }}",
                    "dest": f"{out}-{name}.json",
                },
            },
        ]
    bad = dict(cfg, eips=[])
    tasks += [
        {
            "name": "bad",
            "nat_gateway_ha_cloud": {"agent_config": bad},
            "register": "bad",
            "ignore_errors": True,
        },
        {
            "name": "save bad",
            "ansible.builtin.copy": {"content": "{{ bad | to_json }}", "dest": f"{out}-bad.json"},
        },
    ]
    (tmp_path / "play.yml").write_text(
        json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])
    )
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        str(tmp_path / "play.yml"),
        "--diff",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    predicted = json.loads(Path(f"{out}-predict.json").read_text())
    claimed = json.loads(Path(f"{out}-claim.json").read_text())
    for result in (predicted, claimed):
        assert result["changed"] is True
        assert result["diff"]["before"]["owner"] is False and result["diff"]["after"]["owner"] is True
    assert predicted["takeover"]["dry_run"] is True and claimed["takeover"]["converged"] is True
    assert set(route_targets(world.ec2, world.private_tables).values()) == {world.eni("gw2", "eth1")}
    failed = json.loads(Path(f"{out}-bad.json").read_text())
    assert failed["failed"] and failed["msg"].startswith(
        "pair lab host gw2: invalid agent config: field eips"
    )
    moto_server.reset()
