"""Configuration: predecessor defaults, environment < flags, one clear line per bad value."""

from __future__ import annotations

import argparse
import ast
import os
import socket
from dataclasses import fields
from pathlib import Path

import pytest

from actors.app.cli import UsageError
from actors.app.config import ConfigError, Settings, add_run_arguments, load_settings

ROOT = Path(__file__).resolve().parents[2]


def parse_flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_the_predecessors() -> None:
    """With an empty environment the settings are GCO inference monitor's defaults."""
    settings = load_settings({})

    assert settings.cluster_name == "unknown-cluster"
    assert settings.region == "unknown-region"
    assert settings.table_name == "gco-inference-endpoints"
    # The predecessor's table client: DYNAMODB_REGION, else REGION, else us-east-1.
    assert settings.table_region == "us-east-1"
    assert settings.reconcile_interval == 15
    assert settings.namespace == "gco-inference"
    assert settings.k8s_timeout == 30
    assert settings.unhealthy_threshold == 300
    assert settings.lease_name == "inference-monitor-leader"


def test_defaults_of_our_additions() -> None:
    settings = load_settings({})

    assert settings.dynamodb_endpoint_url is None
    assert settings.metrics_port == 8080
    assert settings.log_dir is None
    assert settings.log_format == "auto"
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (15, 10, 2)
    assert settings.identity == f"{socket.gethostname()}-{os.getpid()}"
    assert settings.kubeconfig is None
    assert settings.k8s_url is None
    assert (settings.k8s_qps, settings.k8s_burst) == (10, 100)
    assert settings.handler_timeout == 60


#: One valid value, not the default, for each setting's environment variable (a setting
#: added to the table without one fails `test_every_environment_variable_is_read`).
SAMPLES = {
    "cluster_name": ("c1", "c1"),
    "region": ("eu-west-1", "eu-west-1"),
    "table_name": ("my-table", "my-table"),
    "table_region": ("us-east-2", "us-east-2"),
    "dynamodb_endpoint_url": ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    "prometheus_url": ("http://127.0.0.1:9090", "http://127.0.0.1:9090"),
    "reconcile_interval": ("2.5", 2.5),
    "namespace": ("serving", "serving"),
    "namespaces": ("a,b", ("a", "b")),
    "k8s_timeout": ("5", 5),
    "unhealthy_threshold": ("60", 60),
    "metrics_port": ("0", 0),
    "log_dir": ("/var/log/sup", "/var/log/sup"),
    "log_format": ("json", "json"),
    "lease_name": ("my-lease", "my-lease"),
    # Lease timings alone still keep duration > renew deadline > 1.2 x retry period.
    "lease_duration": ("60", 60),
    "renew_deadline": ("12", 12),
    "retry_period": ("3", 3),
    "identity": ("sup-0", "sup-0"),
    "kubeconfig": ("/home/me/.kube/config", "/home/me/.kube/config"),
    "k8s_url": ("http://127.0.0.1:6443", "http://127.0.0.1:6443"),
    "k8s_qps": ("50", 50),
    "k8s_burst": ("200", 200),
    "handler_timeout": ("5", 5),
    "stream_poll": ("0", 0),
    "stream_resync": ("600", 600),
    "status_heartbeat": ("30", 30),
    "max_orphan_deletes": ("9", 9),
    "gpu_metric_name": ("MY_GPU_UTIL", "MY_GPU_UTIL"),
}
#: Where the settings are read: every module but the one that declares them.
PRODUCT = [
    path
    for package in ("actors", "k8s", "store")
    for path in (ROOT / package).rglob("*.py")
    if path != ROOT / "actors" / "app" / "config.py"
]


def test_every_environment_variable_is_read() -> None:
    """Each setting of the table, set through its own variable alone, lands in its field."""
    table = {spec.name: spec.metadata["env"] for spec in fields(Settings)}
    assert set(SAMPLES) == set(table), "every setting needs a sample value here"
    defaults = load_settings({})
    for name, variable in table.items():
        raw, expected = SAMPLES[name]
        assert getattr(defaults, name) != expected, f"{name}'s sample is its default"
        assert getattr(load_settings({variable: raw}), name) == expected, variable


def test_every_setting_is_read_by_the_daemon() -> None:
    """A setting declared but never used is a setting that silently does nothing."""
    used = {
        node.attr
        for path in PRODUCT
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
    }
    assert {spec.name for spec in fields(Settings)} - used == set()


@pytest.mark.parametrize(
    ("expected", "env"),
    [
        pytest.param("eu-west-1", {"REGION": "eu-west-1"}, id="region"),
        pytest.param("ap-south-1", {"DYNAMODB_REGION": "ap-south-1", "REGION": "x"}, id="dynamodb"),
        pytest.param("us-west-2", {"AWS_REGION": "us-west-2"}, id="aws-region"),
        pytest.param("eu-north-1", {"AWS_DEFAULT_REGION": "eu-north-1"}, id="aws-default"),
        pytest.param("us-east-1", {"DYNAMODB_REGION": ""}, id="empty-is-unset"),
    ],
)
def test_table_region_falls_back_like_the_predecessor(expected: str, env: dict[str, str]) -> None:
    assert load_settings(env).table_region == expected


def test_flags_override_the_environment() -> None:
    env = {"REGION": "eu-west-1", "METRICS_PORT": "9000", "INFERENCE_NAMESPACE": "from-env"}
    args = parse_flags("--region", "us-west-2", "--metrics-port", "0", "--table", "t-flag")

    settings = load_settings(env, args)

    assert settings.region == "us-west-2"
    assert settings.metrics_port == 0
    assert settings.table_name == "t-flag"
    assert settings.table_region == "us-west-2"
    assert settings.namespace == "from-env"


def test_every_setting_has_a_flag() -> None:
    args = parse_flags(
        *("--cluster-name", "c", "--region", "r", "--table", "tbl", "--table-region", "tr"),
        *("--endpoint-url", "http://h:1", "--reconcile-interval", "3", "--namespace", "n"),
        *("--k8s-timeout", "4", "--unhealthy-threshold", "5", "--metrics-port", "6"),
        *("--log-dir", "d", "--log-format", "console", "--lease-name", "l"),
        *("--lease-duration", "9", "--renew-deadline", "8", "--retry-period", "1"),
        *("--identity", "i", "--kubeconfig", "k", "--k8s-url", "http://k:2"),
        *("--k8s-qps", "7", "--k8s-burst", "8", "--handler-timeout", "9"),
    )

    settings = load_settings({}, args)

    assert settings == Settings(
        cluster_name="c",
        region="r",
        table_name="tbl",
        table_region="tr",
        dynamodb_endpoint_url="http://h:1",
        reconcile_interval=3,
        namespace="n",
        k8s_timeout=4,
        unhealthy_threshold=5,
        metrics_port=6,
        log_dir="d",
        log_format="console",
        lease_name="l",
        lease_duration=9,
        renew_deadline=8,
        retry_period=1,
        identity="i",
        kubeconfig="k",
        k8s_url="http://k:2",
        k8s_qps=7,
        k8s_burst=8,
        handler_timeout=9,
    )


@pytest.mark.parametrize(
    ("expected", "env"),
    [
        pytest.param(
            "RECONCILE_INTERVAL_SECONDS must be a positive number, got 'abc'",
            {"RECONCILE_INTERVAL_SECONDS": "abc"},
            id="interval-text",
        ),
        pytest.param(
            "RECONCILE_INTERVAL_SECONDS must be a positive number, got '0'",
            {"RECONCILE_INTERVAL_SECONDS": "0"},
            id="interval-zero",
        ),
        pytest.param(
            "K8S_API_TIMEOUT must be a positive number, got '-1'",
            {"K8S_API_TIMEOUT": "-1"},
            id="timeout-negative",
        ),
        pytest.param(
            "INFERENCE_UNHEALTHY_THRESHOLD_SECONDS must be a positive number, got 'nan'",
            {"INFERENCE_UNHEALTHY_THRESHOLD_SECONDS": "nan"},
            id="threshold-nan",
        ),
        pytest.param(
            "HANDLER_TIMEOUT_SECONDS must be a positive number, got 'inf'",
            {"HANDLER_TIMEOUT_SECONDS": "inf"},
            id="handler-timeout-inf",
        ),
        pytest.param(
            "K8S_QPS must be a positive number, got ''",
            {"K8S_QPS": ""},
            id="qps-empty",
        ),
        pytest.param(
            "K8S_BURST must be an integer >= 1, got '2.5'",
            {"K8S_BURST": "2.5"},
            id="burst-fraction",
        ),
        pytest.param(
            "METRICS_PORT must be an integer from 0 to 65535, got '70000'",
            {"METRICS_PORT": "70000"},
            id="port-range",
        ),
        pytest.param(
            "METRICS_PORT must be an integer from 0 to 65535, got 'http'",
            {"METRICS_PORT": "http"},
            id="port-text",
        ),
        pytest.param(
            "INFERENCE_NAMESPACE must be a DNS-1123 label (lower-case letters, digits and '-', "
            "at most 63), got 'Gco_Inference'",
            {"INFERENCE_NAMESPACE": "Gco_Inference"},
            id="namespace",
        ),
        pytest.param(
            "REGION must be a non-empty value without surrounding spaces, got ''",
            {"REGION": ""},
            id="region-empty",
        ),
        pytest.param(
            "CLUSTER_NAME must be a non-empty value without surrounding spaces, got ' c1'",
            {"CLUSTER_NAME": " c1"},
            id="cluster-spaces",
        ),
        pytest.param(
            "INFERENCE_ENDPOINTS_TABLE_NAME must be a DynamoDB table name "
            "(3-255 of A-Z a-z 0-9 _ . -), got 'a/b'",
            {"INFERENCE_ENDPOINTS_TABLE_NAME": "a/b"},
            id="table-name",
        ),
        pytest.param(
            "AWS_ENDPOINT_URL_DYNAMODB must be an http(s) URL like http://127.0.0.1:8000, "
            "got 'localhost:8000'",
            {"AWS_ENDPOINT_URL_DYNAMODB": "localhost:8000"},
            id="endpoint-url",
        ),
        pytest.param(
            "K8S_API_URL must be an http(s) URL like http://127.0.0.1:8000, got 'ftp://x'",
            {"K8S_API_URL": "ftp://x"},
            id="k8s-url",
        ),
        pytest.param(
            "LOG_FORMAT must be one of auto, json, console, got 'xml'",
            {"LOG_FORMAT": "xml"},
            id="log-format",
        ),
        pytest.param(
            "LEASE_NAME must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.'), "
            "got 'Leader!'",
            {"LEASE_NAME": "Leader!"},
            id="lease-name",
        ),
        pytest.param(
            "LEASE_RETRY_PERIOD_SECONDS must be a positive number, got '0'",
            {"LEASE_RETRY_PERIOD_SECONDS": "0"},
            id="retry-zero",
        ),
        pytest.param(
            "LEASE_DURATION_SECONDS (10) must be greater than LEASE_RENEW_DEADLINE_SECONDS (10)",
            {"LEASE_DURATION_SECONDS": "10"},
            id="duration-not-above-deadline",
        ),
        pytest.param(
            "LEASE_RENEW_DEADLINE_SECONDS (2.4) must be greater than 1.2 x "
            "LEASE_RETRY_PERIOD_SECONDS (2)",
            {"LEASE_RENEW_DEADLINE_SECONDS": "2.4"},
            id="deadline-not-above-retry",
        ),
    ],
)
def test_each_bad_environment_value_is_one_line_naming_it(
    expected: str, env: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)

    assert str(caught.value) == expected
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("expected", "argv"),
    [
        pytest.param(
            "--reconcile-interval must be a positive number, got 'soon'",
            ("--reconcile-interval", "soon"),
            id="interval",
        ),
        pytest.param(
            "--metrics-port must be an integer from 0 to 65535, got '-1'",
            ("--metrics-port", "-1"),
            id="port",
        ),
        pytest.param(
            "--lease-duration (5) must be greater than LEASE_RENEW_DEADLINE_SECONDS (10)",
            ("--lease-duration", "5"),
            id="lease-rule-names-flag-and-variable",
        ),
        pytest.param(
            "--identity must be a non-empty value without surrounding spaces, got ''",
            ("--identity", ""),
            id="identity-empty",
        ),
    ],
)
def test_a_bad_flag_is_named_as_the_flag(expected: str, argv: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as caught:
        # The environment's valid value is overridden by the bad flag.
        load_settings({"RECONCILE_INTERVAL_SECONDS": "15"}, parse_flags(*argv))

    assert str(caught.value) == expected


def test_config_errors_reach_the_command_line_as_usage_errors() -> None:
    """The CLI prints UsageError as one line with exit status 2; ConfigError is one."""
    assert issubclass(ConfigError, UsageError)


@pytest.mark.parametrize(
    ("duration", "deadline", "retry", "valid"),
    [
        pytest.param(15, 10, 2, True, id="client-go-defaults"),
        pytest.param(3, 2, 1.6, True, id="tight-but-valid"),
        pytest.param(10, 10, 2, False, id="duration-equals-deadline"),
        pytest.param(15, 2.4, 2, False, id="deadline-equals-1.2-retry"),
        pytest.param(15, 10, 0, False, id="retry-zero"),
        pytest.param(5, 10, 2, False, id="duration-below-deadline"),
    ],
)
def test_lease_timing_rule(duration: float, deadline: float, retry: float, valid: bool) -> None:
    """lease_duration > renew_deadline > 1.2 x retry_period > 0, as client-go requires."""
    if valid:
        settings = Settings(lease_duration=duration, renew_deadline=deadline, retry_period=retry)
        assert settings.lease_duration == duration
    else:
        with pytest.raises(ConfigError):
            Settings(lease_duration=duration, renew_deadline=deadline, retry_period=retry)


def test_direct_construction_names_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(metrics_port=-5)

    assert str(caught.value) == "metrics_port must be an integer from 0 to 65535, got -5"


def test_direct_construction_keeps_the_table_in_its_region() -> None:
    assert Settings(region="eu-west-1").table_region == "eu-west-1"


def test_settings_are_frozen() -> None:
    settings = Settings()

    with pytest.raises(AttributeError):
        settings.region = "elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expected", "env"),
    [
        pytest.param(("gco-inference",), {}, id="default-only"),
        pytest.param(("gco-inference",), {"INFERENCE_NAMESPACES": ""}, id="empty-is-unset"),
        pytest.param(
            ("gco-inference", "team-a", "team-b"),
            {"INFERENCE_NAMESPACES": "team-a, team-b,team-a"},
            id="default-added-first",
        ),
        pytest.param(
            ("home", "team-a"),
            {"INFERENCE_NAMESPACE": "home", "INFERENCE_NAMESPACES": "team-a,home"},
            id="default-listed",
        ),
    ],
)
def test_watched_namespaces(expected: tuple[str, ...], env: dict[str, str]) -> None:
    assert load_settings(env).watched_namespaces == expected


@pytest.mark.parametrize(
    ("expected", "source"),
    [
        pytest.param(
            "INFERENCE_NAMESPACES must be a comma-separated list of DNS-1123 labels (lower-case "
            "letters, digits and '-', at most 63 each), got 'team-a,Team_B'",
            {"INFERENCE_NAMESPACES": "team-a,Team_B"},
            id="bad-label",
        ),
        pytest.param(
            "INFERENCE_NAMESPACES must be a comma-separated list of DNS-1123 labels (lower-case "
            "letters, digits and '-', at most 63 each), got 'team-a,,team-b'",
            {"INFERENCE_NAMESPACES": "team-a,,team-b"},
            id="empty-entry",
        ),
        pytest.param(
            "GPU_METRIC_NAME must be a metric name (no spaces, '/' or '%'), like "
            "DCGM_FI_DEV_GPU_UTIL, got 'gpu util'",
            {"GPU_METRIC_NAME": "gpu util"},
            id="metric-space",
        ),
    ],
)
def test_bad_namespaces_and_metric_names_are_one_line(
    expected: str, source: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(source)

    assert str(caught.value) == expected


def test_namespaces_and_gpu_metric_name_flags() -> None:
    args = parse_flags("--namespaces", "a,b", "--gpu-metric-name", "nv_gpu_util")

    settings = load_settings({"INFERENCE_NAMESPACES": "c", "GPU_METRIC_NAME": "x"}, args)

    assert settings.namespaces == ("a", "b")
    assert settings.watched_namespaces == ("gco-inference", "a", "b")
    assert settings.gpu_metric_name == "nv_gpu_util"
    with pytest.raises(ConfigError, match=r"^--namespaces must be"):
        load_settings({}, parse_flags("--namespaces", "A"))


def test_gpu_metric_name_defaults_to_the_dcgm_exporters_and_reads_the_environment() -> None:
    assert load_settings({}).gpu_metric_name == "DCGM_FI_DEV_GPU_UTIL"
    assert load_settings({"GPU_METRIC_NAME": "gpu_util"}).gpu_metric_name == "gpu_util"
