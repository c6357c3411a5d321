// Command httpsd serves a small web app over HTTPS by itself: TLS with
// certificates from PEM files or a local CA, HTTP/2, redirects from plain
// HTTP, and safe limits, in one process. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/httpsd/httpsd/cluster"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	cluster.QuietRedisLog()
	err := run(context.Background(), os.Args, os.LookupEnv, os.Stdout, os.Stderr)
	if err != nil {
		printWithin(os.Stderr, "httpsd: "+err.Error()+"\n", 2*time.Second)
	}
	os.Exit(exitCode(err))
}

// printWithin writes msg to w unless that takes longer than d: stderr may
// be a pipe nobody reads, and exiting matters more than the message.
func printWithin(w io.Writer, msg string, d time.Duration) {
	done := make(chan struct{})
	go func() {
		io.WriteString(w, msg)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

const usage = `Usage:
  httpsd [serve] [-config FILE]   serve HTTPS (the default command)
  httpsd check [-config FILE] [-online [-resolver HOST:PORT]]
                                  validate the config and certificate files, then exit;
                                  -online also checks the ACME directory, data_dir and DNS
  httpsd certs [-config FILE]     list the certificates served, with their expiry
  httpsd health [-config FILE] [-url URL]
                                  exit 0 if the server answers /healthz (default: the admin
                                  listener, else the HTTPS port, on loopback), 1 if not
  httpsd version                  print the version

The config file is -config, else $HTTPSD_CONFIG, else ./config.yaml if it
exists, else the built-in defaults. HTTPSD_* variables override its keys,
e.g. HTTPSD_LISTEN_HTTPS=:443.

Exit codes: 0 clean shutdown, 1 runtime failure (or check -online found a
blocking problem, or certs found an expired certificate), 2 usage or config
error.
`

// usageError marks errors that exit with status 2: bad flags, a bad config
// or bad certificate files.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}

// run is httpsd's whole life: it parses args (args[0] is the program name),
// reads the configuration through lookupEnv, and runs a command until it
// ends or ctx is cancelled (SIGINT and SIGTERM cancel it too).
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	// SIGHUP asks serve to reload; trapped first, so that one sent during
	// start-up waits for serve instead of killing the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal during the graceful shutdown ends the process at once
	}()

	cmd, rest := "serve", args[1:]
	if len(rest) > 0 && !isFlag(rest[0]) {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "serve", "check", "certs", "health":
	case "version":
		fmt.Fprintf(stdout, "httpsd %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Errorf("unknown command %q", cmd)}
	}

	fs := flag.NewFlagSet("httpsd "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFile := fs.String("config", "", "config `FILE` (default $HTTPSD_CONFIG, else ./config.yaml if present)")
	online, resolver, url := new(bool), new(string), new(string)
	switch cmd {
	case "check":
		fs.BoolVar(online, "online", false, "also check the ACME directory, data_dir and DNS")
		fs.StringVar(resolver, "resolver", "", "DNS server `HOST:PORT` for -online")
	case "health":
		fs.StringVar(url, "url", "", "`URL` to GET (default https://127.0.0.1:PORT/healthz)")
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		fmt.Fprint(stderr, usage)
		return usageError{err}
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}

	file, err := configPath(*configFile, lookupEnv)
	if err != nil {
		return usageError{err}
	}
	cfg, err := loadConfig(file, lookupEnv)
	if err != nil {
		return usageError{err}
	}
	switch cmd {
	case "check":
		return check(ctx, cfg, file, *online, *resolver, stdout)
	case "certs":
		return listCerts(cfg, stdout)
	case "health":
		return health(ctx, cfg, *url, stdout)
	}
	return serve(ctx, cfg, file, lookupEnv, hup, stderr)
}

func isFlag(s string) bool { return len(s) > 0 && s[0] == '-' }

// configPath picks the config file: the flag, $HTTPSD_CONFIG, or
// ./config.yaml when it exists; "" means built-in defaults only.
func configPath(flagValue string, lookupEnv func(string) (string, bool)) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if v, ok := lookupEnv("HTTPSD_CONFIG"); ok && v != "" {
		return v, nil
	}
	if _, err := os.Stat("config.yaml"); err == nil {
		return "config.yaml", nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("config: %w", err)
	}
	return "", nil
}
