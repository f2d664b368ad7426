package glide_test

import (
	"testing"

	"github.com/vactor-io/vactor/drivers/driverstest"
	"github.com/vactor-io/vactor/drivers/glide"
)

// The glide driver passes the conformance suite, through Exec and through
// drivers.Fast's adapter (what the engine uses).
func TestConformance(t *testing.T) {
	driverstest.Run(t, glide.Driver{}, driverstest.Options{Name: glide.Name})
}
