package server

import "testing"

func TestAcceptQ(t *testing.T) {
	for _, tt := range []struct {
		in     []string
		br, gz float64
	}{
		{nil, 0, 0},
		{[]string{""}, 0, 0},
		{[]string{"gzip, deflate, br"}, 1, 1},
		{[]string{"br;q=0.5, gzip;q=0.25"}, 0.5, 0.25},
		{[]string{"br;q=0"}, 0, 0},
		{[]string{"*;q=0.3"}, 0.3, 0.3},
		{[]string{"*", "br;q=0"}, 0, 1},
		{[]string{"Gzip ;Q=0.7"}, 0, 0.7},
		{[]string{"br;q=2, gzip;q=-1"}, 0, 0},
		{[]string{"br;q=, gzip;level=9;q=0.1"}, 0, 0.1},
		{[]string{"br;foo=bar"}, 1, 0},
	} {
		if br, gz := acceptQ(tt.in); br != tt.br || gz != tt.gz {
			t.Errorf("acceptQ(%q) = %v, %v, want %v, %v", tt.in, br, gz, tt.br, tt.gz)
		}
	}
}
