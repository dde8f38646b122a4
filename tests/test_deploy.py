"""The deployment files are linted and kept in step with the README."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or name


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [_tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_actionlint():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {w.name for w in workflows} >= {"ci.yml", "release.yml"}
    result = subprocess.run(
        [_tool("actionlint"), *map(str, workflows)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_every_runtime_folder():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    for folder in ("ecogram", "sql", "templates", "static"):
        assert re.search(rf"^COPY {folder} {folder}$", text, re.M), folder


def test_compose_runs_the_app_with_postgres_and_redis_and_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for service in services.values():
        assert "healthcheck" in service
    app = services["app"]
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert app["environment"]["REDIS_URL"].startswith("redis://")
    assert set(app["depends_on"]) == {"postgres", "redis"}
    assert set(compose["volumes"]) >= {"pgdata"}


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", readme)


def test_readme_has_the_two_set_up_commands_and_ci_runs_the_test_one():
    run, test = _readme_commands()[:2]
    assert "ecogram serve" in run
    assert "pytest" in test and "ruff check" in test
    ci_script = (ROOT / ".ci" / "run").read_text()
    assert test in ci_script.splitlines(), "CI must run the README's test command verbatim"
