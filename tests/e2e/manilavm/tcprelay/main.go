// Command tcprelay carries a guest's TCP connections to several host ports
// over the one host port a vm-rig guest can reach (10.0.2.100:2049 through
// --nfs-forward): in the guest, "tcprelay guest VIA PORT..." listens on
// 127.0.0.1:PORT for each port and sends every connection to VIA prefixed
// with its port (2 bytes, big-endian); on the host, manilavm.Relay reads the
// port and connects to 127.0.0.1:PORT. The CephFS kernel client in a guest
// needs it: Ceph's maps name its daemons by 127.0.0.1 addresses (the rig
// binds to loopback), so the guest must find each of them at its own
// 127.0.0.1. Test-only.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 4 || os.Args[1] != "guest" {
		fmt.Fprintln(os.Stderr, "usage: tcprelay guest VIA PORT...")
		os.Exit(2)
	}
	via := os.Args[2]
	for _, p := range os.Args[3:] {
		port, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tcprelay: port %q: %v\n", p, err)
			os.Exit(2)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", p))
		if err != nil {
			fmt.Fprintf(os.Stderr, "tcprelay: %v\n", err)
			os.Exit(1)
		}
		go serve(l, via, uint16(port))
	}
	fmt.Println("tcprelay: ready")
	select {}
}

func serve(l net.Listener, via string, port uint16) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", via)
			if err != nil {
				return
			}
			defer up.Close()
			if err := binary.Write(up, binary.BigEndian, port); err != nil {
				return
			}
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}
