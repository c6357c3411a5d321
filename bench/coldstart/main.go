// Command coldstart measures the time from starting a server to its first
// HTTPS response: it runs the command given after the flags, polls
// https://ADDR/healthz every millisecond from this process (no curl
// start-up in the figure), stops the server, and repeats.
//
//	go run ./bench/coldstart -addr 127.0.0.1:8459 -n 10 -- ./httpsd -config files.yaml
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8459", "address the server listens on (loopback)")
	n := flag.Int("n", 10, "starts")
	name := flag.String("name", "server", "name in the output")
	flag.Parse()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	var times []time.Duration
	for range *n {
		cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
		start := time.Now()
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "coldstart:", err)
			os.Exit(1)
		}
		for time.Since(start) < 10*time.Second {
			resp, err := client.Get("https://" + *addr + "/healthz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		times = append(times, time.Since(start))
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	slices.Sort(times)
	fmt.Printf("%s: median %v, min %v, max %v (%d starts)\n", *name, times[len(times)/2].Round(100*time.Microsecond),
		times[0].Round(100*time.Microsecond), times[len(times)-1].Round(100*time.Microsecond), len(times))
}
