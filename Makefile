# dbt-tableau-refresh: build, test and run the bridge.
#
#   make run      start the webhook API on 127.0.0.1:3000 against a local Tableau simulator
#   make test     vet, race-enabled tests (against moto_server and the simulators), cfn-lint
#   make invoke FUNCTION=webhook EVENT=events/dbt-run-succeeded.json
#   make build    both Lambda bootstraps, in .aws-sam/local/<LogicalId>/
#   make secret-set KEY=dbt_webhook_secret SECRET_ID=<SecretArn>   one key of the deployed secret
#   make secret-set SITE=emea KEY=tableau_pat_name SECRET_ID=<SecretArn>   another Tableau site's
#
# SAM calls the build-<LogicalId> targets (BuildMethod: makefile).

GO        ?= go
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags "-s -w"
FUNCTION  ?= webhook
EVENT     ?= events/dbt-run-succeeded.json

.PHONY: run invoke plan test vet lint unit lint-template check-map check-config deps build build-WebhookFunction build-SchedulerFunction clean tableau-webhooks bench fuzz secret-set secret-get secret-keys

# The demo (DEMO=true): the in-process Tableau and dbt Cloud simulators
# with demo content, no AWS.
run:
	DEMO=true $(GO) run ./functions/webhook -listen 127.0.0.1:3000

# The sample events carry fixed timestamps and are signed with the demo
# secret; the long event age keeps them from being ignored as replays.
invoke:
	DEMO=$${DEMO:-true} WEBHOOK_MAX_EVENT_AGE=$${WEBHOOK_MAX_EVENT_AGE:-876000h} IDEMPOTENCY_RETENTION=$${IDEMPOTENCY_RETENTION:-876001h} \
	$(GO) run ./functions/$(FUNCTION) -event $(EVENT)

test: deps vet lint unit lint-template check-map

# Manage the Tableau webhooks that call the bridge (needs a Tableau site administrator), e.g.
#   make tableau-webhooks ARGS="create -url https://<api>.execute-api.<region>.amazonaws.com/tableau/webhook"
#   make tableau-webhooks ARGS="test -all"
tableau-webhooks:
	$(GO) run ./cmd/tableau-webhooks $(ARGS)

# One key of the deployed secret (stack output SecretArn), keeping the
# others. The value comes from standard input, or a prompt that does not
# echo: never the command line, which shell history and ps keep.
#   make secret-set KEY=tableau_pat_secret SECRET_ID=<SecretArn>
#   make secret-set SITE=emea KEY=tableau_pat_secret SECRET_ID=<SecretArn>   tableau_sites["emea"]
#   make secret-get KEY=tableau_webhook_token SECRET_ID=<SecretArn>
#   make secret-keys SECRET_ID=<SecretArn>     which keys are set, never their values
secret-set:
	@if [ -n "$(VALUE)" ]; then echo "secret-set: VALUE= on the command line stays in shell history; pipe the value in or type it at the prompt" >&2; exit 2; fi
	@$(GO) run ./cmd/bridge-secret $(if $(SITE),-site "$(SITE)") set $(KEY)

secret-get:
	@$(GO) run ./cmd/bridge-secret $(if $(SITE),-site "$(SITE)") get $(KEY)

secret-keys:
	@$(GO) run ./cmd/bridge-secret keys

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	# The Lambda bootstrap is built with this tag (aws-lambda-go then leaves out its RPC mode).
	$(GO) vet -tags lambda.norpc ./...

# The linters are tools of the module (go.mod's tool block), so their
# versions are pinned and nothing is installed: staticcheck, errcheck (the
# exceptions, each with why, are in .errcheck-excludes) and goimports'
# grouping (the standard library, then others, then this module).
lint:
	@misgrouped=$$($(GO) tool goimports -local github.com/dbt-tableau-refresh -l .); \
	if [ -n "$$misgrouped" ]; then echo "imports not grouped as goimports -local github.com/dbt-tableau-refresh does:"; echo "$$misgrouped"; exit 1; fi
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags lambda.norpc ./...
	$(GO) tool errcheck -ignoretests -exclude .errcheck-excludes ./...

unit:
	$(GO) test -race -count=1 ./...

# cfn-lint with its informational checks too, then what it cannot check:
# no physical name two stacks would share (after the SAM transform),
# parameter ranges the functions accept, the access log format.
lint-template:
	cfn-lint template.yaml --include-checks I
	python3 tools/template_check.py template.yaml

# Validates the refresh map a deployment would use (REFRESH_MAP or
# REFRESH_MAP_FILE; the sample file when neither is set) before it ships.
check-map:
	@if [ -z "$$REFRESH_MAP$$REFRESH_MAP_FILE" ]; then export REFRESH_MAP_FILE=functions/webhook/refresh-map.json; fi; \
	$(GO) run ./functions/webhook -check-map

# What a dbt run would refresh, and why, without refreshing anything; the
# same environment as the functions (DEMO=true for the simulators):
#   make plan JOB=123 [RUN=70001]
plan:
	@$(GO) run ./cmd/plan -job "$(JOB)" $(if $(RUN),-run "$(RUN)")

# Validates the whole configuration a deployment would run with, from the
# functions' own variables (TABLEAU_SERVER_URL, SECRET_ID, STATE_TABLE,
# REFRESH_MAP_FILE, DBT_ACCOUNT_ID, ...), before it ships, e.g.
#   TABLEAU_SERVER_URL=https://prod-useast-a.online.tableau.com SECRET_ID=x STATE_TABLE=x \
#   REFRESH_MAP_FILE=functions/webhook/refresh-map.json make check-config
# Nothing is read over the network: the secret is checked at first use.
check-config:
	@$(GO) run ./functions/webhook -check-config

# moto_server (DynamoDB, Secrets Manager and SNS emulator) and cfn-lint come
# with the machine image, Chromium (the status page's browser test) from
# Debian's packages; .ci/deps installs or says what to install where one is
# missing.
deps:
	@bash .ci/deps

# One table of every figure the README quotes (go test -bench and the load
# tests); BENCHTIME sets the warm-webhook iterations. The lineage figures
# (a delivery with lineage; the index built into the state table, some
# three minutes against moto_server) have their own iteration counts.
BENCHTIME ?= 200x
bench: deps
	@{ $(GO) test -run '^$$' -bench 'WarmWebhook|WebhookRequests' -benchtime $(BENCHTIME) ./pkg/webhook/ ; \
	   $(GO) test -run '^$$' -bench ManyTargets -benchtime 1x ./pkg/webhook/ ; \
	   $(GO) test -run '^$$' -bench VerifySignature ./pkg/dbtcloud/ ; \
	   $(GO) test -run '^$$' -bench ReadManifest -benchtime 1x ./pkg/dbtartifacts/ ; \
	   $(GO) test -run '^$$' -bench ScheduledRunCost -benchtime 5x ./pkg/scheduler/ ; \
	   $(GO) test -run '^$$' -bench StatusPage -benchtime 200x ./pkg/status/ ; \
	   $(GO) test -run '^$$' -bench ColdStart -benchtime 60x ./functions/webhook/ ; \
	   $(GO) test -run '^$$' -bench LineageDelivery -benchtime 3x ./pkg/webhook/ ; \
	   $(GO) test -run '^$$' -bench LineageIndexStore -benchtime 1x -timeout 60m ./pkg/lineage/ ; \
	   $(GO) test -count=1 -v -run 'TestLoad' ./pkg/webhook/ ; } 2>&1 | $(GO) run ./cmd/benchtable

# Runs every fuzz target for FUZZTIME each (make test runs their seed corpora
# in testdata/fuzz). A failing input is kept in testdata/fuzz for the fix.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./pkg/...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Each function's artifacts go to their own directory, as sam build's do
# (it sets ARTIFACTS_DIR to .aws-sam/build/<LogicalId>): both are called
# bootstrap, and both functions read the refresh map file.
build: build-WebhookFunction build-SchedulerFunction

build-WebhookFunction: ARTIFACTS_DIR ?= .aws-sam/local/WebhookFunction
build-SchedulerFunction: ARTIFACTS_DIR ?= .aws-sam/local/SchedulerFunction

build-WebhookFunction:
	mkdir -p $(ARTIFACTS_DIR)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/webhook
	cp functions/webhook/refresh-map.json $(ARTIFACTS_DIR)/refresh-map.json

build-SchedulerFunction:
	mkdir -p $(ARTIFACTS_DIR)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/scheduler
	cp functions/webhook/refresh-map.json $(ARTIFACTS_DIR)/refresh-map.json

clean:
	rm -rf .aws-sam
