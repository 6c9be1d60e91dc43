"""`kubeapi.from_kubeconfig`: the plain kubeconfigs a developer or a bench points a component
at are read without kubernetes-asyncio's loader; those needing plugins are left to it."""

from __future__ import annotations

import base64
import pathlib

import pytest

from kevents import errors, kubeapi

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_a_yaml_kubeconfig_with_a_token_file_and_inline_ca(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text(f"""
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: other
  context: {{cluster: far, user: nobody}}
- name: dev
  context: {{cluster: near, user: me}}
clusters:
- name: far
  cluster: {{server: "https://far:6443"}}
- name: near
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: {base64.b64encode(PEM.encode()).decode()}
users:
- name: me
  user: {{tokenFile: secrets/token}}
""")
    assert kubeapi.from_kubeconfig(path) == kubeapi.Config(
        host="https://10.0.0.1:6443", ca_data=PEM, token_file=str(tmp_path / "secrets/token")
    )


def test_a_json_kubeconfig_with_a_client_certificate_relative_to_it(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "admin.kubeconfig"
    path.write_text(
        '{"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k",'
        ' "user": "u"}}], "clusters": [{"name": "k", "cluster": {"server":'
        ' "https://127.0.0.1:6443", "certificate-authority": "pki/ca.crt",'
        ' "insecure-skip-tls-verify": false}}], "users": [{"name": "u", "user":'
        ' {"client-certificate": "/abs/admin.crt", "client-key": "pki/admin.key"}}]}'
    )
    assert kubeapi.from_kubeconfig(path) == kubeapi.Config(
        host="https://127.0.0.1:6443",
        ca_file=str(tmp_path / "pki/ca.crt"),
        cert_file="/abs/admin.crt",
        key_file=str(tmp_path / "pki/admin.key"),
    )


@pytest.mark.parametrize(
    "user",
    [
        '{"exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1"}}',
        '{"auth-provider": {"name": "oidc"}}',
        '{"client-certificate-data": "QUJD", "client-key-data": "QUJD"}',
    ],
)
def test_plugins_and_inline_client_keys_are_left_to_the_library(
    tmp_path: pathlib.Path, user: str
) -> None:
    path = tmp_path / "config"
    path.write_text(
        '{"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k",'
        ' "user": "u"}}], "clusters": [{"name": "k", "cluster": {"server": "https://k"}}],'
        f' "users": [{{"name": "u", "user": {user}}}]}}'
    )
    assert kubeapi.from_kubeconfig(path) is None


def test_a_context_naming_a_missing_cluster_is_a_config_error(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text('{"current-context": "c", "contexts": [{"name": "c", "context": '
                    '{"cluster": "gone"}}], "clusters": []}')  # fmt: skip
    with pytest.raises(errors.ConfigError, match="no cluster named 'gone'"):
        kubeapi.from_kubeconfig(path)


def test_a_token_never_shows_in_the_config_as_logged(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        '{"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k",'
        ' "user": "u"}}], "clusters": [{"name": "k", "cluster": {"server": "https://k"}}],'
        ' "users": [{"name": "u", "user": {"token": "s3cr3t-t0ken"}}]}'
    )
    config = kubeapi.from_kubeconfig(path)
    assert config is not None and config.token == "s3cr3t-t0ken"
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in str(config)
