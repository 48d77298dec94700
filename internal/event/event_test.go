package event

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestKinds(t *testing.T) {
	seen := map[Kind]bool{}
	for _, d := range Kinds() {
		if seen[d.Kind] || d.Kind == "" || d.Means == "" {
			t.Errorf("bad or repeated description %+v", d)
		}
		seen[d.Kind] = true
		var k Kind
		if err := json.Unmarshal([]byte(`"`+string(d.Kind)+`"`), &k); err != nil || k != d.Kind {
			t.Errorf("%s: %v", d.Kind, err)
		}
	}
	var k Kind
	if err := json.Unmarshal([]byte(`"nonsense"`), &k); err == nil {
		t.Error("unknown kind accepted")
	}
}

// TestDocumented checks that docs/EVENTS.md lists every kind, and nothing
// that is not one.
func TestDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/EVENTS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	listed := 0
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		if !Kind(name).Valid() {
			t.Errorf("docs/EVENTS.md lists %q, which is no event kind", name)
		}
		listed++
	}
	for _, d := range Kinds() {
		if !strings.Contains(doc, "| `"+string(d.Kind)+"` |") {
			t.Errorf("docs/EVENTS.md does not list %s", d.Kind)
		}
	}
	if listed != len(Kinds()) {
		t.Errorf("docs/EVENTS.md lists %d kinds, there are %d", listed, len(Kinds()))
	}
}
