package valkeytest_test

import (
	"fmt"
	"io"
	"log"
	"net"

	"github.com/vactor-io/vactor/valkeytest"
)

func ExampleStartServer() {
	srv, err := valkeytest.StartServer(valkeytest.Options{AppendOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()

	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "*1\r\n$4\r\nPING\r\n")
	reply := make([]byte, 7)
	if _, err := io.ReadFull(conn, reply); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", reply)
	// Output: "+PONG\r\n"
}

func ExampleStartSentinel() {
	s, err := valkeytest.StartSentinel(valkeytest.SentinelOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Stop()

	old, err := s.Primary()
	if err != nil {
		log.Fatal(err)
	}
	p, err := s.Failover()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.MasterName(), len(s.Addrs()), p != old)
	// Output: mymaster 3 true
}
