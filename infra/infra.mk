# Infrastructure targets, included by the top-level Makefile (which defines PY, PYTHON, VENV_STAMP, ENV).
# Offline checks: make infra-check. Cloud operations (need Azure credentials): infra-bootstrap, infra-plan, infra-apply.

CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION := 3.3.30
TERRAFORM ?= terraform
INFRA_ENV_DIR := infra/envs/$(ENV)
# Saved plans go to .local/ (git-ignored): they can contain sensitive values.
INFRA_PLAN := $(CURDIR)/.local/infra/$(ENV).tfplan

.PHONY: infra-check infra-fmt infra-bootstrap infra-plan infra-apply infra-azure-login-check

# checkov lives in its own virtualenv: its pins (boto3, networkx, packaging, ...) would fight the app's.
$(CHECKOV_STAMP): infra/checkov-constraints.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		checkov==$(CHECKOV_VERSION) -c infra/checkov-constraints.txt
	@touch $@

infra-check: $(VENV_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP) ## offline infra checks: terraform fmt, structure, checkov, validate (when providers can be fetched)
	$(PY) -m pytest tests/infra -q

infra-fmt: ## rewrite infra/ in terraform's canonical format
	$(TERRAFORM) fmt -recursive infra

# Fails early, with a message, when no Azure identity is available: ARM_* variables (CI, service
# principal or OIDC) or an `az login` session.
infra-azure-login-check:
	@test -d $(INFRA_ENV_DIR) || { echo "infra: no environment folder $(INFRA_ENV_DIR) (ENV=dev-uaenorth|stg-uaenorth|prd-uaenorth)" >&2; exit 2; }
	@command -v $(TERRAFORM) >/dev/null || { echo "infra: terraform is not installed (need >= 1.11)" >&2; exit 2; }
	@if [ -n "$$ARM_CLIENT_ID" ] && { [ -n "$$ARM_CLIENT_SECRET" ] || [ -n "$$ARM_USE_OIDC" ] || [ -n "$$ARM_USE_MSI" ] || [ -n "$$ARM_CLIENT_CERTIFICATE_PATH" ]; }; then \
		echo "infra: using Azure credentials from ARM_* environment variables"; \
	elif command -v az >/dev/null && az account show >/dev/null 2>&1; then \
		echo "infra: using the Azure CLI session of $$(az account show --query user.name -o tsv)"; \
	else \
		echo "infra: no Azure credentials. Run 'az login' (operators) or set ARM_CLIENT_ID with" >&2; \
		echo "       ARM_USE_OIDC=true / ARM_CLIENT_SECRET / ARM_USE_MSI=true and ARM_TENANT_ID (CI)." >&2; \
		echo "       Offline checks need none: make infra-check" >&2; \
		exit 2; \
	fi

infra-bootstrap: infra-azure-login-check ## create the remote-state account of ENV's subscription (once per subscription; needs Azure credentials)
	$(TERRAFORM) -chdir=infra/bootstrap init -input=false
	$(TERRAFORM) -chdir=infra/bootstrap workspace select -or-create $(ENV)
	$(TERRAFORM) -chdir=infra/bootstrap apply -input=false -var environment=$(ENV)

infra-plan: infra-azure-login-check ## terraform plan for ENV (default dev-uaenorth; needs Azure credentials), saved under .local/infra/
	@mkdir -p $(dir $(INFRA_PLAN))
	$(TERRAFORM) -chdir=$(INFRA_ENV_DIR) init -input=false
	$(TERRAFORM) -chdir=$(INFRA_ENV_DIR) plan -input=false -out=$(INFRA_PLAN)

infra-apply: infra-azure-login-check ## apply the plan saved by infra-plan for ENV (needs Azure credentials)
	@test -f $(INFRA_PLAN) || { echo "infra: no saved plan for $(ENV); run 'make infra-plan ENV=$(ENV)' first and review it" >&2; exit 2; }
	$(TERRAFORM) -chdir=$(INFRA_ENV_DIR) apply -input=false $(INFRA_PLAN)
	@rm -f $(INFRA_PLAN)
