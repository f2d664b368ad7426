package actors

// SetBeforeRefuse has f run in ConnState.FailIfOpen between its first
// look at the breaker and its purge (nil: nothing), for tests of what
// happens in between.
func SetBeforeRefuse(f func(*ConnState)) {
	if f == nil {
		testBeforeRefuse.Store(nil)
		return
	}
	testBeforeRefuse.Store(&f)
}
