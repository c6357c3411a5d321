// Command chart renders a compare.sh summary.md table as an SVG bar chart:
// HTTP/1.1 and HTTP/2 requests/s and full TLS handshakes/s per server.
//
//	go run ./bench/chart -in summary.md -out docs/bench.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

// series are the columns charted, by their compare.sh header.
var series = []struct{ column, title string }{
	{"h1 req/s", "HTTP/1.1 keep-alive requests/s"},
	{"h2 req/s", "HTTP/2 requests/s"},
	{"full hs/s hsload", "full TLS handshakes/s"},
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chart", flag.ContinueOnError)
	in := fs.String("in", "", "compare.sh summary.md")
	out := fs.String("out", "", "SVG file to write (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	peers, values, err := parse(f)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "" {
		o, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer o.Close()
		w = o
	}
	render(w, peers, values)
	return nil
}

// parse reads the first table of summary.md: the peers and, per series,
// the median of each peer (NaN where missing).
func parse(r io.Reader) ([]string, [][]float64, error) {
	var header []string
	var peers []string
	var values [][]float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			if header != nil && len(peers) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case header == nil && len(cells) > 0 && cells[0] == "peer":
			header = cells
		case header == nil || strings.HasPrefix(cells[0], "---"):
		default:
			peers = append(peers, cells[0])
			row := make([]float64, len(series))
			for si, s := range series {
				row[si] = math.NaN()
				for ci, h := range header {
					if h == s.column && ci < len(cells) {
						if v, err := strconv.ParseFloat(strings.Fields(cells[ci] + " x")[0], 64); err == nil {
							row[si] = v
						}
					}
				}
			}
			values = append(values, row)
		}
	}
	if len(peers) == 0 {
		return nil, nil, fmt.Errorf("no table with a peer column found")
	}
	return peers, values, sc.Err()
}

var colors = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"}

func render(w io.Writer, peers []string, values [][]float64) {
	const panelW, panelH, top, left, barGap = 320, 260, 40, 60, 6
	width := left + len(series)*(panelW+30)
	height := top + panelH + 70
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for si, s := range series {
		x0 := left + si*(panelW+30)
		max := 0.0
		for _, row := range values {
			if !math.IsNaN(row[si]) && row[si] > max {
				max = row[si]
			}
		}
		if max == 0 {
			max = 1
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, top-16, s.title)
		fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`+"\n", x0, top+panelH, x0+panelW, top+panelH)
		barW := (panelW - barGap*(len(peers)+1)) / len(peers)
		for pi, p := range peers {
			v := values[pi][si]
			x := x0 + barGap + pi*(barW+barGap)
			label := "n/a"
			h := 0
			if !math.IsNaN(v) {
				h = int(v / max * float64(panelH-20))
				label = strconv.FormatFloat(v, 'f', 0, 64)
			}
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x, top+panelH-h, barW, h, colors[pi%len(colors)])
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle" font-size="10">%s</text>`+"\n", x+barW/2, top+panelH-h-4, label)
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x+barW/2, top+panelH+16, p)
		}
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" fill="#555">medians of compare.sh rounds on loopback, each server on one core (higher is better)</text>`+"\n", left, height-20)
	fmt.Fprintln(w, "</svg>")
}
