package glide

// SetInvalidPtrOn makes the driver see the runtime's invalidptr check as
// on() says, until restore is called. Not safe while dials run.
func SetInvalidPtrOn(on func() bool) (restore func()) {
	old := invalidPtrOn
	invalidPtrOn = on
	return func() { invalidPtrOn = old }
}

// OnBatch makes the driver call f with the size of each glide batch
// before it is sent, until restore is called. Not safe while Exec runs.
func OnBatch(f func(n int)) (restore func()) {
	old := onBatch
	onBatch = f
	return func() { onBatch = old }
}

// OnDialClientID makes Dial call f before it sends CLIENT ID on a
// connection that keeps state, until restore is called. Not safe while
// dials run.
func OnDialClientID(f func()) (restore func()) {
	old := onDialClientID
	onDialClientID = f
	return func() { onDialClientID = old }
}
