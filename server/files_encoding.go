package server

import (
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// precompressed opens the precompressed sibling of the file name in root
// (name.br or name.gz) that the client's Accept-Encoding values prefer, br
// first when it accepts both alike, and returns it with its coding. varies
// reports whether name has any such sibling, acceptable or not: then every
// response for name depends on Accept-Encoding.
func precompressed(root *os.Root, name string, acceptEncoding []string) (enc string, f *os.File, fi fs.FileInfo, varies bool) {
	qbr, qgz := acceptQ(acceptEncoding)
	type sibling struct {
		enc, name string
		q         float64
	}
	sibs := [2]sibling{{"br", name + ".br", qbr}, {"gzip", name + ".gz", qgz}}
	if qgz > qbr {
		sibs[0], sibs[1] = sibs[1], sibs[0]
	}
	for _, s := range sibs {
		if s.q <= 0 {
			continue
		}
		f, fi, err := open(root, s.name)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() {
			return s.enc, f, fi, true
		}
		f.Close()
	}
	for _, s := range sibs {
		if s.q > 0 {
			continue // not there: open failed above
		}
		if fi, err := root.Stat(s.name); err == nil && fi.Mode().IsRegular() {
			return "", nil, nil, true
		}
	}
	return "", nil, nil, false
}

// acceptQ returns the q-values that Accept-Encoding header values give br
// and gzip: 0 when not acceptable (q=0, or neither listed nor covered by
// "*").
func acceptQ(values []string) (br, gz float64) {
	br, gz, star := -1.0, -1.0, -1.0
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(elem, ";")
			coding = strings.TrimSpace(coding)
			switch {
			case strings.EqualFold(coding, "br"):
				br = qValue(params)
			case strings.EqualFold(coding, "gzip"):
				gz = qValue(params)
			case coding == "*":
				star = qValue(params)
			}
		}
	}
	if br < 0 {
		br = max(star, 0)
	}
	if gz < 0 {
		gz = max(star, 0)
	}
	return br, gz
}

// qValue returns the q parameter among the parameters of an
// Accept-Encoding element (" q=0.5"): 1 when there is none, 0 when it is
// malformed, so that a client is never sent what it may not accept.
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(q >= 0 && q <= 1) {
			return 0
		}
		return q
	}
	return 1
}

// etag returns a strong ETag for fi: its size and modification time in
// nanoseconds, in hex, and the content coding of a precompressed variant
// (so that it never equals the plain file's), as "<size>-<mtime>[-<enc>]".
func etag(fi fs.FileInfo, enc string) string {
	b := make([]byte, 0, 48)
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(fi.Size()), 16)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(fi.ModTime().UnixNano()), 16)
	if enc != "" {
		b = append(b, '-')
		b = append(b, enc...)
	}
	b = append(b, '"')
	return string(b)
}
