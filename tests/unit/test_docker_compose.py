"""docker-compose.yml stays consistent with the code: its commands and variables exist."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from ledgerline.cli import build_parser
from ledgerline.config import ENVIRONMENT_VARIABLES

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
INFRA_VARIABLE_PREFIXES = ("POSTGRES_", "KAFKA_")  # read by the postgres and kafka images
ONE_SHOT = {"migrate", "keys"}  # run once, with the owner's credential


def services() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return dict(data["services"])


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_ledgerline_command_in_compose_parses_with_the_real_cli() -> None:
    parser = build_parser()
    used = []
    for name, service in services().items():
        command = service.get("command")
        if not command:
            continue
        assert command[0] == "ledgerline", f"{name}: unexpected program {command[0]}"
        subcommand = command[1]
        assert subcommand in _subparsers(parser), f"{name}: no 'ledgerline {subcommand}'"
        parser.parse_args(command[1:])  # exits (fails the test) on an unknown flag
        used.append(subcommand)
        check = service.get("healthcheck", {}).get("test", [])
        if check[:2] == ["CMD", "ledgerline"]:
            parser.parse_args(check[2:])
    assert {"migrate", "serve", "relay", "worker"} <= set(used)


def test_every_variable_given_to_ledgerline_services_is_read_by_the_code() -> None:
    for name, service in services().items():
        if not service.get("command"):
            continue
        for variable in service.get("environment", {}):
            assert variable in ENVIRONMENT_VARIABLES, f"{name}: {variable} is not read by the code"


def test_the_read_path_runs_on_kafka_and_the_api_has_no_projector() -> None:
    s = services()
    assert s["kafka"]["image"].startswith("apache/kafka")
    assert s["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    broker = s["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].split("//")[-1]
    for name in ("api", "relay", "worker"):
        assert s[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == broker, name
        assert "kafka" in s[name]["depends_on"] or name == "api", name
    assert s["worker"]["deploy"]["replicas"] >= 2


def test_every_variable_the_code_reads_is_documented_in_the_readme() -> None:
    readme = (COMPOSE.parent / "README.md").read_text()
    for variable in ENVIRONMENT_VARIABLES:
        assert f"`{variable}`" in readme


def test_infrastructure_services_have_health_checks_and_restart_policies() -> None:
    for name, service in services().items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name
        if name in {"postgres", "kafka", "api", "relay", "worker"}:
            assert "healthcheck" in service, name
        for variable in service.get("environment", {}):
            if not service.get("command"):
                assert variable.startswith(INFRA_VARIABLE_PREFIXES), (name, variable)


def test_only_migrate_holds_the_owner_credential_and_the_runtime_logs_in_as_itself() -> None:
    for name, service in services().items():
        if not service.get("command"):
            continue
        env = service.get("environment", {})
        assert "ledgerline_runtime:" in env["LEDGERLINE_APP_DATABASE_URL"], name
        assert ("DATABASE_URL" in env) == (name in ONE_SHOT), name


def test_no_password_is_written_into_the_compose_file() -> None:
    text = COMPOSE.read_text()
    assert "ledgerline:ledgerline@" not in text
    example = (COMPOSE.parent / ".env.example").read_text()
    for variable in ("POSTGRES_PASSWORD", "LEDGERLINE_RUNTIME_DB_PASSWORD"):
        assert f"${{{variable}:?" in text
        assert f"{variable}=" in example


def test_keys_are_bootstrapped_once_and_the_image_runs_unprivileged_with_a_health_check() -> None:
    s = services()
    assert s["keys"]["command"][:3] == ["ledgerline", "keys", "create"]
    assert s["keys"]["profiles"] == ["bootstrap"]  # not started by a plain `up`
    assert "ledgerline-data:/var/lib/ledgerline" in s["api"]["volumes"]  # the signing key
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    assert "\nUSER ledgerline\n" in dockerfile
    assert "HEALTHCHECK" in dockerfile and 'VOLUME ["/var/lib/ledgerline"]' in dockerfile
    for name in ("relay", "worker"):
        assert s[name]["environment"]["LEDGERLINE_METRICS_PORT"]


def test_the_grafana_dashboard_charts_only_metrics_the_code_exports() -> None:
    import json
    import re

    from api.metrics import Metrics

    dashboard = json.loads((COMPOSE.parent / "deploy" / "grafana" / "ledgerline.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(ledgerline_[a-z_]+|process_[a-z_]+)", e)}
    exported = {metric.name for metric in Metrics().registry.collect()}
    for module in ("api/metrics.py", "ledgerline/streaming.py"):  # workers' and relays' own
        exported |= set(
            re.findall(r'"(ledgerline_[a-z_]+)"', (COMPOSE.parent / module).read_text())
        )
    for name in sorted(used):
        base = re.sub(r"_(bucket|total|sum|count)$", "", name)
        assert base in exported or name in exported, f"the dashboard charts {name}: not exported"
