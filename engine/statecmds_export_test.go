package engine

// CheckShared and CheckDedicated expose the connection-state checks for
// the engine_test package's unit tests.
var CheckShared = checkShared

func CheckDedicated(name string, args []string) error {
	_, err := checkDedicated(name, args)
	return err
}
