"""Every alert rule carries a runbook URL to docs/runbooks/<alert>.md, every runbook answers the four questions,
and every runbook belongs to an alert (contract in README "Delivery": Prometheus `runbook_url` annotations in
gitops, Azure Monitor alerts' description or `runbook_url` custom property in infra)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import hcl2
import pytest
import yaml
from infra_helpers import for_each_instances

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks"
BASE = "https://gitlab.example.com/platform/platform-core/-/blob/main/docs/runbooks/"
URL = re.compile(re.escape(BASE) + r"(?P<name>[A-Za-z0-9_.-]+)\.md")
HEADINGS = ("## What it means", "## How to confirm", "## How to fix", "## How to escalate")


@cache
def prometheus_alerts() -> dict[str, dict]:
    """alert name -> annotations, from every PrometheusRule in gitops/ (apps, infrastructure, clusters)."""
    found: dict[str, dict] = {}
    for path in sorted((REPO / "gitops").rglob("*.yaml")):
        if "schemas" in path.relative_to(REPO / "gitops").parts or "PrometheusRule" not in path.read_text():
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "PrometheusRule":
                continue
            for group in doc.get("spec", {}).get("groups", []):
                for rule in group.get("rules", []):
                    if "alert" in rule:
                        found[rule["alert"]] = {"file": path.relative_to(REPO).as_posix(),
                                                **(rule.get("annotations") or {})}
    return found


@cache
def azure_alerts() -> dict[str, str]:
    """`<type>.<label>` (`<type>.<label>["<key>"]` for each key of a for_each alert) -> the text that must carry the
    runbook URL, for every azurerm_monitor_*alert* and azurerm_consumption_budget_* in infra/."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "infra").rglob("*.tf")):
        text = path.read_text()
        if not re.search(r'resource\s+"(azurerm_monitor_\w*alert\w*|azurerm_consumption_budget_\w+)"', text):
            continue
        # A budget's notifications are alerts too, but the resource has no description or custom properties:
        # its runbook links are written in the file's comments.
        comments = " ".join(line.strip() for line in text.splitlines() if line.strip().startswith("#"))
        with path.open() as fh:
            parsed = hcl2.load(fh, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True,
                                                                                explicit_blocks=False))
        for block in parsed.get("resource", []):
            for rtype, instances in block.items():
                budget = re.fullmatch(r"azurerm_consumption_budget_\w+", rtype)
                if not (budget or re.fullmatch(r"azurerm_monitor_\w*alert\w*", rtype)):
                    continue
                for label, body in instances.items():
                    if label.startswith("__"):
                        continue
                    # A for_each alert (log_code_alerts) is one alert a key of its map, rendered as Terraform would.
                    expanded = ({f'{label}["{key}"]': rendered
                                 for key, rendered in for_each_instances(path.parent, body)[0].items()}
                                if "for_each" in body and not budget else {label: body})
                    for address, rendered in expanded.items():
                        carried = comments if budget else " ".join(
                            str(v) for v in (rendered.get("description"), rendered.get("custom_properties")) if v)
                        found[f"{path.relative_to(REPO).as_posix()}:{rtype}.{address}"] = carried
    return found


def runbook_names_referenced() -> dict[str, str]:
    refs = {}
    for alert, notes in prometheus_alerts().items():
        match = URL.fullmatch(str(notes.get("runbook_url", "")))
        if match:
            refs[match["name"]] = alert
    for alert, text in azure_alerts().items():
        for match in URL.finditer(text):
            refs[match["name"]] = alert
    return refs


def test_there_are_alerts_of_both_kinds():
    assert prometheus_alerts() and azure_alerts()


def test_every_prometheus_alert_links_its_own_runbook():
    wrong = {name: a.get("runbook_url") for name, a in prometheus_alerts().items()
             if a.get("runbook_url") != f"{BASE}{name}.md"}
    assert not wrong, f"annotation runbook_url must be {BASE}<alert>.md: {wrong}"


def test_every_azure_monitor_alert_links_a_runbook():
    missing = [alert for alert, text in azure_alerts().items() if not URL.search(text)]
    assert not missing, f"add 'Runbook: {BASE}<alert>.md' to the description (or a runbook_url property): {missing}"


def test_every_linked_runbook_exists():
    missing = {name: alert for name, alert in runbook_names_referenced().items()
               if not (RUNBOOKS / f"{name}.md").is_file()}
    assert not missing, f"write docs/runbooks/<name>.md for: {missing}"


def test_every_runbook_belongs_to_an_alert():
    orphans = sorted(p.stem for p in RUNBOOKS.glob("*.md"))
    orphans = [name for name in orphans if name not in runbook_names_referenced()]
    assert not orphans, f"runbooks no alert links (remove them or link them): {orphans}"


@pytest.mark.parametrize("path", sorted(RUNBOOKS.glob("*.md")), ids=lambda p: p.stem)
def test_each_runbook_says_what_it_means_how_to_confirm_fix_and_escalate(path):
    text = path.read_text()
    positions = [text.find(h) for h in HEADINGS]
    assert -1 not in positions, f"{path.name} needs the headings {HEADINGS}"
    assert positions == sorted(positions), f"{path.name}: headings out of order"
    sections = re.split(r"^## .*$", text, flags=re.M)[1:]
    assert all(s.strip() for s in sections), f"{path.name}: an empty section"
