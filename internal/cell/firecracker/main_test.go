package firecracker

import (
	"os"
	"testing"

	"github.com/maxwellhq/maxwell/internal/cell"
)

func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	os.Exit(m.Run())
}
