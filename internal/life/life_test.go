package life

import (
	"encoding/json"
	"testing"
)

func TestStateJSON(t *testing.T) {
	for _, s := range States() {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("%s round-trips to %q, %v", s, back, err)
		}
	}
	var s State
	if err := json.Unmarshal([]byte(`"zombie"`), &s); err == nil {
		t.Error("unknown state accepted")
	}
	if State("").Valid() {
		t.Error("empty state valid")
	}
}
