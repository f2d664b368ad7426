package invalidptr

import "testing"

func TestOn(t *testing.T) {
	cases := []struct {
		settings []string
		want     bool
	}{
		{nil, true},
		{[]string{"", ""}, true},
		{[]string{"", "invalidptr=0"}, false},
		{[]string{"invalidptr=0", ""}, false},
		{[]string{"invalidptr=0", "invalidptr=1"}, true},
		{[]string{"x509sha1=1,invalidptr=0", "gctrace=1"}, false},
		{[]string{"", "invalidptr=0,invalidptr=1"}, true},
		{[]string{"", "invalidptr=1,invalidptr=0"}, false},
		{[]string{"", "invalidptr=x"}, true},
		{[]string{"", "noinvalidptr=0"}, true},
	}
	for _, c := range cases {
		if got := on(c.settings...); got != c.want {
			t.Errorf("%q: on = %v, want %v", c.settings, got, c.want)
		}
	}
}
