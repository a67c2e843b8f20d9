package main

import (
	"fmt"
	"slices"
	"testing"
)

// The redrawn frame keeps the newest events and notes that fit under the table, the longer
// section giving way first; a table taller than the screen leaves room for neither.
func TestFitBelow(t *testing.T) {
	numbered := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%d", prefix, i))
		}
		return out
	}
	events, notes := fitBelow(10, numbered("e", 8), numbered("n", 36))
	if !slices.Equal(events, []string{"e5", "e6", "e7"}) || !slices.Equal(notes, []string{"n33", "n34", "n35"}) {
		t.Errorf("room 10: events %v, notes %v", events, notes)
	}
	if events, notes := fitBelow(40, numbered("e", 8), numbered("n", 2)); len(events) != 8 || len(notes) != 2 {
		t.Errorf("room 40: trimmed what fits: %v %v", events, notes)
	}
	for _, room := range []int{0, -5} {
		if events, notes := fitBelow(room, numbered("e", 8), numbered("n", 3)); len(events)+len(notes) != 0 {
			t.Errorf("room %d: %v %v", room, events, notes)
		}
	}
}
