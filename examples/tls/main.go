// Command tls connects to a server over TLS, with a client certificate
// when the server asks for one (mutual TLS), and runs a few commands.
//
// Point it at your server with the VALKEY_* variables:
//
//	VALKEY_ADDR=valkey.example.com:6380 \
//	VALKEY_TLS_ENABLED=true \
//	VALKEY_TLS_CA_FILE=ca.pem \
//	VALKEY_TLS_CERT_FILE=client.pem VALKEY_TLS_KEY_FILE=client.key \
//	go run ./examples/tls
//
// (or VALKEY_URL=valkeys://host:port with the same file variables). In
// code the same settings are Config.TLS:
//
//	cfg := config.DefaultConfig().WithAddrs("valkey.example.com:6380").WithTLS(config.TLSConfig{
//		Enabled: true, CAFile: "ca.pem", CertFile: "client.pem", KeyFile: "client.key",
//	})
//
// or your own *tls.Config in TLS.Config. A misconfiguration fails
// engine.New at once with a *engine.ConnectError whose Reason says what is
// wrong (an untrusted server certificate, a missing client certificate,
// ...): see docs/tls-acl.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(out io.Writer) error {
	cfg, err := config.LoadFromEnv()
	if err != nil {
		return err
	}
	if !cfg.TLS.Enabled {
		return errors.New("TLS is off: set VALKEY_TLS_ENABLED=true (and VALKEY_TLS_CA_FILE, VALKEY_TLS_CERT_FILE, VALKEY_TLS_KEY_FILE as your server needs)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		var ce *engine.ConnectError
		if errors.As(err, &ce) && ce.Reason != "" {
			return fmt.Errorf("cannot connect: %s\n(%w)", ce.Reason, err)
		}
		return err
	}
	defer eng.Close()

	set := eng.Set(ctx, "tls:greeting", "hello over TLS", time.Minute)
	get := eng.Get(ctx, "tls:greeting")
	if err := set.Err(ctx); err != nil {
		return err
	}
	v, err := get.Await(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "connected to %v over TLS (client certificate: %v)\n", cfg.Addresses(), cfg.TLS.CertFile != "")
	fmt.Fprintf(out, "GET tls:greeting = %q\n", v)
	_, err = eng.Del(ctx, "tls:greeting").Await(ctx)
	return err
}
