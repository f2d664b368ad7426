// Command vactor measures and uses a Valkey server with the vactor client:
//
//	vactor bench   closed-loop GET/SET benchmark of vactor against valkey-go
//	               and go-redis, one process per client, interleaved
//	vactor load    bulk-load CSV, JSON Lines or RESP through the batch writer
//	vactor ping    connect and measure round trips
//	vactor info    the server's role, version and topology
//
// Every subcommand finds its server as the library does (config.LoadFromEnv:
// VALKEY_URL, VALKEY_ADDR, VALKEY_* variables), with flags (-url, -addr,
// -cluster, -tls...) overriding them; with no address configured it starts
// a throwaway server on 127.0.0.1 and stops it at the end. Run
// `vactor help` or `vactor CMD -h` for the flags.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and something failed
	exitUsage   = 2 // bad flags or arguments
	exitRefused = 3 // vactor bench refused the server (it holds data)
	// exitInterrupted is the shell's code for a command ended by SIGINT.
	exitInterrupted = 130
)

const usage = `usage: vactor COMMAND [flags]

Commands:
  bench   benchmark vactor against valkey-go and go-redis on this server,
          one process per client, interleaved rounds; prints a table
  load    bulk-load a file (or stdin) of CSV, JSON Lines or RESP commands
  ping    connect and measure round trip times
  info    show the server's role and version, or the cluster's slots and nodes

The server is the one the library's config.LoadFromEnv finds (VALKEY_URL,
VALKEY_ADDR, VALKEY_ADDRS, VALKEY_* variables), overridden by the flags
-url, -addr, -cluster, -tls, -tls-ca, -tls-cert, -tls-key, -tls-insecure,
-user, -password. Without any address, a throwaway server is started on
127.0.0.1 and stopped at the end.

Run 'vactor help COMMAND' or 'vactor COMMAND -h' for the flags of a command.
`

// run runs the command line args (without the program name) and returns
// the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "bench":
		return runBench(rest, stdout, stderr)
	case workerCommand:
		return runWorker(rest, stdout, stderr)
	case "load":
		return runLoad(rest, stdin, stdout, stderr)
	case "ping":
		return runPing(rest, stdout, stderr)
	case "info":
		return runInfo(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		if cmd == "help" && len(rest) > 0 {
			// vactor help COMMAND: the command's usage, as COMMAND -h.
			switch rest[0] {
			case "bench", "load", "ping", "info":
				return run([]string{rest[0], "-h"}, stdin, stdout, stderr)
			}
			fmt.Fprintf(stderr, "vactor help: unknown command %q\n\n%s", rest[0], usage)
			return exitUsage
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "vactor: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// parseFlags parses a subcommand's flags. It returns false, with the exit
// code, when the command is not to run: -h or -help print the usage on
// stdout and exit 0 (as 'vactor help' does); a bad flag prints the error
// and the usage on stderr and exits 2.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		_, _ = stderr.Write(out.Bytes())
		return exitOK, true
	case errors.Is(err, flag.ErrHelp):
		_, _ = stdout.Write(out.Bytes())
		return exitOK, false
	}
	_, _ = stderr.Write(out.Bytes())
	return exitUsage, false
}
