package goid

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"goroutine 123 [running]:\n": 123,
		"goroutine 1 [":              1,
		"goroutine 0 [running]":      0,
		"goroutine x [running]":      0,
		"gorout":                     0,
		"":                           0,
	} {
		if got := parse([]byte(in)); got != want {
			t.Errorf("parse(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestGetDiffersPerGoroutine(t *testing.T) {
	me := Get()
	if me <= 0 {
		t.Fatalf("Get() = %d", me)
	}
	if again := Get(); again != me {
		t.Fatalf("Get() = %d then %d on one goroutine", me, again)
	}
	other := make(chan int64)
	go func() { other <- Get() }()
	if o := <-other; o <= 0 || o == me {
		t.Fatalf("another goroutine's id %d (this one's %d)", o, me)
	}
}
