"""pipeline/portable_beam.py without a pipeline: servers asking for every interface get loopback, and the
launcher refuses to start services with nothing to run. The whole pipeline on it: tests/e2e."""

import ipaddress

import grpc
import psutil
import pytest

from pipeline import portable_beam


@pytest.fixture
def loopback_grpc(monkeypatch):
    monkeypatch.setattr(grpc, "server", grpc.server)  # restored after the test
    portable_beam.bind_loopback_only()
    portable_beam.bind_loopback_only()  # twice is once
    return grpc


def _listening(port: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.Process().net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    return address.is_loopback or bool(address.ipv4_mapped and address.ipv4_mapped.is_loopback)


@pytest.mark.parametrize("host", ["[::]", "0.0.0.0"])
def test_a_server_asking_for_every_interface_listens_on_loopback_only(loopback_grpc, host):
    from concurrent import futures

    server = loopback_grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    try:
        addresses = _listening(port)
    finally:
        server.stop(0)
    assert addresses and all(_is_loopback(a) for a in addresses), addresses


def test_services_give_the_options_that_use_them():
    services = portable_beam.PortableServices(job_port=8099, worker_pool_port=50000, log_dir="/tmp/x")
    assert services.beam_args == (
        "--runner=PortableRunner",
        "--job_endpoint=localhost:8099",
        "--environment_type=EXTERNAL",
        "--environment_config=localhost:50000",
    )


def test_run_without_a_command_fails_before_starting_anything(capsys):
    with pytest.raises(SystemExit) as exit_info:
        portable_beam.main(["run", "--"])
    assert exit_info.value.code == 2
    assert "give the command to run after --" in capsys.readouterr().err
