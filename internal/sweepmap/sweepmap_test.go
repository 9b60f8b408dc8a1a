package sweepmap

import "testing"

func TestSweepDropsUnusedEntries(t *testing.T) {
	var m Map[string, int]
	m.Put("kept", 1)
	m.Put("dropped", 2)
	m.Sweep() // both were used (put) since the start: both stay
	if m.Len() != 2 {
		t.Fatalf("len %d after the first sweep", m.Len())
	}
	if v, ok := m.Get("kept"); !ok || v != 1 {
		t.Fatalf("kept = %v %v", v, ok)
	}
	m.Sweep()
	if _, ok := m.Get("dropped"); ok || m.Len() != 1 {
		t.Fatalf("unused entry survived a sweep (len %d)", m.Len())
	}
}
