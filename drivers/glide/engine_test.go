package glide_test

import (
	"testing"

	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine/enginetest"
)

// The engine's integration scenarios (engine/enginetest: per-key order,
// fault 1 kill and restart, fault 3 reset after write, cluster
// resharding) over the glide driver. Glide reconnects on its own: a
// restart it absorbs does not reach the engine (DriverReconnects).
func TestEngineScenarios(t *testing.T) {
	enginetest.Run(t, enginetest.Options{Driver: glide.Name, DriverReconnects: true})
}
