package glide

// SetInvalidPtrOn makes the driver see the runtime's invalidptr check as
// on() says, until restore is called. Not safe while dials run.
func SetInvalidPtrOn(on func() bool) (restore func()) {
	old := invalidPtrOn
	invalidPtrOn = on
	return func() { invalidPtrOn = old }
}
