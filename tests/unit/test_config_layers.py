"""Unit tests of sidecar.config_layers: the environment and the file read by setting name, with sources."""

import pathlib

import pytest

from sidecar.config_layers import read_environ, read_file
from sidecar.core.errors import ConfigError

BY_ENV = {"SIDECAR_GRPC_PORT": "grpc_port", "SIDECAR_APP_NAME": "app_name"}
NAMES = frozenset(BY_ENV.values())


def test_the_environment_layer_holds_each_setting_with_its_variable():
    environ = {"SIDECAR_GRPC_PORT": "9000", "HOME": "/root", "SIDECAR_CONFIG": "x.yaml"}
    assert read_environ(environ, BY_ENV) == {"grpc_port": ("9000", "SIDECAR_GRPC_PORT")}


def test_an_unknown_variable_is_refused_with_the_closest_one():
    with pytest.raises(ConfigError, match=r'SIDECAR_GRPC_PROT \(did you mean "SIDECAR_GRPC_PORT"\?\)'):
        read_environ({"SIDECAR_GRPC_PROT": "9000"}, BY_ENV)


def test_kubernetes_service_links_of_a_sidecar_service_are_let_through():
    environ = {"SIDECAR_X_SERVICE_HOST": "10.0.0.1", "SIDECAR_X_PORT": "tcp://10.0.0.1:80"}
    assert read_environ(environ, BY_ENV) == {}


def test_the_file_layer_takes_either_spelling(tmp_path: pathlib.Path):
    path = tmp_path / "sidecar.yaml"
    path.write_text("grpc-port: 9000\napp_name: digits\n")
    assert read_file(str(path), NAMES) == {"grpc_port": (9000, str(path)), "app_name": ("digits", str(path))}


def test_a_key_set_twice_or_unknown_is_refused(tmp_path: pathlib.Path):
    path = tmp_path / "sidecar.yaml"
    path.write_text("grpc-port: 1\ngrpc_port: 2\n")
    with pytest.raises(ConfigError, match=r'grpc_port: set twice .* "grpc-port" and "grpc_port"'):
        read_file(str(path), NAMES)
    path.write_text("grpc-prot: 1\n")
    with pytest.raises(ConfigError, match=r'unknown key "grpc-prot" .*did you mean "grpc-port"'):
        read_file(str(path), NAMES)


def test_an_empty_file_sets_nothing(tmp_path: pathlib.Path):
    path = tmp_path / "sidecar.yaml"
    path.write_text("")
    assert read_file(str(path), NAMES) == {}
