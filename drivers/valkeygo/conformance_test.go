package valkeygo_test

import (
	"testing"

	"github.com/vactor-io/vactor/drivers/driverstest"
	"github.com/vactor-io/vactor/drivers/valkeygo"
)

// The valkey-go driver passes the conformance suite, through its fast
// path and through Exec.
func TestConformance(t *testing.T) {
	driverstest.Run(t, valkeygo.Driver{}, driverstest.Options{Name: valkeygo.Name})
}

// So does its neutral interface alone, through drivers.Fast's adapter:
// the adapter converts what any driver's Exec returns as valkey-go would
// have parsed it.
func TestConformanceAdapter(t *testing.T) {
	driverstest.Run(t, driverstest.NeutralOnly(valkeygo.Driver{}), driverstest.Options{Name: "valkey-go via the adapter"})
}
