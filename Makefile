# dbt-tableau-refresh: build, test and run the bridge.
#
#   make run      start the webhook API on 127.0.0.1:3000 against a local Tableau simulator
#   make test     vet, race-enabled tests (against moto_server and the simulators), cfn-lint
#   make invoke FUNCTION=webhook EVENT=events/dbt-run-succeeded.json
#
# SAM calls the build-<LogicalId> targets (BuildMethod: makefile).

GO        ?= go
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags "-s -w"
FUNCTION  ?= webhook
EVENT     ?= events/dbt-run-succeeded.json

.PHONY: run invoke test vet unit lint-template check-map deps build build-WebhookFunction build-SchedulerFunction clean tableau-webhooks bench fuzz

run:
	$(GO) run ./functions/webhook -listen 127.0.0.1:3000

# The sample events carry fixed timestamps and are signed with the demo
# secret; the long event age keeps them from being ignored as replays.
invoke:
	WEBHOOK_MAX_EVENT_AGE=$${WEBHOOK_MAX_EVENT_AGE:-876000h} IDEMPOTENCY_RETENTION=$${IDEMPOTENCY_RETENTION:-876001h} \
	$(GO) run ./functions/$(FUNCTION) -event $(EVENT)

test: deps vet unit lint-template check-map

# Manage the Tableau webhooks that call the bridge (needs a Tableau site administrator), e.g.
#   make tableau-webhooks ARGS="create -url https://<api>.execute-api.<region>.amazonaws.com/tableau/webhook"
#   make tableau-webhooks ARGS="test -all"
tableau-webhooks:
	$(GO) run ./cmd/tableau-webhooks $(ARGS)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	# The Lambda bootstrap compiles a few files of its own (pkg/bridge/awsconfig_lambda.go).
	$(GO) vet -tags lambda.norpc ./...

unit:
	$(GO) test -race -count=1 ./...

lint-template:
	cfn-lint template.yaml

# Validates the refresh map a deployment would use (REFRESH_MAP or
# REFRESH_MAP_FILE; the sample file when neither is set) before it ships.
check-map:
	@if [ -z "$$REFRESH_MAP$$REFRESH_MAP_FILE" ]; then export REFRESH_MAP_FILE=functions/webhook/refresh-map.json; fi; \
	$(GO) run ./functions/webhook -check-map

# moto_server (DynamoDB, Secrets Manager and SNS emulator) and cfn-lint come
# with the machine image; .ci/deps says what to install where one is missing.
deps:
	@bash .ci/deps

# One table of every figure the README quotes (go test -bench and the load
# tests); BENCHTIME sets the warm-webhook iterations.
BENCHTIME ?= 200x
bench: deps
	@{ $(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./pkg/webhook/ ; \
	   $(GO) test -run '^$$' -bench VerifySignature ./pkg/dbtcloud/ ; \
	   $(GO) test -run '^$$' -bench ScheduledRunCost -benchtime 5x ./pkg/scheduler/ ; \
	   $(GO) test -run '^$$' -bench ColdStart -benchtime 60x ./functions/webhook/ ; \
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

build: build-WebhookFunction build-SchedulerFunction

ARTIFACTS_DIR ?= .aws-sam/local

build-WebhookFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/webhook
	cp functions/webhook/refresh-map.json $(ARTIFACTS_DIR)/refresh-map.json

build-SchedulerFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/scheduler
	cp functions/webhook/refresh-map.json $(ARTIFACTS_DIR)/refresh-map.json

clean:
	rm -rf .aws-sam
