# Entry points for humans. CI runs ./scripts/test.sh (via .ci/run), which
# includes the chaos tests and the 3-minute soak.

.PHONY: test chaos soak

# The whole suite, as CI runs it.
test:
	./scripts/test.sh

# The fault-injection tests of docs/reliability.md (Toxiproxy, signals, a
# full disk; needs root for the tmpfs mount) and the 3-minute soak.
chaos:
	go test -count=1 -v -timeout 30m -run 'TestChaos|TestSoak' ./e2e/

# The 30-minute soak (not in CI). Writes its report table to
# docs/soak-report.md; BRIDGE_SOAK=10m make soak runs a shorter one.
BRIDGE_SOAK ?= 30m
soak:
	BRIDGE_SOAK=$(BRIDGE_SOAK) BRIDGE_SOAK_REPORT=$(CURDIR)/docs/soak-report.md \
		go test -count=1 -v -timeout 90m -run '^TestSoak$$' ./e2e/
