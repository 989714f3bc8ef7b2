"""`platformctl scan --manifests` works offline: no settings, YAML files or folders, multi-document, Lists."""

from __future__ import annotations

import json

from shared import cli


def test_scan_manifests_runs_with_no_settings_on_multi_document_files_and_lists(tmp_path, monkeypatch, capsys):
    for name in ("PLATFORM_ENV", "PLATFORM_STORAGE_ACCOUNT", "PLATFORM_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps"},
           "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "nginx"}]}}
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pods.yaml").write_text("---\n" + json.dumps(pod) + "\n---\n# empty\n")
    (tmp_path / "list.yml").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {**pod, "metadata": {"name": "q", "namespace": "apps"}}]}))
    code = cli.main(["--json", "scan", "--manifests", str(tmp_path)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # hostNetwork: baseline, high
    hosts = {f["resource"] for f in report["findings"] if f["rule"] == "disallow-host-namespaces"}
    assert hosts == {"pod/apps/p", "pod/apps/q"}
    assert {f["location"] for f in report["findings"] if f["resource"] == "pod/apps/p"} == {
        (tmp_path / "sub" / "pods.yaml").resolve().as_uri()}  # outside the working directory: a file URI


def test_scan_manifests_names_a_file_that_is_not_yaml(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("kind: Pod\n  metadata: [\n")
    assert cli.main(["scan", "--manifests", str(tmp_path / "bad.yaml")]) == 2
    assert "bad.yaml is not valid YAML" in capsys.readouterr().err
    assert cli.main(["scan", "--manifests", str(tmp_path / "missing")]) == 2


def test_scan_writes_sarif_for_manifests(tmp_path, capsys):
    (tmp_path / "ok.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    sarif = tmp_path / "out.sarif"
    assert cli.main(["scan", "--manifests", str(tmp_path / "ok.yaml"), "--sarif", str(sarif)]) == 0
    document = json.loads(sarif.read_text())
    assert document["version"] == "2.1.0" and document["runs"][0]["results"] == []
