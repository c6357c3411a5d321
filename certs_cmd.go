package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/httpsd/httpsd/certs"
)

// listCerts prints every certificate the server would serve, from files,
// the local CA or the ACME cache, without contacting anyone. It returns an
// error when one has expired.
func listCerts(cfg *Config, stdout io.Writer) error {
	var infos []certs.Info
	var notes []string
	switch cfg.TLS.Source {
	case sourceFiles:
		for _, p := range cfg.TLS.Certificates {
			leaf, err := certs.ReadLeaf(p.Cert)
			if err != nil {
				return usageError{err}
			}
			infos = append(infos, certs.NewInfo("files", p.Cert, leaf))
		}
	case sourceACME:
		var err error
		if infos, err = certs.ACMECached(acmeCacheDir(cfg), cfg.Hosts); err != nil {
			return err
		}
		for _, h := range cfg.Hosts {
			if !covered(infos, h) {
				notes = append(notes, h+": no certificate yet")
			}
		}
	default:
		file := filepath.Join(cfg.DataDir, certs.CACertFile)
		leaf, err := certs.ReadLeaf(file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			notes = append(notes, "local CA: none yet; serve creates "+file)
		case err != nil:
			return usageError{err}
		default:
			infos = append(infos, certs.NewInfo("local CA", file, leaf))
			notes = append(notes, "serve signs a leaf for the hosts with this CA at every start")
		}
	}
	return printInfos(stdout, infos, notes, time.Now())
}

func covered(infos []certs.Info, host string) bool {
	for _, in := range infos {
		for _, n := range in.Names {
			if n == host {
				return true
			}
		}
	}
	return false
}

func printInfos(w io.Writer, infos []certs.Info, notes []string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tNAMES\tKEY\tISSUER\tNOT BEFORE\tNOT AFTER\tDAYS LEFT\tFILE")
	expired := 0
	for _, in := range infos {
		left := in.NotAfter.Sub(now).Hours() / 24
		days := fmt.Sprintf("%.0f", left)
		if left < 0 {
			expired++
			days = "EXPIRED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Source, strings.Join(in.Names, ","), in.KeyType, in.Issuer,
			in.NotBefore.UTC().Format(time.DateOnly), in.NotAfter.UTC().Format(time.DateOnly), days, in.File)
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	if expired > 0 {
		return fmt.Errorf("%d certificate(s) expired", expired)
	}
	return nil
}
