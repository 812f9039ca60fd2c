package vec

import (
	"slices"
	"testing"
)

// usePath switches to p for the rest of the test and back to the fastest
// path after it.
func usePath(t testing.TB, p Path) {
	t.Helper()
	if err := Use(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Use("auto") })
}

func TestUse(t *testing.T) {
	sup := Supported()
	if len(sup) == 0 || sup[len(sup)-1] != PathGo {
		t.Fatalf("Supported() = %v: the portable path must always be there, last", sup)
	}
	if Active() != sup[0] {
		t.Fatalf("Active() = %s before any Use, want the fastest supported, %s", Active(), sup[0])
	}
	for _, p := range sup {
		usePath(t, p)
		if Active() != p {
			t.Fatalf("after Use(%s), Active() = %s", p, Active())
		}
	}
	before := Active()
	for _, bad := range []Path{"sse", "AVX2", "avx512 "} {
		if err := Use(bad); err == nil {
			t.Errorf("Use(%q) succeeded", bad)
		}
		if Active() != before {
			t.Fatalf("a failed Use(%q) changed the path to %s", bad, Active())
		}
	}
	for _, p := range paths {
		err := Use(p)
		if want := slices.Contains(sup, p); (err == nil) != want {
			t.Errorf("Use(%s) = %v; supported here: %v", p, err, sup)
		}
	}
	if err := Use("auto"); err != nil || Active() != sup[0] {
		t.Fatalf("Use(auto) = %v, Active() = %s, want %s", err, Active(), sup[0])
	}
}
