package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// The soft limit is 90% of the container's, unless GOMEMLIMIT is given; a value that is
// not bytes sets none.
func TestMemoryLimitIsNinetyPercentOfTheContainersUnlessGOMEMLIMITIsGiven(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	for _, c := range []struct {
		env     map[string]string
		want    int64
		wantErr bool
	}{
		{env: map[string]string{"MEMORY_LIMIT": "268435456"}, want: 241591910},
		{env: map[string]string{"MEMORY_LIMIT": "268435456", "GOMEMLIMIT": "200MiB"}, want: 0},
		{env: map[string]string{}, want: 0},
		{env: map[string]string{"MEMORY_LIMIT": "256Mi"}, wantErr: true},
	} {
		debug.SetMemoryLimit(math.MaxInt64)
		got, err := setMemoryLimit(func(name string) string { return c.env[name] })
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("%v: limit %d (%v), want %d (error %v)", c.env, got, err, c.want, c.wantErr)
		}
		if applied := debug.SetMemoryLimit(-1); c.want > 0 && applied != c.want || c.want == 0 && applied != math.MaxInt64 {
			t.Errorf("%v: the runtime's limit is %d", c.env, applied)
		}
	}
}
