package main

import "testing"

func TestSentinelExampleRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel example: skipped with -short")
	}
	if err := run("", ""); err != nil {
		t.Fatal(err)
	}
}
