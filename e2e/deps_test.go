package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/bridgeio/bridge"

// TestImportRules keeps DESIGN.md's package boundaries: the embedded broker
// never imports the engine, connectors or config; connectors never import
// the engine or each other; event depends on the standard library only.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type rule struct {
		from      string // package prefix the rule applies to
		forbidden []string
		allowed   []string // exceptions within forbidden
	}
	rules := []rule{
		{from: "embedded-broker/", forbidden: []string{"engine", "connectors", "pipelines", "rules", "cmd"}},
		{from: "connectors/", forbidden: []string{"engine", "connectors", "pipelines", "rules", "cmd"}, allowed: []string{"connectors/sqsattr"}},
		{from: "event", forbidden: []string{""}, allowed: []string{"event"}},
		{from: "rules", forbidden: []string{"engine", "connectors", "pipelines", "embedded-broker", "cmd"}},
		{from: "pipelines", forbidden: []string{"engine", "connectors", "embedded-broker", "cmd"}},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module+"/")
		for _, r := range rules {
			if !strings.HasPrefix(pkg, r.from) {
				continue
			}
			checked++
			for _, dep := range fields[1:] {
				if !strings.HasPrefix(dep, module+"/") {
					if r.from == "event" && strings.Contains(strings.Split(dep, "/")[0], ".") {
						t.Errorf("%s imports %s: event depends on the standard library only", pkg, dep)
					}
					continue
				}
				d := strings.TrimPrefix(dep, module+"/")
				if strings.HasPrefix(d, strings.TrimSuffix(pkg, "/")+"/") || d == pkg {
					continue // own subpackages
				}
				if r.from == "connectors/" && strings.HasPrefix(d, "connectors/") {
					own := strings.SplitN(pkg, "/", 3)[1]
					if strings.SplitN(d, "/", 3)[1] == own {
						continue
					}
				}
				bad := false
				for _, f := range r.forbidden {
					if strings.HasPrefix(d, f) {
						bad = true
					}
				}
				for _, a := range r.allowed {
					if strings.HasPrefix(d, a) {
						bad = false
					}
				}
				if bad && d != "event" {
					t.Errorf("%s imports %s, which DESIGN.md forbids", pkg, d)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package was checked")
	}
}
