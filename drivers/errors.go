package drivers

import "errors"

// ErrUnknownDriver is returned by Lookup for a name nobody registered. The
// error it returns wraps this sentinel and names the known drivers.
// Not retryable: it is a configuration error.
var ErrUnknownDriver = errors.New("drivers: unknown driver")
