"""pipeline/flink_cluster.py without a cluster: the launcher jar's manifest, the loopback-only guard, and the
configuration the JVMs get (tests/e2e/test_flink_runner.py runs the real cluster under `make test-flink`)."""

import subprocess
import zipfile

import pytest

from pipeline import flink_cluster


def _manifest_attributes(data: bytes) -> dict[str, str]:
    text = data.decode()
    assert all(len(line.encode()) <= 72 for line in text.split("\r\n")), "a manifest line is over 72 bytes"
    attributes = {}
    for line in text.replace("\r\n ", "").split("\r\n"):
        if line:
            key, _, value = line.partition(": ")
            attributes[key] = value
    return attributes


def test_the_launcher_jar_names_every_jar_of_its_lib_folder_in_lines_of_72_bytes(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    names = [f"some-long-artifact-name-{i}-1.2.3.jar" for i in range(40)] + ["beam-runners-flink-1.19.jar"]
    for name in names:
        (lib / name).write_bytes(b"")
    (lib / "README.txt").write_text("not a jar")
    jar = tmp_path / "launcher.jar"
    flink_cluster._write_launcher_jar(str(jar), flink_cluster.JOB_SERVER_MAIN, str(lib))
    with zipfile.ZipFile(jar) as z:
        attributes = _manifest_attributes(z.read("META-INF/MANIFEST.MF"))
    assert attributes["Main-Class"] == flink_cluster.JOB_SERVER_MAIN
    assert attributes["Class-Path"].split(" ") == [f"lib/{name}" for name in sorted(names)]


def test_the_cluster_refuses_a_network_namespace_with_more_than_loopback(tmp_path):
    if flink_cluster.network_interfaces() == ["lo"]:
        pytest.skip("this process already runs in a loopback-only namespace")
    with pytest.raises(RuntimeError, match="isolated -- COMMAND"), flink_cluster.flink_cluster(str(tmp_path)):
        pass


def test_isolated_commands_see_only_loopback():
    command = flink_cluster.isolated_command(["python3", "-c", "import socket; print(socket.if_nameindex())"])
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"no network namespaces here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[(1, 'lo')]"


def test_flink_binds_loopback_and_a_job_needs_both_task_managers():
    config = flink_cluster._config(8081, 6123, 6124, "/tmp/x")
    settings = dict(line.split(": ", 1) for line in config.splitlines())
    for key in ("jobmanager.bind-host", "taskmanager.bind-host", "taskmanager.host", "rest.bind-address"):
        assert settings[key] == "127.0.0.1", key
    assert settings["taskmanager.numberOfTaskSlots"] == "1"
