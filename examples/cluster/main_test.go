package main

import "testing"

func TestClusterExampleRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster example: skipped with -short")
	}
	if err := run(""); err != nil {
		t.Fatal(err)
	}
}
