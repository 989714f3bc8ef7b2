# Delivery targets, included by the top-level Makefile (which defines PY, PYTHON, VENV_STAMP).
# make security: the scanners that run offline, in their own virtualenv (.venv-security) so that the test venv
# stays small; the pipelines run the same commands plus the online ones (README "Delivery", "Security scanning").

SECURITY_VENV := .venv-security
SECURITY_STAMP := $(SECURITY_VENV)/.installed
# What the SAST scanners read: the app, the CLI, local tooling, CI scripts, benchmarks (tests hold fake secrets
# and unsafe patterns on purpose).
SAST_PATHS := function_app.py functions shared ci bench

.PHONY: security changelog

$(SECURITY_STAMP): ci/security/requirements.txt ci/security/constraints.txt
	@test -x $(SECURITY_VENV)/bin/python || $(PYTHON) -m venv $(SECURITY_VENV)
	$(SECURITY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r ci/security/requirements.txt
	@touch $@

security: $(SECURITY_STAMP) ## offline security scans: semgrep (vendored rules), bandit, detect-secrets (baseline)
	$(SECURITY_VENV)/bin/semgrep scan --metrics=off --disable-version-check --quiet --error \
		--config ci/security/semgrep-rules.yml $(SAST_PATHS)
	$(SECURITY_VENV)/bin/bandit --configfile ci/security/bandit.yml --recursive --quiet --severity-level medium $(SAST_PATHS)
	@# a rescan of a copy of the baseline (it keeps the baseline's file filters), compared by file and hashed secret
	@tmp=$$(mktemp) && cp .secrets.baseline $$tmp && $(SECURITY_VENV)/bin/detect-secrets scan --baseline $$tmp && \
		$(SECURITY_VENV)/bin/python ci/scripts/secrets_diff.py .secrets.baseline $$tmp; status=$$?; rm -f $$tmp; exit $$status

changelog: $(VENV_STAMP) ## regenerate CHANGELOG.md from the conventional commit log (tags vX.Y.Z are releases)
	$(PY) ci/scripts/changelog.py --write CHANGELOG.md
