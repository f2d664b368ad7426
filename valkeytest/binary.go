package valkeytest

import (
	"fmt"
	"os"
	"os/exec"
)

// BinaryEnv is the environment variable that, when set, names the server
// binary to run (a path, or a name looked up on PATH) instead of searching
// for valkey-server and redis-server.
const BinaryEnv = "VALKEY_SERVER_BIN"

// Binary returns the path of the server binary tests run: the one named by
// the VALKEY_SERVER_BIN environment variable when it is set, else
// valkey-server on PATH, else redis-server on PATH. When none is found it
// returns an error wrapping [ErrNoBinary]. Safe for concurrent use.
func Binary() (string, error) {
	if name := os.Getenv(BinaryEnv); name != "" {
		path, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("valkeytest: %s=%q: %w", BinaryEnv, name, err)
		}
		return path, nil
	}
	for _, name := range []string{"valkey-server", "redis-server"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", ErrNoBinary
}
